"""Stage runner: IO at the edges of the spark_jobs transforms. Every stage is idempotent per logical date.

``run_stage("bronze", date)`` ingests every source into bronze; ``silver`` and ``gold`` build the
conformed and analytical layers from bronze; ``all`` runs them in order. The reconciliation table
``ops/reconciliation`` records, per batch and table, source rows = bronze rows and bronze rows =
silver rows + quarantine rows.
"""

from __future__ import annotations

import datetime as dt
import time

from redcloud import lake
from redcloud.config import get_settings
from redcloud.lake import DeltaDataSet
from redcloud.spark import get_spark
from redcloud.synth import PRIMARY_KEYS, SYSTEMS

import importlib

# The main job, in order. bronze/silver/gold are built here; every later stage is a function
# ``run(spark, day, run_id) -> dict`` in its own module (the dict has a "tables" list of
# {"table", "rows"} and whatever else the stage wants to report).
STAGES = ("bronze", "silver", "gold", "models", "marts", "alerts", "publish", "brief")
LATER_STAGES = {
    "models": "models",                   # models/__init__.py: train or re-score the four N models
    "marts": "redcloud.marts",            # dbt build (dbt_project/)
    "alerts": "redcloud.alerts",          # 自流程化 reminders and escalations, outbox delivery
    "publish": "redcloud.serving.publish",  # the serving snapshot
    "brief": "redcloud.brief",            # 每周决策参考 for the ISO week ended before the date
}


def _day_bounds(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def bronze_orgdb(spark, day: dt.date, systems: dict[str, list[str]] | None = None) -> list[dict]:
    """Incremental extract of every organisation-database table into bronze for one logical date."""
    from pyspark.sql import functions as F

    from redcloud.sources import orgdb
    from spark_jobs import bronze as B

    s = get_settings()
    loaded_at = dt.datetime.now().replace(microsecond=0)
    hi = _day_bounds(day)
    out = []
    for system, tables in (systems or SYSTEMS).items():
        url = s.source_url(system)
        for table in tables:
            t0 = time.perf_counter()
            name = f"{system}__{table}"
            source = f"{system}.{table}"
            pk = PRIMARY_KEYS[table]
            have = lake.exists(spark, "bronze", name)
            prior = lake.read(spark, "bronze", name) if have else None
            lo = B.watermark(prior, day) if have else None
            df, n_source, method = orgdb.extract(spark, url, table, lo, hi, s.sources.jdbc_row_threshold)
            batch = B.with_load_metadata(df, source, day, loaded_at)
            n_deleted = 0
            if have:
                keys = orgdb.source_keys(spark, url, table, s.sources.jdbc_row_threshold)
                dead = B.tombstones(B.alive_keys(prior, pk, day), keys, pk, df)
                # cached: counted here, written below (the keys are read from the source once)
                dead = B.with_load_metadata(dead, source, day, loaded_at, op="D").persist()
                n_deleted = dead.count()
                if n_deleted:
                    batch = batch.unionByName(dead)
            lake.write(spark, DeltaDataSet(name, "bronze", batch, mode="replace_partition",
                                           partition_col="_logical_date", partition_value=day))
            if have:
                dead.unpersist()
            n_bronze = lake.read(spark, "bronze", name).where(
                (F.col("_logical_date") == F.lit(day)) & (F.col("_op") == "U")).count()
            out.append(dict(source=source, table=name, batch_id=B.batch_id(source, day), method=method,
                            watermark=str(lo) if lo else None, source_rows=n_source, bronze_rows=n_bronze,
                            deleted=n_deleted, seconds=round(time.perf_counter() - t0, 2)))
    return out


def _gate(quality, spark, layer: str, day: dt.date) -> dict:
    """Run the layer's quality gate; a failure raises GateFailed, which stops everything downstream."""
    results = quality.gate(spark, layer, day)
    return dict(layer=layer, suites=len(results), expectations=sum(r.n_expectations for r in results), passed=True)


BRONZE_PARTS = ("bronze_orgdb", "bronze_ironcage", "bronze_web")


def new_run_id(day: dt.date) -> str:
    return f"manual__{day.isoformat()}__{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}"


def run_stage(stage: str, day: dt.date, run_id: str | None = None) -> dict:
    spark = get_spark()
    t0 = time.perf_counter()
    run_id = run_id or new_run_id(day)
    if stage == "all":
        return run_main(day, run_id)
    if stage in LATER_STAGES:
        result = importlib.import_module(LATER_STAGES[stage]).run(spark, day, run_id)
    elif stage == "bronze":
        from redcloud.stages import bronze_ironcage, bronze_web

        result = {"orgdb": bronze_orgdb(spark, day), "ironcage": bronze_ironcage.run(spark, day),
                  "web": bronze_web.run(spark, day)}
    elif stage in BRONZE_PARTS:  # one source kind only (Airflow ingests each in its own DAG)
        from redcloud.stages import bronze_ironcage, bronze_web

        part = stage.removeprefix("bronze_")
        fn = {"orgdb": bronze_orgdb, "ironcage": bronze_ironcage.run, "web": bronze_web.run}[part]
        result = {part: fn(spark, day)}
    elif stage == "silver":
        from redcloud import quality
        from redcloud.stages import history, identity, silver, silver_external

        result = silver.run(spark, day)
        ext = silver_external.run(spark, day)
        result["tables"] += ext.get("tables", [])
        result["reconciliation"] += ext.get("reconciliation", [])
        result["history"] = history.run(spark, day)
        result["identity"] = identity.run(spark, day)
        result["quality"] = _gate(quality, spark, "silver", day)
    elif stage == "gold":
        from redcloud import quality
        from redcloud.stages import gold, gold_facts

        result = gold.run(spark, day)
        result["tables"] += gold_facts.run(spark, day).get("tables", [])
        result["quality"] = _gate(quality, spark, "gold", day)
    else:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES + BRONZE_PARTS + ('all',)}")
    result["seconds"] = round(time.perf_counter() - t0, 1)
    return result


def run_main(day: dt.date, run_id: str | None = None) -> dict:
    """The main job for one logical date: every stage in order, one run id for all of them."""
    run_id = run_id or new_run_id(day)
    return {st: run_stage(st, day, run_id) for st in STAGES}


def format_summary(summary: dict) -> str:
    s = get_settings()
    lines = [f"lake root: {s.paths.lake_root}"]
    b = summary.get("bronze", {})
    lines.append(f"bronze ({b.get('seconds', '?')}s):")
    for r in b.get("orgdb", []):
        lines.append(f"  {r['table']:38s} source {r['source_rows']:>9,} -> bronze {r['bronze_rows']:>9,}"
                     f"  deleted {r['deleted']:>4}  via {r['method']}")
    for r in b.get("ironcage", []):
        lines.append(f"  {r['table']:38s} files {r['files_loaded']:>4} (skipped {r['files_skipped']:>3})"
                     f"  rows {r['source_rows']:>7,} -> bronze {r['bronze_rows']:>7,} + quarantine {r['quarantine_rows']:>3}")
    for r in b.get("web", []):
        lines.append(f"  {r['table']:38s} pages {r['pages_fetched']:>4} (unchanged {r['pages_unchanged']:>3})"
                     f"  records {r['records']:>6,}  retries {r['retries']}")
    for layer in ("silver", "gold") + tuple(LATER_STAGES):
        part = summary.get(layer)
        if not part:
            continue
        q = part.get("quality")
        gate = f"; quality gate passed: {q['suites']} suites, {q['expectations']} expectations" if q else ""
        lines.append(f"{layer} ({part.get('seconds', '?')}s{gate}):")
        for r in part.get("tables", []):
            lines.append(f"  {r['table']:38s} rows {r['rows']:>9,}" +
                         (f"  quarantined {r['quarantined']:>6,}" if "quarantined" in r else ""))
    rec = summary.get("silver", {}).get("reconciliation", [])
    if rec:
        lines.append("reconciliation (bronze = silver + quarantine):")
        for r in rec:
            ok = "OK " if r["balanced"] else "MISMATCH"
            lines.append(f"  {ok} {r['table']:34s} bronze {r['bronze_rows']:>9,} = silver {r['silver_rows']:>9,}"
                         f" + quarantine {r['quarantine_rows']:>6,}")
    return "\n".join(lines)
