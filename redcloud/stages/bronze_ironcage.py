"""Bronze ingest of the 数据铁笼 landing folder, each export file exactly once, bad rows quarantined.

One run for a logical date:

1. lists the landing folder (``*.part`` files are still being copied and hidden files are
   ignored; files that are not 数据铁笼 exports are logged and left alone) and hashes every file;
2. decides per file, the SHA-256 of its content being its identity (``ops/ironcage_file_registry``):
   a hash registered under another logical date is skipped (already in bronze); a hash registered
   under this date is loaded again (a rerun replaces what the date wrote, so it gives identical
   tables); a new hash is loaded. Copies of the same content under other names are loaded once
   (the registered name, else the first name in sort order, is the one read);
3. reads the chosen files with :func:`redcloud.sources.ironcage.read_export` and writes, each as this
   date's partition (``replaceWhere`` on ``_logical_date``):

   - ``bronze/ironcage__power_operations``, ``..__duty_records``, ``..__complaints``: the canonical
     columns (all strings), ``_file``, ``_line``, ``_file_sha256``, ``_encoding`` and the standard
     load metadata (``_row_hash`` covers the data columns only, so a row exported twice has one hash);
   - ``quarantine/ironcage__rejects``: kind, file, line, sha256, reason, detail, raw, format,
     encoding, the shared quarantine columns (source = file, line, record_key, rule = reason,
     value = the raw line), ``_logical_date``, ``_loaded_at``;
   - ``ops/ironcage_file_registry`` (written last): sha256, file, kind, format, encoding, rows,
     rejects, ``_logical_date``, ``_loaded_at``: the files this date loaded.

The registry is written after the data, so a run that fails part-way registers nothing: the same
date's rerun loads the files again into the same partitions. A file this date loaded before that has
since left the landing folder fails the rerun (replacing the partition without it would lose rows).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from redcloud.context import RunContext
from redcloud.lake import DeltaDataSet, Lake
from redcloud.sources import ironcage as IC
from redcloud.sources.ironcage import file_hash
from redcloud.stages import reconciliation

log = logging.getLogger(__name__)

KINDS = IC.KINDS
REGISTRY = "ironcage_file_registry"
QUARANTINE = "ironcage__rejects"
META = ["_file", "_line", "_file_sha256", "_encoding"]


def bronze_table(kind: str) -> str:
    return f"ironcage__{kind}"


# -- schemas (explicit, so empty batches work) ----------------------------------------------------

def bronze_schema(kind: str):
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType([StructField(c, StringType()) for c in IC.columns(kind)]
                      + [StructField("_file", StringType()), StructField("_line", LongType()),
                         StructField("_file_sha256", StringType()), StructField("_encoding", StringType())])


def reject_schema():
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType([StructField(c, LongType() if c == "line" else StringType()) for c in IC.REJECT_COLUMNS])


def registry_schema():
    from pyspark.sql.types import LongType, StringType, StructField, StructType

    return StructType([StructField(c, StringType()) for c in ("sha256", "file", "kind", "format", "encoding")]
                      + [StructField("rows", LongType()), StructField("rejects", LongType())])


def _frame(spark, records: list[dict], schema):
    """A DataFrame with exactly ``schema`` from dicts, via Arrow (fast; works for an empty list too)."""
    import pyarrow as pa
    from pyspark.sql.types import LongType

    arrays = [pa.array([r.get(f.name) for r in records],
                       type=pa.int64() if isinstance(f.dataType, LongType) else pa.string())
              for f in schema.fields]
    return spark.createDataFrame(pa.Table.from_arrays(arrays, names=schema.names), schema=schema)


# -- which files to load --------------------------------------------------------------------------

@dataclass
class LandingFile:
    path: Path
    kind: str
    sha256: str
    action: str = "load"  # load | skip
    why: str = ""


def list_landing(landing: Path) -> list[LandingFile]:
    """The export files in the landing folder, hashed (partial copies and other files left out)."""
    out = []
    if not landing.is_dir():
        log.warning("landing folder %s does not exist: no 数据铁笼 files to load", landing)
        return out
    for p in sorted(landing.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.name.endswith(".part"):
            continue
        try:
            kind = IC.detect_kind(p.name)
            IC.detect_format(p.name)
        except ValueError as e:
            log.warning("ignored in the landing folder: %s", e)
            continue
        out.append(LandingFile(p, kind, file_hash(p)))
    return out


def registered(lake: Lake) -> list[dict]:
    """The registry rows (sha256, file, _logical_date), empty before the first load."""
    if not lake.exists("ops", REGISTRY):
        return []
    return lake.pandas("ops", REGISTRY, ["sha256", "file", "_logical_date", "_loaded_at"]).to_dict("records")


def plan(files: list[LandingFile], registry: list[dict], day: dt.date) -> list[LandingFile]:
    """Mark each file load or skip (hash = identity); fail when a file this date loaded is gone."""
    by_hash: dict[str, list[dict]] = {}
    for r in registry:
        by_hash.setdefault(r["sha256"], []).append(r)
    present = {f.sha256 for f in files}
    gone = [r for r in registry if r["_logical_date"] == day and r["sha256"] not in present]
    if gone:
        names = ", ".join(sorted(r["file"] for r in gone))
        raise RuntimeError(f"数据铁笼 files loaded for {day} are no longer in the landing folder: {names}. "
                           f"Put them back before rerunning {day} (a rerun replaces the date's bronze partition).")
    chosen: dict[str, LandingFile] = {}
    for f in files:
        regs = by_hash.get(f.sha256, [])
        other = sorted((r["_logical_date"], r.get("_loaded_at"), r["file"]) for r in regs if r["_logical_date"] != day)
        if other:
            first_day, first_at, first_name = other[0]
            when = f" at {first_at:%Y-%m-%d %H:%M}" if first_at is not None else ""
            named = "" if first_name == f.path.name else f" as {first_name}"
            f.action, f.why = "skip", f"same content already loaded{named} for {first_day}{when}"
        elif f.sha256 in chosen:
            f.action, f.why = "skip", f"same content as {chosen[f.sha256].path.name}"
        else:
            chosen[f.sha256] = f
    # on a rerun, read the copy registered under this date when it is still there (identical _file)
    for r in registry:
        if r["_logical_date"] != day or r["sha256"] not in chosen:
            continue
        same = [f for f in files if f.sha256 == r["sha256"]]
        pick = next((f for f in same if f.path.name == r["file"]), None)
        if pick is not None and chosen.get(r["sha256"]) is not pick:
            prev = chosen[r["sha256"]]
            prev.action, prev.why = "skip", f"same content as {pick.path.name}"
            pick.action, pick.why = "load", ""
            chosen[r["sha256"]] = pick
    for f in files:
        if f.action == "skip":
            log.info("skip %s: %s", f.path.name, f.why)
    return files


# -- the stage ------------------------------------------------------------------------------------

def run(ctx: RunContext) -> dict:
    """Load new 数据铁笼 export files from the landing folder into bronze for the logical date.

    Returns ``tables``: one dict per kind: ``source``, ``table``, ``files_loaded``, ``files_skipped``,
    ``source_rows`` (good + rejected records read from the files loaded by this run),
    ``bronze_rows`` and ``quarantine_rows`` (read back from the date's partitions; they add up to
    ``source_rows``), ``balanced`` and ``seconds``.
    """
    from pyspark.sql import functions as F

    from spark_jobs import bronze as B

    spark, lake, day = ctx.spark, ctx.lake, ctx.day
    t0 = time.perf_counter()
    landing = Path(ctx.settings.paths.landing_dir)
    loaded_at = dt.datetime.now().replace(microsecond=0)
    files = plan(list_landing(landing), registered(lake), day)

    exports: list[IC.ExportFile] = []
    for f in files:
        if f.action != "load":
            continue
        data = f.path.read_bytes()
        ef = IC.read_export(f.path, data)
        if ef.sha256 != f.sha256:
            raise RuntimeError(f"{f.path.name} changed while it was being loaded; rerun {day}")
        log.info("read %s: %s %s %s, %d rows, %d rejects", ef.file, ef.kind, ef.format, ef.encoding,
                 len(ef.rows), len(ef.rejects))
        exports.append(ef)

    for kind in KINDS:
        rows = [r for ef in exports if ef.kind == kind for r in ef.rows]
        df = _frame(spark, rows, bronze_schema(kind))
        batch = B.with_load_metadata(df, source=f"ironcage.{kind}", logical_date=day, loaded_at=loaded_at)
        batch = batch.withColumn("_row_hash", B.row_hash(IC.columns(kind)))  # data columns only
        lake.write(spark, DeltaDataSet(bronze_table(kind), "bronze", batch, mode="replace_partition",
                                       partition_col="_logical_date", partition_value=day,
                                       description=f"数据铁笼 {kind} export rows (raw strings)"))

    rejects = [r for ef in exports for r in ef.rejects]
    q = (_frame(spark, rejects, reject_schema())
         # the columns every quarantine table shares (spark_jobs.silver.common.QUARANTINE_SHARED)
         .withColumn("source", F.col("file")).withColumn("record_key", F.lit(None).cast("string"))
         .withColumn("rule", F.col("reason")).withColumn("value", F.col("raw"))
         .withColumn("_logical_date", F.lit(day).cast("date"))
         .withColumn("_loaded_at", F.lit(loaded_at).cast("timestamp")))
    lake.write(spark, DeltaDataSet(QUARANTINE, "quarantine", q, mode="replace_partition",
                                   partition_col="_logical_date", partition_value=day,
                                   description="数据铁笼 export records that could not be read, with the reason"))

    reg_rows = [dict(sha256=ef.sha256, file=ef.file, kind=ef.kind, format=ef.format, encoding=ef.encoding,
                     rows=len(ef.rows), rejects=len(ef.rejects)) for ef in exports]
    reg = (_frame(spark, reg_rows, registry_schema())
           .withColumn("_logical_date", F.lit(day).cast("date"))
           .withColumn("_loaded_at", F.lit(loaded_at).cast("timestamp")))
    lake.write(spark, DeltaDataSet(REGISTRY, "ops", reg, mode="replace_partition",
                                   partition_col="_logical_date", partition_value=day,
                                   description="数据铁笼 export files loaded, by content hash"))

    # read the date's partitions back (one job): what was written, not what was meant to be
    on_day = F.col("_logical_date") == F.lit(day)
    parts = [lake.read(spark, "bronze", bronze_table(k)).where(on_day).select(F.lit(f"bronze:{k}").alias("t"))
             for k in KINDS]
    parts.append(lake.read(spark, "quarantine", QUARANTINE).where(on_day)
                 .select(F.concat(F.lit("quarantine:"), F.col("kind")).alias("t")))
    union = parts[0]
    for p in parts[1:]:
        union = union.unionByName(p)
    counts = {r["t"]: int(r["n"]) for r in union.groupBy("t").agg(F.count(F.lit(1)).alias("n")).collect()}
    out = []
    for kind in KINDS:
        n_source = sum(ef.n_read for ef in exports if ef.kind == kind)
        n_bronze = counts.get(f"bronze:{kind}", 0)
        n_quarantine = counts.get(f"quarantine:{kind}", 0)
        out.append(dict(source=f"ironcage.{kind}", table=f"bronze/{bronze_table(kind)}", rows=n_bronze,
                        files_loaded=sum(f.action == "load" for f in files if f.kind == kind),
                        files_skipped=sum(f.action == "skip" for f in files if f.kind == kind),
                        source_rows=n_source, bronze_rows=n_bronze, quarantine_rows=n_quarantine,
                        balanced=n_source == n_bronze + n_quarantine,
                        seconds=round(time.perf_counter() - t0, 2)))
    reconciliation.record_bronze(ctx, [dict(bronze_table=r["table"].split("/", 1)[1], source_kind="ironcage",
                                            source=r["source"], source_rows=r["source_rows"],
                                            rejected_rows=r["quarantine_rows"], bronze_rows=r["bronze_rows"])
                                       for r in out])
    skipped = [dict(file=f.path.name, kind=f.kind, why=f.why) for f in files if f.action == "skip"]
    for f in skipped:
        ctx.progress.note(f"数据铁笼 {f['file']}: skipped, {f['why']}")
    for r in out:
        ctx.progress.table(r["table"], r["bronze_rows"], r["seconds"],
                           f"files {r['files_loaded']} (skipped {r['files_skipped']}), source {r['source_rows']:,}, "
                           f"quarantine {r['quarantine_rows']:,}")
        if not r["balanced"]:
            log.error("数据铁笼 %s: source rows %d != bronze %d + quarantine %d", r["table"], r["source_rows"],
                      r["bronze_rows"], r["quarantine_rows"])
    return {"tables": out, "skipped_files": skipped}
