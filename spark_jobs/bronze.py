"""Bronze: raw source rows plus load metadata, append-only by logical date.

Every bronze table has the source's columns followed by:

=================  ===========================================================================
``_op``            ``U`` (row inserted or updated in the source) or ``D`` (row deleted: tombstone)
``_source``        ``<system>.<table>`` or the file/URL the row came from
``_batch_id``      ``<source>@<logical date>``: one batch per source and logical date
``_logical_date``  the run's logical date (partition column; a rerun replaces this partition)
``_loaded_at``     wall-clock time of the load (the only column that differs between reruns)
``_row_hash``      SHA-256 of the data columns (change detection, reconciliation)
=================  ===========================================================================
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

LOAD_COLUMNS = ["_op", "_source", "_batch_id", "_logical_date", "_loaded_at", "_row_hash"]


def row_hash(columns: list[str]):
    parts = [F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("\u0000")) for c in columns]
    return F.sha2(F.concat_ws("\u001f", *parts), 256)


def batch_id(source: str, logical_date: dt.date) -> str:
    return f"{source}@{logical_date.isoformat()}"


def with_load_metadata(df: DataFrame, source: str, logical_date: dt.date, loaded_at: dt.datetime,
                       op: str = "U") -> DataFrame:
    data_cols = [c for c in df.columns if c not in LOAD_COLUMNS]
    return df.select(
        *[F.col(f"`{c}`") for c in data_cols],
        F.lit(op).alias("_op"),
        F.lit(source).alias("_source"),
        F.lit(batch_id(source, logical_date)).alias("_batch_id"),
        F.lit(logical_date).cast("date").alias("_logical_date"),
        F.lit(loaded_at).cast("timestamp").alias("_loaded_at"),
        row_hash(data_cols).alias("_row_hash"),
    )


def watermark(bronze: DataFrame, logical_date: dt.date, column: str = "updated_at"):
    """Highest ``column`` loaded by batches before ``logical_date`` (None when there are none)."""
    row = (bronze.where((F.col("_logical_date") < F.lit(logical_date)) & (F.col("_op") == "U"))
           .agg(F.max(column).alias("wm")).first())
    return row["wm"] if row else None


def alive_keys(bronze: DataFrame, key: str, logical_date: dt.date) -> DataFrame:
    """Keys whose latest bronze record before ``logical_date`` is not a tombstone."""
    w = Window.partitionBy(key).orderBy(F.col("_logical_date").desc(), F.col("_op").desc())
    return (bronze.where(F.col("_logical_date") < F.lit(logical_date))
            .select(key, "_logical_date", "_op")
            .withColumn("_rn", F.row_number().over(w))
            .where((F.col("_rn") == 1) & (F.col("_op") == "U"))
            .select(key))


def tombstones(alive: DataFrame, source_keys: DataFrame, key: str, template: DataFrame) -> DataFrame:
    """Rows for keys alive in bronze but gone from the source: the key set, every other column null."""
    gone = alive.join(source_keys, on=key, how="left_anti")
    cols = [F.col(key) if c == key else F.lit(None).cast(template.schema[c].dataType).alias(c)
            for c in template.columns if c not in LOAD_COLUMNS]
    return gone.select(*cols)
