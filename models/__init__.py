"""The four N models. Each has a folder (features, model, train, evaluate, score, MODEL_CARD.md); this
module lists them for the ``models`` stage (:mod:`redcloud.stages.models`), which runs their life
cycle as four steps: train -> validate -> promote -> score (see :mod:`models.common`).

=========================  ===========================================  ==================================
model                      gold output                                  key
=========================  ===========================================  ==================================
cadre_evaluation           ``gold/score_cadre_evaluation``              cadre_id, year
branch_innovation          ``gold/score_branch_innovation``             org_id, quarter
member_vitality            ``gold/score_member_vitality``               member_id, month
integrity_portrait         ``gold/score_integrity_portrait``,           cadre_id, as_of_date;
                           ``gold/integrity_evidence``                  cadre_id, tag, source, record_id
=========================  ===========================================  ==================================
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from models.common import Env


@dataclass(frozen=True)
class Scored:
    table: str          # gold table
    frame: pd.DataFrame
    schema: str         # Spark DDL of the table
    partition_by: str | None = None   # the table's partition column
    # None: ``frame`` is the whole table; a predicate: ``frame`` replaces the rows matching it; "": nothing
    # changed since the last write, which stands
    where: str | None = None
    record: dict | None = None        # what the rows were scored from (the commit's userMetadata)
    note: str = ""                    # why the whole table was scored again, when it was not needed


@dataclass(frozen=True)
class ModelSpec:
    key: str
    title: str                                                   # Chinese name
    train: Callable[[Env], dict]                                 # fit, log, register @candidate
    score: Callable[[Env, dt.datetime], list[Scored]]            # with @champion


def _train_cadre(env: Env) -> dict:
    from models.cadre_evaluation import train

    return train.train(env)


def _score_cadre(env: Env, at: dt.datetime) -> list[Scored]:
    from models.cadre_evaluation import score

    return [Scored(score.TABLE, score.score(env, scored_at=at), score.SCHEMA),
            Scored(score.FAIRNESS_TABLE, score.fairness(env, scored_at=at), score.FAIRNESS_SCHEMA)]


def _train_branch(env: Env) -> dict:
    from models.branch_innovation import train

    return train.train(env)


def _score_branch(env: Env, at: dt.datetime) -> list[Scored]:
    from models.branch_innovation import score

    res, _ = score.score(env, scored_at=at)
    return [Scored(score.TABLE, res, score.SCHEMA)]


def _train_vitality(env: Env) -> dict:
    from models.member_vitality import train

    return train.train(env)


def _score_vitality(env: Env, at: dt.datetime) -> list[Scored]:
    from models.member_vitality import score

    c = score.score_changes(env, scored_at=at)
    if c.months is None:
        where = None
    else:
        where = f"month in ({', '.join(repr(m.isoformat()) for m in c.months)})" if c.months else ""
    return [Scored(score.TABLE, c.frame, score.SCHEMA, partition_by="month", where=where, record=c.record,
                   note=c.reason)]


def _train_integrity(env: Env) -> dict:
    from models.integrity_portrait import train

    return train.train(env)


def _score_integrity(env: Env, at: dt.datetime) -> list[Scored]:
    from models.integrity_portrait import score

    res, ev = score.score(env, scored_at=at)
    return [Scored(score.TABLE, res, score.SCHEMA), Scored(score.EVIDENCE_TABLE, ev, score.EVIDENCE_SCHEMA)]


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("cadre_evaluation", "干部考核评价模型", _train_cadre, _score_cadre),
    ModelSpec("branch_innovation", "基层党组织创新分析模型", _train_branch, _score_branch),
    ModelSpec("member_vitality", "党员活力指数分析模型", _train_vitality, _score_vitality),
    ModelSpec("integrity_portrait", "党员领导干部诚信画像模型", _train_integrity, _score_integrity),
)
