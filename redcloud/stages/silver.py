"""Silver stage: the bronze batch of the logical date -> silver (merge by key) + quarantine + reconciliation.

:func:`run` builds the whole layer for ``ctx.day``: the organisation-database entities
(:data:`spark_jobs.silver.entities.ENTITIES`, here), the external sources (数据铁笼, web:
:mod:`redcloud.stages.silver_external`), the SCD2 history tables (:mod:`redcloud.stages.history`) and
identity fusion (:mod:`redcloud.stages.identity`). The runner then validates the layer with its
quality gate and restores it when the gate fails (:mod:`redcloud.pipeline`).
"""

from __future__ import annotations

import datetime as dt
import time

from pyspark.sql import functions as F

from redcloud.context import RunContext
from redcloud.lake import DeltaDataSet, Lake
from spark_jobs.silver import build_entity
from spark_jobs.silver.entities import ENTITIES, EntitySpec


def _merge_silver(spark, lake: Lake, spec: EntitySpec, good, deleted, version_col: str) -> None:
    """Merge the batch into ``silver/<entity>`` by key; only rows that change anything are written, so a
    rerun of a date (same rows, same content hashes) commits no new Delta version. ``deleted``: the
    keys the source deleted in the batch, or None when it deleted none.

    The changed rows are computed once (one join with the table's keys and hashes): keys the table
    does not have yet are appended (no scan of the table), the others go through a MERGE whose
    version guard keeps a newer row (backfills of earlier dates are safe)."""
    path = lake.path("silver", spec.name)
    if not lake.exists("silver", spec.name):
        good.write.format("delta").mode("overwrite").save(path)
        return
    current = lake.read(spark, "silver", spec.name).select(
        spec.key, F.col("_row_hash").alias("_t_hash"), F.col("is_deleted").alias("_t_deleted"))
    changed = (good.join(current, spec.key, "left")
               .where(F.col("_t_hash").isNull() | (F.col("_t_hash") != F.col("_row_hash")) | F.col("_t_deleted"))
               .withColumn("_t_new", F.col("_t_hash").isNull())
               .drop("_t_hash", "_t_deleted")
               .localCheckpoint())
    updates = changed.where(~F.col("_t_new")).drop("_t_new")
    if not updates.isEmpty():
        view = f"_silver_{spec.name}"
        updates.createOrReplaceTempView(view)
        spark.sql(f"""merge into delta.`{path}` t using {view} s on t.{spec.key} = s.{spec.key}
                      when matched and (s.{version_col} > t.{version_col}
                                        or (s.{version_col} = t.{version_col} and s._logical_date >= t._logical_date))
                        then update set *""")
        spark.catalog.dropTempView(view)
    inserts = changed.where(F.col("_t_new")).drop("_t_new")
    if not inserts.isEmpty():
        inserts.write.format("delta").mode("append").save(path)
    if deleted is None:
        return
    alive = current.where(~F.col("_t_deleted")).select(spec.key)
    newly_deleted = deleted.join(alive, spec.key, "left_semi")
    if not newly_deleted.isEmpty():
        view = f"_deleted_{spec.name}"
        newly_deleted.createOrReplaceTempView(view)
        spark.sql(f"""merge into delta.`{path}` t using {view} s on t.{spec.key} = s.{spec.key}
                      when matched then update set t.is_deleted = true, t.deleted_on = s._logical_date""")
        spark.catalog.dropTempView(view)


def run_entity(ctx: RunContext, spec: EntitySpec, refs: dict, key: bytes, skip_empty: bool = True) -> dict:
    spark, lake, day = ctx.spark, ctx.lake, ctx.day
    t0 = time.perf_counter()
    if not lake.exists("bronze", spec.source):
        return dict(entity=spec.name, table=f"silver/{spec.name}", rows=0, quarantined=0, skipped="no bronze table")
    bronze = lake.read(spark, "bronze", spec.source)
    batch = bronze.where(F.col("_logical_date") == F.lit(day))
    have_silver = lake.exists("silver", spec.name)
    if skip_empty and have_silver and not batch.limit(1).count():
        return _empty_batch(spark, lake, spec, day, t0)
    existing = lake.read(spark, "silver", spec.name) if have_silver else None
    sb = build_entity(batch, spec, refs, key, existing)
    good = sb.good.persist()
    bad = sb.bad.persist()
    n_bronze = batch.where(F.col("_op") == "U").count()
    n_good, n_bad = good.count(), bad.count()
    n_deleted = sb.deleted.count()
    _merge_silver(spark, lake, spec, good, sb.deleted if n_deleted else None, spec.version_col)
    lake.write(spark, DeltaDataSet(spec.name, "quarantine", bad.withColumn("_logical_date", F.lit(day).cast("date")),
                                   mode="replace_partition", partition_col="_logical_date", partition_value=day))
    good.unpersist()
    bad.unpersist()
    total = lake.count("silver", spec.name)
    return dict(entity=spec.name, table=f"silver/{spec.name}", rows=total, batch_rows=n_good, quarantined=n_bad,
                bronze_rows=n_bronze, deleted=n_deleted, batch_id=f"{spec.source}@{day.isoformat()}",
                seconds=round(time.perf_counter() - t0, 2))


def _empty_batch(spark, lake: Lake, spec: EntitySpec, day: dt.date, t0: float) -> dict:
    """No bronze rows for the date: silver stays as it is (no merge, no rewrite); a rerun still clears
    the date's quarantine slice, as the full path's partition replace would."""
    if lake.exists("quarantine", spec.name):   # SQL, not delta-spark's DeltaTable: the same on a Spark Connect session
        spark.sql(f"delete from delta.`{lake.path('quarantine', spec.name)}` where _logical_date = date'{day.isoformat()}'")
    total = lake.count("silver", spec.name)
    return dict(entity=spec.name, table=f"silver/{spec.name}", rows=total, batch_rows=0, quarantined=0,
                bronze_rows=0, deleted=0, batch_id=f"{spec.source}@{day.isoformat()}",
                seconds=round(time.perf_counter() - t0, 2))


def reference_frames(spark, lake: Lake, day: dt.date, entities: list[EntitySpec] | None = None) -> dict:
    """Key universes for the reference checks of ``entities`` (default: all): every key ever loaded
    into each target bronze table up to ``day``."""
    targets = {(r.target, r.key) for spec in (entities or ENTITIES) for r in spec.refs}
    out = {}
    for target, key in targets:
        if lake.exists("bronze", target):
            df = lake.read(spark, "bronze", target).where(
                (F.col("_logical_date") <= F.lit(day)) & (F.col("_op") == "U")).select(key).distinct()
            out[target] = df.persist()
        else:
            out[target] = spark.createDataFrame([], f"{key} long")
    return out


def write_reconciliation(ctx: RunContext, results: list[dict]) -> list[dict]:
    """Record the silver step of each batch in ``ops/reconciliation``; return the batches' full rows
    (source -> bronze -> silver + quarantine) for the summary."""
    from redcloud.stages import reconciliation

    rows = [dict(bronze_table=r["batch_id"].split("@")[0], entity=r["entity"], bronze_rows=r["bronze_rows"],
                 silver_rows=r["batch_rows"], quarantine_rows=r["quarantined"], deleted_rows=r["deleted"])
            for r in results if "bronze_rows" in r]
    reconciliation.record_silver(ctx, rows)
    mine = {r["bronze_table"] for r in rows}
    return [dict(table=r["entity"], source_kind=r["source_kind"], source_rows=r["source_rows"],
                 rejected_rows=r["rejected_rows"], bronze_rows=r["bronze_rows"], silver_rows=r["silver_rows"],
                 quarantine_rows=r["quarantine_rows"], complete=r["complete"], balanced=r["balanced"])
            for r in reconciliation.for_day(ctx.lake, ctx.day) if r["bronze_table"] in mine]


def run_entities(ctx: RunContext, entities: list[EntitySpec] | None = None) -> dict:
    """The organisation-database entities of silver for ``ctx.day`` (merge, quarantine, reconciliation)."""
    key = ctx.settings.secrets.pseudonym_key_bytes()
    refs = reference_frames(ctx.spark, ctx.lake, ctx.day, entities)

    def one(spec: EntitySpec) -> dict:
        r = run_entity(ctx, spec, refs, key)
        ctx.progress.table(r["table"], r.get("rows"), r.get("seconds"),
                           f"batch {r.get('batch_rows', 0):,}, quarantined {r.get('quarantined', 0):,}")
        return r

    results = ctx.map_tables(one, entities or ENTITIES)
    for df in refs.values():
        df.unpersist()
    recon = write_reconciliation(ctx, results)
    return {"tables": results, "reconciliation": recon}


def run(ctx: RunContext) -> dict:
    """The silver layer for ``ctx.day``: entities, external sources, history, identity."""
    from redcloud.stages import history, identity, silver_external

    result = run_entities(ctx)
    ext = silver_external.run(ctx)
    result["tables"] += ext["tables"]
    result["reconciliation"] += ext["reconciliation"]
    result["history"] = history.run(ctx)
    result["tables"] += result["history"]["tables"]
    result["identity"] = identity.run(ctx)
    result["tables"] += result["identity"]["tables"]
    return result
