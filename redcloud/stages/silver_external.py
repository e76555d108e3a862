"""Silver stage for the external sources (数据铁笼 exports, web reference data).

For one logical date and each entity of :data:`spark_jobs.silver.external.ENTITIES`: the bronze batch
of the date is split by :func:`~spark_jobs.silver.external.build_external`; the latest version per key
is merged into ``silver/<entity>`` with the same version guard as the organisation entities (a version
never overwrites a newer one, so backfills are safe); quarantined rows replace the date's partition of
``quarantine/<entity>``; for power operations every accepted version replaces the date's partition of
``silver/power_operation_versions``; and ``ops/reconciliation`` gets one row per batch (bronze rows =
silver rows + quarantine rows, silver rows being the accepted versions).

Reruns of a date give the same tables: the duplicate check only looks at versions from earlier dates,
and the merge/partition writes replace what the date wrote.
"""

from __future__ import annotations

import datetime as dt
import time

from pyspark.sql import functions as F

from redcloud.context import RunContext
from redcloud.lake import DeltaDataSet, Lake
from redcloud.stages.silver import _merge_silver, write_reconciliation
from spark_jobs.silver.external import ENTITIES, ExternalSpec, build_external


def reference_frames(spark, lake: Lake, day: dt.date, specs: list[ExternalSpec]) -> dict:
    """Key universes for reference checks: every key loaded into the target bronze table up to ``day``."""
    out = {}
    for target, key in {(r.target, r.key) for spec in specs for r in spec.refs}:
        if lake.exists("bronze", target):
            out[target] = (lake.read(spark, "bronze", target)
                           .where((F.col("_logical_date") <= F.lit(day)) & (F.col("_op") == "U"))
                           .select(F.trim(F.col(key)).alias(key)).distinct().persist())
        else:
            out[target] = spark.createDataFrame([], f"{key} string")
    return out


def prior_versions(spark, lake: Lake, spec: ExternalSpec, day: dt.date):
    """(key, _row_hash, _version) of versions accepted on dates before ``day`` (None when there are none)."""
    if not spec.duplicates_across_batches:
        return None
    name = spec.history or spec.name
    if not lake.exists("silver", name):
        return None
    return (lake.read(spark, "silver", name).where(F.col("_logical_date") < F.lit(day))
            .select(spec.key, "_row_hash", "_version"))


def run_entity(ctx: RunContext, spec: ExternalSpec, refs: dict, key: bytes) -> dict:
    spark, lake, day = ctx.spark, ctx.lake, ctx.day
    t0 = time.perf_counter()
    if not lake.exists("bronze", spec.source):
        return dict(entity=spec.name, table=f"silver/{spec.name}", rows=0, quarantined=0, skipped="no bronze table")
    batch = lake.read(spark, "bronze", spec.source).where(F.col("_logical_date") == F.lit(day))
    eb = build_external(batch, spec, refs, key, prior_versions(spark, lake, spec, day))
    checked = eb.checked.persist()  # versions, latest and quarantine rows all derive from it
    n_bronze = batch.where(F.col("_op") == "U").count()
    counts = {r["ok"]: int(r["n"]) for r in checked.groupBy((F.size("_errors") == 0).alias("ok"))
              .agg(F.count(F.lit(1)).alias("n")).collect()}
    n_good, n_bad = counts.get(True, 0), counts.get(False, 0)
    _merge_silver(spark, lake, spec, eb.good, None, spec.version_col)  # exports carry no deletions
    if spec.history:
        lake.write(spark, DeltaDataSet(spec.history, "silver", eb.versions, mode="replace_partition",
                                       partition_col="_logical_date", partition_value=day,
                                       description=f"every accepted version of {spec.name}, by logical date",
                                       skip_unchanged=True))
    lake.write(spark, DeltaDataSet(spec.name, "quarantine", eb.bad, mode="replace_partition",
                                   partition_col="_logical_date", partition_value=day))
    checked.unpersist()
    total = lake.count("silver", spec.name)
    return dict(entity=spec.name, table=f"silver/{spec.name}", rows=total, batch_rows=n_good, quarantined=n_bad,
                bronze_rows=n_bronze, deleted=0, batch_id=f"{spec.source}@{day.isoformat()}",
                seconds=round(time.perf_counter() - t0, 2))


def run(ctx: RunContext, entities: list[ExternalSpec] | None = None) -> dict:
    """Build silver for the external sources for the logical date (idempotent per date)."""
    specs = entities or ENTITIES
    key = ctx.settings.secrets.pseudonym_key_bytes()
    refs = reference_frames(ctx.spark, ctx.lake, ctx.day, specs)

    def one(spec: ExternalSpec) -> dict:
        r = run_entity(ctx, spec, refs, key)
        ctx.progress.table(r["table"], r.get("rows"), r.get("seconds"),
                           f"batch {r.get('batch_rows', 0):,}, quarantined {r.get('quarantined', 0):,}")
        return r

    results = ctx.map_tables(one, specs)
    for df in refs.values():
        df.unpersist()
    recon = write_reconciliation(ctx, results)
    return {"tables": results, "reconciliation": recon}
