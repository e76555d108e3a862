"""The ``models`` stage: the N models' life cycle as four steps, each its own task in Airflow.

``train`` fits and registers a ``@candidate`` for every model that needs one (``[models] retrain``:
auto = only without a champion; always; never); ``validate`` turns a candidate that beats the
champion into ``@challenger``; ``promote`` moves ``@champion`` to it and publishes its model card (generated from its run) as the
version's description; ``score`` batch-scores the city
with each champion into gold (the model version on every row). A model whose history cannot support
its training design is skipped with the reason (:class:`models.common.NotEnoughHistory`); any other
error fails the step. Every step reads and writes only the MLflow registry and the lake, so each can
run in its own process.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

from redcloud.context import RunContext

log = logging.getLogger(__name__)


def _env(ctx: RunContext):
    from models.common import Env

    return Env.from_context(ctx)


def train(ctx: RunContext) -> dict:
    from models import MODELS
    from models.common import NotEnoughHistory

    env = _env(ctx)
    trained, skipped, seconds = {}, {}, {}
    for spec in MODELS:
        if not env.needs_training(spec.key):
            continue
        t0 = time.perf_counter()
        with ctx.progress.step(f"train {spec.key}"):
            try:
                r = spec.train(env)
            except NotEnoughHistory as e:   # no model can be trained from this lake: say so, go on
                log.warning("models: %s not trained: %s", spec.key, e)
                skipped[spec.key] = str(e)
                continue
        seconds[spec.key] = round(time.perf_counter() - t0, 1)
        trained[spec.key] = {"run_id": r["run_id"], "version": r["version"],
                             "metrics": {k: v for k, v in r["metrics"].items() if isinstance(v, (int, float))}}
        # what the serving rule chose and the scores beside it (JSON-able: this is an Airflow XCom)
        trained[spec.key].update({k: r[k] for k in ("served_method", "served_reason", "baselines", "test_cutoff") if k in r})
        ctx.progress.note(f"{spec.key}: trained v{r['version']} ({seconds[spec.key]} s)")
    return {"tables": [], "trained": trained, "skipped": skipped, "seconds_by_model": seconds}


def validate(ctx: RunContext) -> dict:
    from models import MODELS
    from models.common import validate as check

    env = _env(ctx)
    verdicts = {}
    for spec in MODELS:
        v = check(env, spec.key, min_gain=ctx.settings.models.min_gain)
        if v is not None:
            verdicts[spec.key] = v.__dict__
            ctx.progress.note(f"{spec.key}: v{v.version} {'passed' if v.passed else 'did not pass'} ({v.reason})")
    return {"tables": [], "validated": verdicts}


def promote(ctx: RunContext) -> dict:
    from models import MODELS, cards
    from models.common import promote as move

    env = _env(ctx)
    promoted = {}
    for spec in MODELS:
        p = move(env, spec.key)
        if p is not None:
            cards.publish(env, spec.key)   # the card, from this version's run, as its MLflow description
            promoted[spec.key] = p
            ctx.progress.note(f"{spec.key}: champion is now v{p['champion']} (was {p['previous'] or 'none'})")
    return {"tables": [], "promoted": promoted}


def score(ctx: RunContext) -> dict:
    from models import MODELS
    from redcloud.lake import DESCRIPTION_CHARS, DeltaDataSet

    env = _env(ctx)
    spark, lake = ctx.spark, ctx.lake
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    scored_at = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    tables, versions, skipped = [], {}, {}
    for spec in MODELS:
        champion = env.champion(spec.key)
        if champion is None:
            skipped[spec.key] = "no champion (not trained yet, or its history is too short)"
            versions[spec.key] = None
            continue
        t0 = time.perf_counter()
        outputs = spec.score(env, scored_at)
        for out in outputs:
            struct = spark.createDataFrame([], out.schema).schema
            pdf = out.frame[struct.fieldNames()]   # createDataFrame maps columns by position
            if out.where != "":   # "": nothing changed since the last write
                df = spark.createDataFrame(pdf, schema=struct) if len(pdf) else spark.createDataFrame([], struct)
                if out.partition_by:   # one file per partition, not one per Arrow batch and partition
                    df = df.repartition(out.partition_by)
                meta = json.dumps(out.record, sort_keys=True) if out.record else ""
                if len(meta) > DESCRIPTION_CHARS:   # the lake would cut it: a cut record is unreadable
                    raise ValueError(f"gold/{out.table}: the scoring record is {len(meta)} characters, "
                                     f"over {DESCRIPTION_CHARS}")
                lake.write(spark, DeltaDataSet(out.table, "gold", df, partition_col=out.partition_by,
                                               description=meta, mode="overwrite" if out.where is None else
                                               "replace_where", where=out.where or ""))
            row = dict(table=f"gold/{out.table}", rows=int(len(pdf)), seconds=round(time.perf_counter() - t0, 1),
                       rescored="all" if out.where is None else out.where or "none")
            if out.note:
                row["rescored_all_because"] = out.note
            ctx.progress.table(row["table"], row["rows"], row["seconds"])
            tables.append(row)
        versions[spec.key] = str(champion.version)
    return {"tables": tables, "model_versions": versions, "skipped": skipped}
