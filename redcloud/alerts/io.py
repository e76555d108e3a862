"""Delta IO for the auto-flow through delta-rs (``deltalake``): the inputs and outputs are small,
and a JVM round trip per read/MERGE would dominate the stage's time. Tables stay ordinary Delta
tables (protocol 1/2: timestamps are timezone-aware) that Spark and the serving snapshot read.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable, write_deltalake

from redcloud import lake


def path(layer: str, name: str) -> str:
    return lake.table_path(layer, name)


def exists(layer: str, name: str) -> bool:
    return DeltaTable.is_deltatable(path(layer, name))


def version(layer: str, name: str) -> int | None:
    return DeltaTable(path(layer, name)).version() if exists(layer, name) else None


def read(layer: str, name: str, columns: list[str] | None = None, filters=None, alive: bool = False) -> pd.DataFrame:
    """A table (or some columns / a pyarrow DNF filter) as pandas; dates stay ``datetime.date``.
    ``alive``: drop source-deleted rows (``is_deleted``)."""
    cols = None if columns is None else list(dict.fromkeys(columns + (["is_deleted"] if alive else [])))
    t = DeltaTable(path(layer, name)).to_pyarrow_table(columns=cols, filters=filters)
    df = t.to_pandas(date_as_object=True)
    if alive and "is_deleted" in df:
        df = df[~df["is_deleted"].fillna(False).astype(bool)].drop(columns=["is_deleted"])
        if columns is not None and "is_deleted" in columns:
            df["is_deleted"] = False
    return df.reset_index(drop=True)


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(df[[f.name for f in schema]], schema=schema, preserve_index=False)


def overwrite(layer: str, name: str, df: pd.DataFrame, schema: pa.Schema, description: str = "") -> None:
    write_deltalake(path(layer, name), to_arrow(df, schema), mode="overwrite", schema_mode="overwrite",
                    description=description or None)


def upsert(layer: str, name: str, df: pd.DataFrame, schema: pa.Schema, key: str) -> dict:
    """MERGE by ``key``: matched rows replaced, new rows inserted (creates the table if missing)."""
    data = to_arrow(df, schema)
    if not exists(layer, name):
        write_deltalake(path(layer, name), data, mode="overwrite")
        return {"num_target_rows_inserted": len(df)}
    if not len(df):
        return {}
    return (DeltaTable(path(layer, name)).merge(data, f"t.{key} = s.{key}", source_alias="s", target_alias="t")
            .when_matched_update_all().when_not_matched_insert_all().execute())


def insert_new(layer: str, name: str, df: pd.DataFrame, schema: pa.Schema, key: str) -> int:
    """MERGE inserting only rows whose ``key`` is not in the table; returns how many were inserted."""
    data = to_arrow(df, schema)
    if not exists(layer, name):
        write_deltalake(path(layer, name), data, mode="overwrite")
        return len(df)
    if not len(df):
        return 0
    m = (DeltaTable(path(layer, name)).merge(data, f"t.{key} = s.{key}", source_alias="s", target_alias="t")
         .when_not_matched_insert_all().execute())
    return int(m.get("num_target_rows_inserted", 0))


def count(layer: str, name: str) -> int:
    if not exists(layer, name):
        return 0
    return DeltaTable(path(layer, name)).to_pyarrow_dataset().count_rows()
