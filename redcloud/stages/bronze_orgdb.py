"""Bronze ingest of the organisation databases: the day's changed rows of every table, and tombstones.

For each system and table of :data:`redcloud.contracts.SYSTEMS` and the logical date ``ctx.day``:
rows with ``watermark < updated_at < day + 1`` (the watermark being the highest ``updated_at``
loaded by earlier dates) are extracted (:func:`redcloud.sources.orgdb.extract`), and keys alive in
bronze but gone from the source become ``_op = 'D'`` tombstones. Both replace the date's partition
of ``bronze/<system>__<table>`` (a rerun replaces what the date wrote), and each table's batch is
recorded in ``ops/reconciliation`` (source rows, bronze rows).
"""

from __future__ import annotations

import datetime as dt
import time

from redcloud.context import RunContext
from redcloud.contracts import PRIMARY_KEYS, SYSTEMS
from redcloud.lake import DeltaDataSet
from redcloud.stages import reconciliation


def _day_end(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time())


def load_table(ctx: RunContext, system: str, table: str, loaded_at: dt.datetime, until: dt.datetime | None = None) -> dict:
    """One source table's changed rows (and tombstones) for ``ctx.day`` into its bronze table.

    ``until`` (a micro-batch during the day): rows changed before it instead of before the day's end.
    The date's partition then holds the day's changes so far; the next micro-batch and the nightly
    run replace it with a superset (the watermark is the previous dates' highest ``updated_at``)."""
    from pyspark.sql import functions as F

    from redcloud.sources import orgdb
    from spark_jobs import bronze as B

    spark, lake, day, s = ctx.spark, ctx.lake, ctx.day, ctx.settings
    url = s.source_url(system)
    hi = _day_end(day) if until is None else min(until, _day_end(day))
    t0 = time.perf_counter()
    name = f"{system}__{table}"
    source = f"{system}.{table}"
    pk = PRIMARY_KEYS[table]
    have = lake.exists("bronze", name)
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
    secs = round(time.perf_counter() - t0, 2)
    ctx.progress.table(f"bronze/{name}", n_bronze, secs,
                       f"source {n_source:,}" + (f", deleted {n_deleted:,}" if n_deleted else ""))
    return dict(source=source, table=f"bronze/{name}", batch_id=B.batch_id(source, day), method=method,
                watermark=str(lo) if lo else None, source_rows=n_source, bronze_rows=n_bronze,
                rows=n_bronze, deleted=n_deleted, seconds=secs)


def run(ctx: RunContext, systems: dict[str, list[str]] | None = None) -> dict:
    loaded_at = dt.datetime.now().replace(microsecond=0)
    todo = [(system, table) for system, tables in (systems or SYSTEMS).items() for table in tables]
    out = ctx.map_tables(lambda st: load_table(ctx, st[0], st[1], loaded_at), todo)
    reconciliation.record_bronze(ctx, [dict(bronze_table=r["table"].split("/", 1)[1], source_kind="orgdb",
                                            source=r["source"], source_rows=r["source_rows"], rejected_rows=0,
                                            bronze_rows=r["bronze_rows"]) for r in out])
    return {"tables": out}
