"""``ops/reconciliation``: nothing lost between a source and silver, one row per source table and batch.

A batch is what one logical date brought from one source table (an organisation-database table, a
数据铁笼 export kind, a web dataset) into its bronze table. Its row is written in two steps:

- the bronze stage records ``source_rows`` (rows the source delivered: extracted from the database,
  read from the export files, parsed from the web pages), ``rejected_rows`` (rows bronze could not
  take, kept in ``quarantine/ironcage__rejects``) and ``bronze_rows`` (rows in the date's bronze
  partition); ``bronze_balanced`` = source = bronze + rejected;
- the silver stage records ``silver_rows`` (rows accepted into silver), ``quarantine_rows`` (rows
  quarantined with their reasons) and ``deleted_rows`` (tombstones); ``silver_balanced`` = bronze =
  silver + quarantine.

``complete`` says both steps ran for the batch and ``balanced`` that both balance. Each step merges
only its own columns, so a rerun of either replaces what it wrote and keeps the other's.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)

TABLE = "reconciliation"
SCHEMA = ("batch_id string, logical_date date, source_kind string, source string, bronze_table string, "
          "entity string, source_rows long, rejected_rows long, bronze_rows long, silver_rows long, "
          "quarantine_rows long, deleted_rows long, bronze_balanced boolean, silver_balanced boolean, "
          "complete boolean, balanced boolean")
BRONZE_SIDE = ("source_kind", "source", "source_rows", "rejected_rows", "bronze_rows")
SILVER_SIDE = ("entity", "bronze_rows", "silver_rows", "quarantine_rows", "deleted_rows")
COLUMNS = tuple(c.split()[0] for c in SCHEMA.split(", "))


def batch_id(bronze_table: str, day: dt.date) -> str:
    return f"{bronze_table}@{day.isoformat()}"


def _merge(spark, lake, day: dt.date, rows: list[dict], side: tuple[str, ...]) -> None:
    if not rows:
        return
    full = [{c: r.get(c) for c in COLUMNS} | {"batch_id": batch_id(r["bronze_table"], day), "logical_date": day}
            for r in rows]
    path = lake.path("ops", TABLE)
    if not lake.exists("ops", TABLE):
        spark.createDataFrame([], SCHEMA).write.format("delta").save(path)
    elif set(lake.read(spark, "ops", TABLE).columns) != set(COLUMNS):
        # a lake from before the source -> bronze columns: start the table over (earlier versions keep
        # the old rows for time travel); the stages' next runs fill it again
        log.warning("ops/%s has an older layout: starting it over with the source -> silver columns", TABLE)
        (spark.createDataFrame([], SCHEMA).write.format("delta").mode("overwrite")
         .option("overwriteSchema", "true").save(path))
    spark.createDataFrame(full, SCHEMA).createOrReplaceTempView("_recon_batch")
    # the counts after the merge: this side's from the batch (s), the other side's as stored (t) ...
    now = {c: (f"s.{c}" if c in side else f"t.{c}") for c in BRONZE_SIDE + SILVER_SIDE}
    # ... or, for a new row, all from the batch (the other side's are NULL until its step runs)
    new = {c: f"s.{c}" for c in now}

    def balance(v: dict[str, str]) -> dict[str, str]:
        bronze_ok = f"({v['source_rows']} = {v['bronze_rows']} + {v['rejected_rows']})"
        silver_ok = f"({v['bronze_rows']} = {v['silver_rows']} + {v['quarantine_rows']})"
        return {"bronze_balanced": bronze_ok, "silver_balanced": silver_ok,
                "complete": f"({v['source_rows']} is not null and {v['silver_rows']} is not null)",
                "balanced": f"(coalesce({bronze_ok}, true) and coalesce({silver_ok}, true))"}

    sets = ", ".join([f"t.{c} = s.{c}" for c in side] + [f"t.{c} = {e}" for c, e in balance(now).items()])
    values = {c: f"s.{c}" for c in COLUMNS} | balance(new)
    spark.sql(f"""merge into delta.`{path}` t using _recon_batch s on t.batch_id = s.batch_id
                  when matched then update set {sets}
                  when not matched then insert ({", ".join(COLUMNS)})
                    values ({", ".join(values[c] for c in COLUMNS)})""")
    spark.catalog.dropTempView("_recon_batch")


def record_bronze(ctx, rows: list[dict]) -> None:
    """The bronze step of each batch: dicts with ``bronze_table`` (e.g. ``org__members``), ``source_kind``
    (orgdb, ironcage, web), ``source``, ``source_rows``, ``rejected_rows``, ``bronze_rows``."""
    _merge(ctx.spark, ctx.lake, ctx.day, rows, BRONZE_SIDE)


def record_silver(ctx, rows: list[dict]) -> None:
    """The silver step of each batch: dicts with ``bronze_table``, ``entity``, ``bronze_rows``,
    ``silver_rows``, ``quarantine_rows``, ``deleted_rows``."""
    _merge(ctx.spark, ctx.lake, ctx.day, rows, SILVER_SIDE)


def for_day(lake, day: dt.date) -> list[dict]:
    """The date's rows (every column), ordered by bronze table."""
    if not lake.exists("ops", TABLE):
        return []
    rows = lake.arrow("ops", TABLE, filters=[("logical_date", "=", day)]).to_pylist()   # NULL stays None
    return sorted(rows, key=lambda r: r["bronze_table"])
