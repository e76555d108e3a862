"""The lake: one Delta table per entity under ``<root>/{bronze,silver,gold,marts,quarantine,ops}/<name>``.

:class:`Lake` is the one way in: :meth:`Lake.read` reads a table with Spark, :meth:`Lake.arrow` /
:meth:`Lake.pandas` read it with Arrow (delta-rs, no JVM; for the small gold tables the alerts, models
and the publish step read), and :meth:`Lake.write` writes a :class:`DeltaDataSet` idempotently:

- ``replace_partition`` overwrites exactly one logical date's slice (``replaceWhere``), so a rerun
  or backfill of a date replaces what that date wrote before;
- ``replace_where`` overwrites the rows matching a predicate (``replaceWhere`` on data columns),
  e.g. the days from some date on that an incremental step recomputed;
- ``merge`` upserts by key (``MERGE INTO``), so re-applying the same rows changes nothing;
- ``overwrite`` rebuilds a whole (small, derived) table.

Transforms never write: they return DataFrames (or :class:`DeltaDataSet` objects), and the stage
writes them. A stage's lake comes from its :class:`redcloud.context.RunContext` (``ctx.lake``).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

LAYERS = ("bronze", "silver", "gold", "marts", "quarantine", "ops")  # marts: built by dbt (dbt_project/)
DESCRIPTION_CHARS = 200   # of a write's description kept as its commit's userMetadata


@dataclass
class DeltaDataSet:
    """A DataFrame together with where and how it is written."""

    name: str
    layer: str
    df: object  # pyspark.sql.DataFrame
    mode: Literal["replace_partition", "replace_where", "merge", "overwrite"] = "overwrite"
    keys: list[str] = field(default_factory=list)
    partition_col: str | None = None
    partition_value: object = None
    description: str = ""
    where: str = ""                # replace_where: the SQL predicate of the rows replaced
    skip_unchanged: bool = False   # commit nothing when the rows (of the partition) are those already there

    @property
    def table(self) -> str:
        return f"{self.layer}/{self.name}"


def _with_description(writer, ds: DeltaDataSet):
    """``writer`` with the first :data:`DESCRIPTION_CHARS` of ``ds.description`` as the commit's userMetadata."""
    return writer.option("userMetadata", ds.description[:DESCRIPTION_CHARS]) if ds.description else writer


def _lit(value) -> str:
    if isinstance(value, (dt.date, dt.datetime)):
        return f"'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


class Lake:
    """The Delta tables under one root folder (or URI)."""

    def __init__(self, root: str | Path):
        self.root = str(root).rstrip("/")

    def __repr__(self) -> str:
        return f"Lake({self.root!r})"

    # -- where ------------------------------------------------------------------------------------
    def path(self, layer: str, name: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown lake layer {layer!r}; expected one of {LAYERS}")
        return f"{self.root}/{layer}/{name}"

    def exists(self, layer: str, name: str) -> bool:
        path = self.path(layer, name)
        if "://" not in path:
            return (Path(path) / "_delta_log").is_dir()
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(path)

    def tables(self, layer: str) -> list[str]:
        """Names of the Delta tables in ``layer`` (a local lake), sorted."""
        base = Path(self.path(layer, "x")).parent
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if (p / "_delta_log").is_dir())

    # -- read -------------------------------------------------------------------------------------
    def read(self, spark, layer: str, name: str):
        """The table as a Spark DataFrame (latest version)."""
        return spark.read.format("delta").load(self.path(layer, name))

    def read_version(self, spark, layer: str, name: str, version: int):
        return spark.read.format("delta").option("versionAsOf", version).load(self.path(layer, name))

    def change_files(self, layer: str, name: str, seen: int, now: int) -> tuple[list[str], list[str]] | None:
        """The local Parquet files that differ between versions ``seen`` and ``now``: ``(added,
        removed)``, the data files version ``now`` holds and ``seen`` did not, and the other way
        round. A row in neither is in a file both versions share, so it did not change; a rewritten
        file's unchanged rows are on both sides. Only for a local, unpartitioned table whose files
        are read as plain Parquet (no deletion vectors or column mapping) and whose removed files are
        still on disk; otherwise None (compare the whole versions)."""
        import os

        from deltalake import DeltaTable

        try:
            a, b = (DeltaTable(self.path(layer, name), version=v) for v in (seen, now))
        except Exception:  # noqa: BLE001 - a version no longer in the log
            return None
        if any(t.metadata().partition_columns or t.protocol().min_reader_version > 1 for t in (a, b)):
            return None
        old, new = set(a.file_uris()), set(b.file_uris())
        removed, added = sorted(old - new), sorted(new - old)
        if any("://" in f and not f.startswith("file://") for f in removed + added):
            return None
        added, removed = ([f.removeprefix("file://") for f in files] for files in (added, removed))
        if not all(os.path.exists(f) for f in removed):
            return None   # vacuumed
        return added, removed

    def arrow(self, layer: str, name: str, columns: list[str] | None = None, filters=None,
              version: int | None = None):
        """The table (some columns, a list of ``(column, op, value)`` filters, all of which must hold)
        as an Arrow table, with delta-rs (no JVM); its latest version, or ``version``.

        Filters on boolean columns are applied after the read, not pushed down: Spark records no
        min/max statistics for booleans, and delta-rs (1.6) skips every file whose statistics lack
        them, so a pushed-down ``("flag", "=", True)`` would return no rows at all."""
        import pyarrow as pa
        import pyarrow.compute as pc
        from deltalake import DeltaTable

        dt_ = DeltaTable(self.path(layer, name), version=version)
        if not filters:
            return dt_.to_pyarrow_table(columns=columns)
        bools = {f.name for f in dt_.schema().fields if str(f.type) == 'PrimitiveType("boolean")'}
        push = [f for f in filters if f[0] not in bools]
        after = [f for f in filters if f[0] in bools]
        if not after:
            return dt_.to_pyarrow_table(columns=columns, filters=push)
        read = None if columns is None else list(dict.fromkeys(columns + [f[0] for f in after]))
        table = dt_.to_pyarrow_table(columns=read, filters=push or None)
        ops = {"=": pc.equal, "==": pc.equal, "!=": pc.not_equal}
        mask = None
        for col, op, value in after:
            if op not in ops:
                raise ValueError(f"filter on boolean column {col!r}: only =, == and != are supported, not {op!r}")
            m = pc.fill_null(ops[op](table[col], pa.scalar(bool(value))), False)
            mask = m if mask is None else pc.and_(mask, m)
        table = table.filter(mask)
        return table if columns is None else table.select(columns)

    def pandas(self, layer: str, name: str, columns: list[str] | None = None, filters=None,
               alive: bool = False):
        """:meth:`arrow` as pandas; dates stay ``datetime.date``. ``alive``: drop source-deleted rows."""
        cols = None if columns is None else list(dict.fromkeys(columns + (["is_deleted"] if alive else [])))
        df = self.arrow(layer, name, cols, filters).to_pandas(date_as_object=True)
        if alive and "is_deleted" in df:
            df = df[~df["is_deleted"].fillna(False).astype(bool)].drop(columns=["is_deleted"])
            if columns is not None and "is_deleted" in columns:
                df["is_deleted"] = False
        return df.reset_index(drop=True)

    def version(self, layer: str, name: str) -> int | None:
        """The table's latest Delta version (None when it does not exist)."""
        if not self.exists(layer, name):
            return None
        from deltalake import DeltaTable

        return DeltaTable(self.path(layer, name)).version()

    def count(self, layer: str, name: str) -> int:
        """Rows of the latest version, from the Delta log's file statistics where it has them."""
        if not self.exists(layer, name):
            return 0
        from deltalake import DeltaTable

        return DeltaTable(self.path(layer, name)).to_pyarrow_dataset().count_rows()

    # -- write (Spark) ----------------------------------------------------------------------------
    def write(self, spark, ds: DeltaDataSet) -> None:
        {"replace_partition": self._replace_partition, "replace_where": self._replace_where, "merge": self._merge,
         "overwrite": self._overwrite}[ds.mode](spark, ds)

    def write_all(self, spark, datasets: list[DeltaDataSet], progress=None) -> list[dict]:
        """Write each dataset in order; return one summary per table (rows after the write, seconds)."""
        out = []
        for ds in datasets:
            t0 = time.perf_counter()
            self.write(spark, ds)
            row = dict(table=ds.table, rows=self.count(ds.layer, ds.name), seconds=round(time.perf_counter() - t0, 2))
            if progress is not None:
                progress.table(row["table"], row["rows"], row["seconds"])
            out.append(row)
        return out

    def _replace_partition(self, spark, ds: DeltaDataSet) -> None:
        """Overwrite the rows where ``partition_col = partition_value`` (and only those)."""
        assert ds.partition_col, f"{ds.name}: replace_partition needs partition_col"
        if ds.skip_unchanged and self.unchanged(spark, ds):
            return
        writer = ds.df.write.format("delta").mode("overwrite")
        if self.exists(ds.layer, ds.name):
            # new columns (a table written by an earlier release) are added, never dropped
            writer = (writer.option("replaceWhere", f"{ds.partition_col} = {_lit(ds.partition_value)}")
                      .option("mergeSchema", "true"))
        else:
            writer = writer.partitionBy(ds.partition_col)
        writer.save(self.path(ds.layer, ds.name))

    def _replace_where(self, spark, ds: DeltaDataSet) -> None:
        """Overwrite the rows matching ``ds.where`` with ``ds.df`` (whose rows must all match it), in one
        Delta commit; the table must exist (an incremental step follows a full build)."""
        assert ds.where, f"{ds.name}: replace_where needs a predicate"
        if not self.exists(ds.layer, ds.name):
            raise RuntimeError(f"{ds.table} does not exist: build it in full before replacing part of it")
        w = ds.df.write.format("delta").mode("overwrite").option("replaceWhere", ds.where)
        _with_description(w, ds).save(self.path(ds.layer, ds.name))

    def _merge(self, spark, ds: DeltaDataSet) -> None:
        """Upsert by ``keys``: matched rows are updated when they changed, new rows inserted."""
        assert ds.keys, f"{ds.name}: merge needs keys"
        path = self.path(ds.layer, ds.name)
        if not self.exists(ds.layer, ds.name):
            ds.df.write.format("delta").mode("overwrite").save(path)
            return
        view = f"_src_{ds.name}"
        ds.df.createOrReplaceTempView(view)
        on = " and ".join(f"t.`{k}` <=> s.`{k}`" for k in ds.keys)
        spark.sql(f"merge into delta.`{path}` t using {view} s on {on} "
                  f"when matched then update set * when not matched then insert *")
        spark.catalog.dropTempView(view)

    @staticmethod
    def _fingerprint(df) -> tuple:
        """(schema, rows, order-independent sum of row hashes) of a DataFrame."""
        from pyspark.sql import functions as F

        cols = sorted(df.columns)
        row = df.select(F.count(F.lit(1)).alias("n"),
                        F.sum(F.xxhash64(*[F.col(f"`{c}`") for c in cols]).cast("decimal(38,0)")).alias("h")).first()
        return (sorted((f.name, f.dataType.simpleString()) for f in df.schema.fields), row["n"], row["h"])

    def unchanged(self, spark, ds: DeltaDataSet) -> bool:
        """True when ``ds`` holds exactly the rows (and columns) its table already holds (for
        ``replace_partition``: the rows of its partition)."""
        if not self.exists(ds.layer, ds.name):
            return False
        current = self.read(spark, ds.layer, ds.name)
        if ds.mode == "replace_partition":
            current = current.where(f"{ds.partition_col} = {_lit(ds.partition_value)}")
        return self._fingerprint(current) == self._fingerprint(ds.df)

    def _overwrite(self, spark, ds: DeltaDataSet) -> None:
        if ds.skip_unchanged and self.unchanged(spark, ds):
            return
        w = ds.df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
        if ds.partition_col:
            w = w.partitionBy(ds.partition_col)
        _with_description(w, ds).save(self.path(ds.layer, ds.name))

    # -- write (Arrow, no JVM: the small tables of the auto-flow) --------------------------------
    def overwrite_arrow(self, layer: str, name: str, data, description: str = "") -> None:
        from deltalake import write_deltalake

        write_deltalake(self.path(layer, name), data, mode="overwrite", schema_mode="overwrite",
                        description=description or None)

    def merge_arrow(self, layer: str, name: str, data, key: str, insert_only: bool = False) -> int:
        """MERGE an Arrow table by ``key``: matched rows replaced (unless ``insert_only``), new rows
        inserted; creates the table when missing. Returns the rows inserted."""
        from deltalake import DeltaTable, write_deltalake

        if not self.exists(layer, name):
            write_deltalake(self.path(layer, name), data, mode="overwrite")
            return data.num_rows
        if not data.num_rows:
            return 0
        m = DeltaTable(self.path(layer, name)).merge(data, f"t.{key} = s.{key}", source_alias="s", target_alias="t")
        if not insert_only:
            m = m.when_matched_update_all()
        return int(m.when_not_matched_insert_all().execute().get("num_target_rows_inserted", 0))

    # -- versions (write-audit-publish) -----------------------------------------------------------
    def restore(self, spark, layer: str, name: str, version: int | None) -> None:
        """Put a table back to ``version`` (None: it did not exist, so it is removed)."""
        path = self.path(layer, name)
        if version is None:
            import shutil

            if "://" in path:
                raise RuntimeError(f"cannot remove {path}: restore a new table on object storage by hand")
            shutil.rmtree(path, ignore_errors=True)
            return
        if self.version(layer, name) != version:
            spark.sql(f"restore table delta.`{path}` to version as of {int(version)}")
