"""Lake layout and IO: one Delta table per entity under bronze/ silver/ gold/ quarantine/.

Idempotent writes are the easy path here:

- :func:`replace_partition` overwrites exactly one logical date's slice (``replaceWhere``),
  so a rerun or backfill of a date replaces what that date wrote before;
- :func:`merge` upserts by key (``MERGE INTO``), so re-applying the same rows changes nothing;
- :func:`overwrite` rebuilds a whole (small, derived) table.

Transforms never write: they return :class:`DeltaDataSet` objects, and the stage runner writes
them after the quality gate passes.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Literal

from redcloud.config import get_settings

LAYERS = ("bronze", "silver", "gold", "marts", "quarantine", "ops")  # marts: built by dbt (dbt_project/)


def table_path(layer: str, name: str) -> str:
    if layer not in LAYERS:
        raise ValueError(f"unknown lake layer {layer!r}; expected one of {LAYERS}")
    return f"{get_settings().paths.lake_root.rstrip('/')}/{layer}/{name}"


@dataclass
class DeltaDataSet:
    """A DataFrame together with where and how it is written."""

    name: str
    layer: str
    df: object  # pyspark.sql.DataFrame
    mode: Literal["replace_partition", "merge", "overwrite"] = "overwrite"
    keys: list[str] = field(default_factory=list)
    partition_col: str | None = None
    partition_value: object = None
    description: str = ""

    @property
    def path(self) -> str:
        return table_path(self.layer, self.name)


def exists(spark, layer: str, name: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, table_path(layer, name))


def read(spark, layer: str, name: str):
    return spark.read.format("delta").load(table_path(layer, name))


def version(spark, layer: str, name: str) -> int | None:
    if not exists(spark, layer, name):
        return None
    row = spark.sql(f"describe history delta.`{table_path(layer, name)}` limit 1").select("version").first()
    return int(row[0])


def _lit(value) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def replace_partition(spark, ds: DeltaDataSet) -> None:
    """Overwrite the rows where ``partition_col = partition_value`` (and only those)."""
    assert ds.partition_col, f"{ds.name}: replace_partition needs partition_col"
    writer = ds.df.write.format("delta")
    if exists(spark, ds.layer, ds.name):
        writer = writer.mode("overwrite").option("replaceWhere", f"{ds.partition_col} = {_lit(ds.partition_value)}")
    else:
        writer = writer.mode("overwrite").partitionBy(ds.partition_col)
    writer.save(ds.path)


def merge(spark, ds: DeltaDataSet) -> None:
    """Upsert by ``keys``: matched rows are updated when they changed, new rows inserted."""
    assert ds.keys, f"{ds.name}: merge needs keys"
    if not exists(spark, ds.layer, ds.name):
        ds.df.write.format("delta").mode("overwrite").save(ds.path)
        return
    view = f"_src_{ds.name}"
    ds.df.createOrReplaceTempView(view)
    on = " and ".join(f"t.`{k}` <=> s.`{k}`" for k in ds.keys)
    spark.sql(f"merge into delta.`{ds.path}` t using {view} s on {on} "
              f"when matched then update set * when not matched then insert *")
    spark.catalog.dropTempView(view)


def overwrite(spark, ds: DeltaDataSet) -> None:
    w = ds.df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if ds.partition_col:
        w = w.partitionBy(ds.partition_col)
    w.save(ds.path)


def write(spark, ds: DeltaDataSet) -> None:
    {"replace_partition": replace_partition, "merge": merge, "overwrite": overwrite}[ds.mode](spark, ds)


def write_all(spark, datasets: list[DeltaDataSet]) -> list[dict]:
    """Write each dataset in order; return one summary per table (rows after the write, seconds)."""
    out = []
    for ds in datasets:
        t0 = time.perf_counter()
        write(spark, ds)
        out.append(dict(table=f"{ds.layer}/{ds.name}", rows=read(spark, ds.layer, ds.name).count(),
                        seconds=round(time.perf_counter() - t0, 2)))
    return out
