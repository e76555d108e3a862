"""The four N models (issue 5): train when needed, then score the city into gold.

Stage ``models`` of the main job: for each model, train (when ``[models] retrain`` says so: ``auto``
trains only when the registered model has no ``@champion`` yet), then batch-score with
``models:/<name>@champion`` and overwrite its gold table(s). Gold inputs are rebuilt in full every
run, so the scores are too: a rerun of the same date with the same champion gives the same rows
(``scored_at`` aside).

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
import logging
import time

log = logging.getLogger(__name__)


def run(spark, day: dt.date, run_id: str) -> dict:
    from models import common
    from models.branch_innovation import features as bf, score as bs, train as bt
    from models.cadre_evaluation import features as cf, score as cs, train as ct
    from models.integrity_portrait import features as inf, score as ins, train as it
    from models.member_vitality import features as vf, score as vs, train as vt

    t0 = time.perf_counter()
    scored_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    tables, trained, versions, seconds, skipped = [], {}, {}, {}, {}

    def maybe_train(key, fn):
        if common.needs_training(key):
            r = fn()
            trained[key] = {"run_id": r["run_id"], "promotion": r["promotion"],
                            "metrics": {k: v for k, v in r["metrics"].items() if isinstance(v, (int, float))}}

    def cadre():
        cdf = cf.build()
        maybe_train("cadre_evaluation", lambda: ct.train(cdf, run_name=run_id))
        res = cs.score(cdf, scored_at)
        tables.append(common.write_scores(spark, cs.TABLE, res, cs.SCHEMA))
        return res

    def branch():
        bq, ms = bf.branch_quarters(), bf.meetings()
        maybe_train("branch_innovation", lambda: bt.train(bq, ms, run_name=run_id))
        res, _ = bs.score(bq, ms, scored_at)
        tables.append(common.write_scores(spark, bs.TABLE, res, bs.SCHEMA))
        return res

    def vitality():
        vdf = vf.build()
        maybe_train("member_vitality", lambda: vt.train(vdf, run_name=run_id))
        res = vs.score(vdf, scored_at)
        tables.append(common.write_scores(spark, vs.TABLE, res, vs.SCHEMA))
        return res

    def integrity():
        idf = inf.build(day)
        maybe_train("integrity_portrait", lambda: it.train(day, idf, run_name=run_id))
        res, ev = ins.score(day, idf, scored_at)
        tables.append(common.write_scores(spark, ins.TABLE, res, ins.SCHEMA))
        tables.append(common.write_scores(spark, ins.EVIDENCE_TABLE, ev, ins.EVIDENCE_SCHEMA))
        return res

    for key, step in (("cadre_evaluation", cadre), ("branch_innovation", branch), ("member_vitality", vitality),
                      ("integrity_portrait", integrity)):
        t = time.perf_counter()
        try:
            res = step()
        except common.NotEnoughHistory as e:  # no champion can be trained from this lake: say so, go on
            log.warning("models: %s skipped: %s", key, e)
            skipped[key] = str(e)
            versions[key] = None
        else:
            versions[key] = res.model_version.iat[0] if len(res) else None
        seconds[key] = round(time.perf_counter() - t, 1)

    return {"tables": tables, "trained": trained, "model_versions": versions, "seconds_by_model": seconds,
            "skipped": skipped, "logical_date": day.isoformat(), "run_id": run_id,
            "seconds": round(time.perf_counter() - t0, 1)}
