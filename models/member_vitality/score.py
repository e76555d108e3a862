"""Batch scoring of the member vitality index from ``models:/<name>@champion``.

The index of a member-month is a function of that row's indicators alone (the champion's fixed
bounds and weights), so a daily run rescores only the months whose rows changed since the scores'
last write (:func:`score_changes`): the table is partitioned by month and the write replaces those
months. The commit records what it was scored from (``userMetadata``: the ``fct_member_month``
version, the champion's version and :func:`identity`); without that record, a new champion, another
identity (registered model, run, scoring code, source table), a changed table layout or an unreadable
(vacuumed) version, every month is scored again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from models import common
from models.member_vitality import features

KEY = "member_vitality"
TABLE = "score_member_vitality"
SCHEMA = ("member_id long, month date, org_id long, vitality_index double, dim_learning double, dim_org_life double, "
          "dim_volunteer double, dim_dues double, dim_app double, vitality_level string, "
          "model_name string, model_version string, scored_at timestamp")
LEVELS = [(80, "活跃"), (60, "较活跃"), (40, "一般"), (0, "待激活")]


def level(v: float) -> str:
    return next(name for lo, name in LEVELS if v >= lo)


def score(env: common.Env, df: pd.DataFrame | None = None, scored_at: dt.datetime | None = None) -> pd.DataFrame:
    df = features.build(env) if df is None else df
    pm, version = env.load_champion(KEY)
    out = pm.predict(df[features.INDICATOR_NAMES].astype("float64"))
    res = pd.concat([df[["member_id", "month", "org_id"]].reset_index(drop=True), out.reset_index(drop=True)], axis=1)
    res["vitality_level"] = [level(v) for v in res.vitality_index]
    res["model_name"] = env.registered_name(KEY)
    res["model_version"] = version
    res["scored_at"] = pd.Timestamp(scored_at or dt.datetime.now(dt.timezone.utc))
    return res


class Changes(NamedTuple):
    """What :func:`score_changes` scored: ``frame`` holds every row of ``months`` (None: of every
    month, a full rescore, with ``reason``); ``record`` is the commit's ``userMetadata``."""
    frame: pd.DataFrame
    months: list[dt.date] | None
    reason: str
    record: dict


def last_record(env: common.Env) -> tuple[dict | None, bool]:
    """The ``userMetadata`` of the score table's latest commit (None: no table, or not ours), and
    whether the table's columns and partitioning are those of :data:`SCHEMA` by month."""
    if not env.lake.exists("gold", TABLE):
        return None, False
    from deltalake import DeltaTable

    table = DeltaTable(env.lake.path("gold", TABLE))
    layout = ([f.name for f in table.schema().fields] == _columns_of(SCHEMA)
              and list(table.metadata().partition_columns) == ["month"])
    meta = (table.history(1) or [{}])[0].get("userMetadata")
    try:
        rec = json.loads(meta) if meta else None
    except ValueError:
        return None, layout
    return (rec if isinstance(rec, dict) else None), layout


def changed_months(then: pd.DataFrame, now: pd.DataFrame) -> list[dt.date]:
    """The months in which some member's row of indicators (or organisation) differs between two
    feature frames of :func:`features.from_member_month`, or exists in only one."""
    cols = ["member_id", "month", "org_id", *features.INDICATOR_NAMES]
    h_then = pd.util.hash_pandas_object(then[cols], index=False)
    h_now = pd.util.hash_pandas_object(now[cols], index=False)
    months = pd.concat([now.month[~h_now.isin(h_then).to_numpy()], then.month[~h_then.isin(h_now).to_numpy()]])
    return sorted(set(months))


def score_changes(env: common.Env, scored_at: dt.datetime | None = None) -> Changes:
    """Score the months whose indicators changed since the scores' last write, or every month when
    the last write cannot tell (see the module's docstring)."""
    layer, name = features.SOURCE
    version = env.lake.version(layer, name)
    now = features.build(env)
    champion = env.champion(KEY)
    record = {f"{layer}/{name}": version, "model_version": str(champion.version) if champion else None,
              "identity": identity(env, champion)}
    last, layout = last_record(env)
    seen = (last or {}).get(f"{layer}/{name}")
    if last is None or seen is None:
        reason = "no record of the last scoring"
    elif last.get("model_version") != record["model_version"]:
        reason = f"champion v{record['model_version']} replaces v{last.get('model_version')}"
    elif last.get("identity") != record["identity"]:
        reason = "the registered model, its run, the scoring code or the source table changed"
    elif not layout:
        reason = "the score table's layout changed"
    else:
        try:
            then = features.from_member_month(env.lake.arrow(layer, name, version=int(seen)).to_pandas())
        except Exception as e:  # noqa: BLE001 - vacuumed or unreadable: score everything
            reason = f"{layer}/{name} v{seen} unreadable ({type(e).__name__})"
        else:
            months = changed_months(then, now) if int(seen) != version else []
            part = now[now.month.isin(months)] if months else now.iloc[:0]
            return Changes(score(env, part, scored_at) if len(part) else _empty(), months, "", record)
    return Changes(score(env, now, scored_at), None, reason, record)


def identity(env: common.Env, champion) -> str:
    """What a month's scores depend on besides its indicator rows and the champion's version number:
    the registered name and the champion's run (a rebuilt registry numbers its versions from 1 again),
    this package's code (levels, features, the model's scoring) and the source table's Delta id (a
    table dropped and rebuilt numbers its versions from 0 again). A 16-hex digest."""
    from deltalake import DeltaTable

    layer, name = features.SOURCE
    h = hashlib.sha256()
    h.update(env.registered_name(KEY).encode())
    h.update(str(getattr(champion, "run_id", None)).encode())
    h.update(DeltaTable(env.lake.path(layer, name)).metadata().id.encode())
    for f in sorted(Path(__file__).parent.glob("*.py")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=_columns_of(SCHEMA))


def _columns_of(schema: str) -> list[str]:
    return [c.strip().split(" ")[0] for c in schema.split(",")]

