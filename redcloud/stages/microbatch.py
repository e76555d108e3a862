"""The 15-minute micro-batch: the app's 学习问答 and 驻村 每日工作记实 data through bronze, silver and
gold during the day, and the day's reminders from a configured hour, so a cadre is reminded the same
day, not the next.

``run(ctx, at)`` for the logical date ``ctx.day`` and the moment ``at`` on it (Airflow's
``microbatch`` DAG calls it every 15 minutes in working hours):

1. **bronze**: the app tables of :data:`TABLES` changed since the previous dates' watermark and
   before ``at`` replace the date's partition (:func:`redcloud.stages.bronze_orgdb.load_table` with
   ``until``), tombstones included. Each micro-batch holds the day so far, so it is idempotent, and
   the nightly run replaces the partition with the whole day.
2. **silver**: those entities merge the date's batch (only rows that change anything are merged),
   quarantine and reconciliation as in the main job; their quality gate validates the rows the date
   committed and the tables' keys (:func:`redcloud.quality.gate`, scope ``batch``).
3. **gold**: each fact of :data:`FACTS` (``fct_learning_daily``, ``fct_village_work_daily``) is
   recomputed from the first day the batch touched on (:func:`changed_dates`: the dates of the day's
   keys, the earlier dates of those the merge moved or deleted, and the days after the table's last
   day), its streaks continued from the rows before (:func:`redcloud.stages.gold.increment`); the
   gold gate validates the replaced rows and the tables' row counts. When a fact's record of the
   silver versions it was built from was current before the batch, it is carried forward
   (:func:`redcloud.stages.gold.record_after_batch`), so the nightly run updates the fact from the
   days the day changed instead of rebuilding it.
4. **alerts**: from ``[alerts] same_day_reminder_hour`` on, the day's 学习问答 and 驻村 reminders and
   escalations (:func:`redcloud.alerts.run` with :data:`ALERT_KINDS`). A message id is the alert,
   the recipient and the day, so the nightly run does not send a reminder again.

A failed gate puts the tables the step wrote back to their versions before the micro-batch.
Everything else (the other sources, gold tables, marts, models, serving) waits for the nightly run,
which loads the whole day again: the incremental rows equal the full rebuild's
(``tests/integration/test_microbatch.py``).
"""

from __future__ import annotations

import datetime as dt
import time

from pyspark.sql import functions as F

from redcloud import runs, workdays
from redcloud.context import RunContext

STAGE = "microbatch"
SYSTEM = "app"
TABLES = ("app_users", "learning_answers", "village_work_records")
# per entity: (key, the columns whose change moves a gold row to another day, the date a row counts on)
WATCH = {"learning_answers": ("answer_id", ("member_id", "answer_date", "is_deleted"), "answer_date"),
         "app_users": ("member_id", ("registered_at", "is_deleted"), "to_date(registered_at)"),
         "village_work_records": ("record_id", ("assignment_id", "work_date", "is_deleted"), "work_date")}
# per daily gold fact (redcloud.stages.gold.INCREMENTAL): the entities of the batch it is computed from
FACTS = {"fct_learning_daily": ("app_users", "learning_answers"),
         "fct_village_work_daily": ("village_work_records",)}
ALERT_KINDS = {"learning", "village"}


def changed_dates(ctx: RunContext, entity: str, before: int | None) -> set[dt.date]:
    """The dates whose gold rows the batch may change: the silver date of every key in the
    date's bronze batch of ``entity`` (the day so far, so a batch that failed after silver is caught
    up by the next one), and for keys whose watched columns differ between silver version ``before``
    and now, the date in the earlier version too (an answer moved or deleted)."""
    spark, lake = ctx.spark, ctx.lake
    key, cols, date = WATCH[entity]
    keys = (lake.read(spark, "bronze", f"{SYSTEM}__{entity}").where(F.col("_logical_date") == F.lit(ctx.day))
            .select(key).distinct())
    now = lake.read(spark, "silver", entity).join(keys, key, "left_semi")
    new = now.select(key, *[F.col(c).alias(f"_n_{c}") for c in cols], F.expr(date).alias("_n_date"))
    dates = {r[0] for r in new.select("_n_date").distinct().collect() if r[0] is not None}
    if before is None:
        return dates
    old = (lake.read_version(spark, "silver", entity, before).join(keys, key, "left_semi")
           .select(key, *[F.col(c).alias(f"_o_{c}") for c in cols], F.expr(date).alias("_o_date")))
    same = F.lit(True)
    for c in cols:
        same = same & F.col(f"_n_{c}").eqNullSafe(F.col(f"_o_{c}"))
    diff = new.join(old, key, "full_outer").where(~same)
    return dates | {d for r in diff.select("_o_date").distinct().collect() for d in r if d is not None}


def _restore(ctx: RunContext, before: dict[tuple[str, str], int | None]) -> list[str]:
    out = []
    for (layer, name), version in before.items():
        if ctx.lake.version(layer, name) != version:
            ctx.lake.restore(ctx.spark, layer, name, version)
            out.append(f"{layer}/{name}@{version}")
    return out


def _gated(ctx: RunContext, layer: str, tables: list[str], step, batches: dict | None = None) -> dict:
    """Run ``step`` and the ``layer`` gate on ``tables`` (``batches``: see :func:`redcloud.quality.gate`);
    on failure restore them and re-raise."""
    from redcloud import quality

    keys = [(layer, t) for t in tables] + ([("quarantine", t) for t in tables] if layer == "silver" else [])
    before = {k: ctx.lake.version(*k) for k in keys}
    result = step()
    try:
        with ctx.progress.step(f"quality gate {layer} ({', '.join(tables)})"):
            gated = quality.gate(ctx, layer, tables, batches=batches)
    except quality.GateFailed as failed:
        failed.restored = _restore(ctx, before)
        raise
    result["quality"] = dict(layer=layer, suites=len(gated), passed=True,
                             expectations=sum(r.n_expectations for r in gated))
    return result


def run(ctx: RunContext, at: dt.datetime) -> dict:
    """One micro-batch of ``ctx.day`` up to ``at`` (see the module docstring); returns what it did."""
    from redcloud import alerts
    from redcloud.stages import bronze_orgdb, gold, reconciliation, silver
    from spark_jobs.silver.entities import ENTITIES

    if at.date() != ctx.day:
        raise ValueError(f"micro-batch at {at.isoformat()} is not on the logical date {ctx.day.isoformat()}")
    t0 = time.perf_counter()
    lake = ctx.lake
    for fact in FACTS:
        if not lake.exists("gold", fact):
            raise RuntimeError(f"gold/{fact} is missing in {lake.root}: a micro-batch continues the main job's "
                               f"tables; run the main job (redcloud run all) for a day before {ctx.day} first")
    runs.record(lake, ctx.day, STAGE, ctx.run_id, runs.RUNNING)
    try:
        steps: dict[str, float] = {}
        lap = time.perf_counter()

        def done(step: str) -> None:
            nonlocal lap
            now = time.perf_counter()
            steps[step] = round(now - lap, 2)
            lap = now

        loaded_at = dt.datetime.now().replace(microsecond=0)
        with ctx.progress.step(f"micro-batch bronze (app, until {at:%H:%M})"):
            brz = [bronze_orgdb.load_table(ctx, SYSTEM, t, loaded_at, until=at) for t in TABLES]
        reconciliation.record_bronze(ctx, [dict(bronze_table=r["table"].split("/", 1)[1], source_kind="orgdb",
                                                source=r["source"], source_rows=r["source_rows"], rejected_rows=0,
                                                bronze_rows=r["bronze_rows"]) for r in brz])
        done("bronze")
        versions = {t: lake.version("silver", t) for t in TABLES}
        specs = [e for e in ENTITIES if e.name in TABLES]
        slv = _gated(ctx, "silver", list(TABLES), lambda: silver.run_entities(ctx, specs))
        done("silver")
        touched: dict[str, set[dt.date]] = {t: changed_dates(ctx, t, versions[t]) for t in TABLES}
        from_dates = {}
        for fact, entities in FACTS.items():
            last = lake.read(ctx.spark, "gold", fact).agg(F.max("work_date")).first()[0]
            dates = set().union(*(touched[e] for e in entities))
            from_dates[fact] = min(dates | {last + dt.timedelta(days=1) if last else ctx.day, ctx.day})
        # the gold gate checks the replaced days' rows, and the tables' row counts
        gold_before = {fact: lake.version("gold", fact) for fact in FACTS}
        gld = _gated(ctx, "gold", list(FACTS),
                     lambda: {fact: gold.increment(ctx, fact, d) for fact, d in from_dates.items()},
                     batches={fact: F.col("work_date") >= F.lit(d) for fact, d in from_dates.items()})
        gld["recorded"] = gold.record_after_batch(ctx, versions, gold_before)
        done("gold")
        sent = None
        if at.hour >= ctx.settings.alerts.same_day_reminder_hour and workdays.is_workday(ctx.day):
            sent = alerts.run(ctx, kinds=ALERT_KINDS)
        done("alerts")
    except BaseException as exc:
        runs.record(lake, ctx.day, STAGE, ctx.run_id, runs.FAILED, round(time.perf_counter() - t0, 1),
                    f"{type(exc).__name__}: {exc}")
        raise
    secs = round(time.perf_counter() - t0, 1)
    runs.record(lake, ctx.day, STAGE, ctx.run_id, runs.SUCCEEDED, secs)
    return {"at": at.isoformat(), "bronze": brz, "silver": slv,
            "touched_dates": {t: sorted(d.isoformat() for d in ds) for t, ds in touched.items()},
            "gold": gld, "alerts": sent, "seconds": secs, "steps": steps,
            "tables": brz + slv["tables"] + [gld[f] for f in FACTS] + (sent["tables"] if sent else [])}
