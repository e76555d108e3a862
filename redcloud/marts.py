"""The ``marts`` stage: ``dbt build`` of ``dbt_project/`` (dbt-spark) for one logical date.

dbt runs in-process with :class:`dbt.cli.main.dbtRunner`, after :func:`redcloud.spark.get_spark` has
created the Delta-configured session, so dbt-spark (``method: session``) reuses it: one JVM. The same
project also runs as a separate process (``dbt build`` from the pipeline venv, e.g. Airflow/Cosmos):
``python -m redcloud.marts env`` prints the environment it needs (lake root, logical date, jars, run
folder for the Derby metastore and warehouse).

Marts are Delta tables at ``<lake_root>/marts/<model>``. Incremental marts replace the logical date's
partition (date or month) and the earlier ones whose inputs changed since the last run
(:func:`changed_from`: late updates and deletes), so reruns change nothing, backfills touch only their
date, and the result equals a full refresh.
Marts over the models' score tables (tag ``model_outputs``) are built only when their score table
exists in gold; otherwise they are skipped and the skip is logged and reported.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import threading
import time
from functools import reduce
from pathlib import Path
from typing import NamedTuple

from redcloud.config import Settings
from redcloud.context import RunContext
from redcloud.rules import vocab

log = logging.getLogger("redcloud.marts")

# Marts over model outputs -> the gold score table each one reads.
MODEL_OUTPUT_MARTS = {
    "mart_vitality_by_unit": "score_member_vitality",
    "mart_cadre_evaluation_by_unit": "score_cadre_evaluation",
    "mart_branch_archetypes": "score_branch_innovation",
    "mart_integrity_flags": "score_integrity_portrait",
    "mart_cadre_evaluation_fairness": "cadre_evaluation_fairness",
}
CORE_MARTS = (
    "mart_member_composition", "mart_membership_changes", "mart_org_life_monthly", "mart_learning_compliance",
    "mart_village_work", "mart_poverty_projects", "mart_power_operation_monthly", "mart_duty_targets_monthly",
    "mart_leadership_teams", "mart_cadre_changes", "mart_disclosure_timeliness",
    "mart_project_support", "mart_training_by_unit", "mart_member_questions",
    "mart_volunteer_market",
)
MARTS = CORE_MARTS + tuple(MODEL_OUTPUT_MARTS)
MODEL_OUTPUT_STAGING = {
    "score_member_vitality": "stg_score_member_vitality",
    "score_cadre_evaluation": "stg_score_cadre_evaluation",
    "score_branch_innovation": "stg_score_branch_innovation",
    "score_integrity_portrait": "stg_score_integrity_portrait",
    "cadre_evaluation_fairness": "stg_cadre_evaluation_fairness",
}


class Interval(NamedTuple):
    """A validity-period date spec (SCD2): rows valid on ``[start, end)`` (``end`` NULL = open).
    A row whose only change is its ``end`` changes the tables read at dates from the earlier of its
    two ends on, not from its ``start`` (closing a member's open period today leaves the earlier
    snapshots as they were)."""
    start: str
    end: str


class Via(NamedTuple):
    """A date spec for a table without dates of its own: a changed row's first date is the earliest
    ``date`` of its ``key`` in another lake table (either version the two runs saw); a row whose key
    has no row there is not read by the mart at any date (e.g. a member with no status history is on
    no roll)."""
    layer: str
    table: str
    key: str
    date: str


# The incremental marts and the lake tables they read: (layer, table, date spec, columns used or None
# for all). The date spec is a date column, an :class:`Interval`, a :class:`Via`, or None (a change
# there recomputes from var history_start). A run recomputes each mart from the first date whose
# input rows changed since the last marts run, so late updates and deletes reach earlier periods and
# the marts equal a full refresh (tests/integration/test_incremental_equals_full.py).
# mart_member_composition reads the member's roll periods from the history and only the attributes
# below from silver/members (stg_members drops deleted members).
INCREMENTAL_INPUTS = {
    "mart_member_composition": [
        ("silver", "member_status_history", Interval("valid_from", "valid_to"),
         ["member_id", "org_id", "party_status", "is_on_roll", "valid_from", "valid_to"]),
        ("silver", "members", Via("silver", "member_status_history", "member_id", "valid_from"),
         ["member_id", "gender", "ethnicity", "education", "occupation", "birth_date", "join_date",
          "is_deleted"]),
        ("gold", "dim_organization", None, None)],
    "mart_org_life_monthly": [
        ("gold", "fct_branch_month", "month", None), ("gold", "fct_member_month", "month", None),
        ("gold", "dim_organization", None, None)],
    "mart_learning_compliance": [
        ("gold", "fct_learning_daily", "work_date", None),
        ("gold", "fct_cadre_year", "year", ["cadre_id", "year", "unit_org_id"]),
        ("gold", "dim_organization", None, None)],
    "mart_village_work": [
        ("gold", "fct_village_work_daily", "work_date", None), ("gold", "dim_organization", None, None)],
    # gold classifies every operation as of the logical date: a verdict that moved (a deadline passed
    # today, a late 办结) is a changed row in the month the operation was received
    "mart_power_operation_monthly": [("gold", "fct_power_operation", "month", None)],
    # a month's distribution changes with its members' scores (a full rescore rewrites every row with a
    # new scored_at: only the index is compared), and every month a member was scored in changes when
    # the member moves to another organisation or is deleted at the source
    "mart_vitality_by_unit": [
        ("gold", "score_member_vitality", "month", ["member_id", "month", "vitality_index"]),
        ("silver", "members", Via("gold", "score_member_vitality", "member_id", "month"),
         ["member_id", "org_id", "is_deleted"]),
        ("gold", "dim_organization", None, None)],
}
# the run date a gold rebuild stamps on every row (fct_branch_month): no incremental mart reads it, and
# comparing it would make every row look changed every day
IGNORED_COLUMNS = {"as_of_date"}
INPUT_VERSIONS = ("ops", "mart_input_versions")  # per mart, the input versions its last build read
FROM_START = dt.date(1900, 1, 1)  # "recompute everything" (dbt clamps it to var history_start)


def first_changed(spark, lake, layer: str, table: str, col, cols: list[str] | None,
                  seen: int | None, now: int, seen_versions: dict[str, int] | None = None,
                  keep=None) -> dt.date | None:
    """The earliest date among the rows of ``layer/table`` that differ between the version the last
    marts run saw (``seen``) and version ``now``, by the date spec ``col`` (see
    :data:`INCREMENTAL_INPUTS`); None when nothing changed, :data:`FROM_START` when the difference
    has no date (no date spec, no record, a vacuumed version, a changed schema). ``keep``: a
    ``pyarrow.Table`` of keys (its columns); only the rows of both versions with such a key are
    compared (the rows the reader can use, e.g. the members linked to a cadre).

    A day's merge rewrites few of a table's data files (:meth:`redcloud.lake.Lake.change_files`):
    those are compared in DuckDB, in process, where a Spark job per table would cost more than its
    rows (:func:`_first_changed_in_files`). Otherwise (a partitioned or remote table, a vacuumed
    version) Spark compares the whole versions (:func:`_first_changed_in_versions`). Both give the
    same answers (``tests/unit/test_marts_changed_from.py`` runs its cases both ways)."""
    if seen is None:
        return FROM_START
    if now == seen:
        return None
    files = lake.change_files(layer, table, seen, now)
    if files is not None:
        return _first_changed_in_files(lake, files, col, cols, seen_versions, keep)
    return _first_changed_in_versions(spark, lake, layer, table, col, cols, seen, now, seen_versions, keep)


def _first_changed_in_files(lake, files: tuple[list[str], list[str]], col, cols: list[str] | None,
                            seen_versions: dict[str, int] | None, keep) -> dt.date | None:
    """:func:`first_changed` on the data files two versions do not share (``files``: added,
    removed), in DuckDB."""
    import duckdb

    from redcloud.spark import TIMEZONE

    added, removed = files
    if not added and not removed:   # a commit of metadata only
        return None
    con = duckdb.connect()
    try:
        con.execute(f"SET TimeZone = '{TIMEZONE}'")   # timestamps to dates as Spark's session does
        q = lambda c: '"' + c.replace('"', '""') + '"'  # noqa: E731

        def scan(paths: list[str]) -> str:
            listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
            return f"read_parquet([{listed}], union_by_name = true)"

        # a side without files is the other side's columns with no rows
        con.execute(f"CREATE TEMP VIEW new_files AS SELECT * FROM {scan(added or removed)}"
                    + ("" if added else " LIMIT 0"))
        con.execute(f"CREATE TEMP VIEW old_files AS SELECT * FROM {scan(removed or added)}"
                    + ("" if removed else " LIMIT 0"))
        new_cols = {r[0]: r[1] for r in con.execute("DESCRIBE new_files").fetchall()}
        old_cols = {r[0] for r in con.execute("DESCRIBE old_files").fetchall()}
        use = sorted(cols or [c for c in new_cols if c not in IGNORED_COLUMNS])
        if not set(use) <= old_cols or not set(use) <= set(new_cols):
            return FROM_START
        listed = ", ".join(q(c) for c in use)
        semi = ""
        if keep is not None:
            con.register("keep_keys", keep)
            semi = f" SEMI JOIN keep_keys USING ({', '.join(q(c) for c in keep.column_names)})"
        for side, src in (("a", "new_files"), ("b", "old_files")):
            con.execute(f"CREATE TEMP VIEW {side} AS SELECT {listed}, hash({listed}) AS _h FROM {src}{semi}")
        con.execute("CREATE TEMP VIEW only_new AS SELECT * FROM a ANTI JOIN b USING (_h)")
        con.execute("CREATE TEMP VIEW only_old AS SELECT * FROM b ANTI JOIN a USING (_h)")

        def as_date(expr: str, kind: str) -> str:
            if kind in ("INTEGER", "BIGINT", "SMALLINT") and not isinstance(col, (Interval, Via)):
                return f"make_date(CAST({expr} AS INTEGER), 1, 1)"   # a year column
            if kind.startswith("TIMESTAMP") and "TIME ZONE" not in kind:
                # Spark's Parquet timestamps are instants stored as UTC: their day in the session's zone
                return f"CAST(({expr}) AT TIME ZONE 'UTC' AS DATE)"
            return f"CAST({expr} AS DATE)"

        if isinstance(col, Interval):
            # pair the rows that differ only in their end: such a pair differs from the earlier end on
            pair = ", ".join(q(c) for c in use if c != col.end)
            s, e = q(col.start), q(col.end)
            d = "CASE WHEN n_a = 1 AND n_b = 1 THEN coalesce(least(e_a, e_b), least(s_a, s_b)) " \
                "ELSE least(s_a, s_b) END"
            n, d = con.execute(
                f"WITH sa AS (SELECT hash({pair}) AS _p, count(*) AS n_a, min({s}) AS s_a, any_value({e}) AS e_a "
                f"            FROM only_new GROUP BY 1), "
                f"     sb AS (SELECT hash({pair}) AS _p, count(*) AS n_b, min({s}) AS s_b, any_value({e}) AS e_b "
                f"            FROM only_old GROUP BY 1) "
                f"SELECT count(*), min({as_date(d, new_cols[col.start])}) FROM sa FULL JOIN sb USING (_p)").fetchone()
        elif isinstance(col, Via):
            con.register("changed_keys", con.sql(
                f"SELECT DISTINCT {q(col.key)} FROM (SELECT {q(col.key)} FROM only_new "
                f"UNION ALL SELECT {q(col.key)} FROM only_old)").to_arrow_table())
            via = f"{col.layer}/{col.table}"
            versions = sorted({lake.version(col.layer, col.table), (seen_versions or {}).get(via)} - {None})
            if not versions:
                return FROM_START
            for i, v in enumerate(versions):
                con.register(f"via_{i}", lake.arrow(col.layer, col.table, [col.key, col.date], version=v))
            dates = " UNION ALL ".join(f"SELECT * FROM via_{i}" for i in range(len(versions)))
            kind = {r[0]: r[1] for r in con.execute("DESCRIBE via_0").fetchall()}[col.date]
            n, d = con.execute(f"SELECT count(*), min({as_date(q(col.date), kind)}) FROM changed_keys "
                               f"LEFT JOIN ({dates}) USING ({q(col.key)})").fetchone()
            if n and d is None:
                return None   # no changed key has a date there: the mart reads none of them
        else:
            date = "CAST(NULL AS DATE)" if col is None else as_date(q(col), new_cols[col])
            n, d = con.execute(f"SELECT count(*), min(_d) FROM (SELECT {date} AS _d FROM only_new "
                               f"UNION ALL SELECT {date} AS _d FROM only_old)").fetchone()
    finally:
        con.close()
    if not n:
        return None
    return d if d is not None else FROM_START


def _first_changed_in_versions(spark, lake, layer: str, table: str, col, cols: list[str] | None, seen: int,
                               now: int, seen_versions: dict[str, int] | None, keep) -> dt.date | None:
    """:func:`first_changed` on the whole versions ``seen`` and ``now``, in Spark."""
    from pyspark.sql import functions as F

    new = lake.read_version(spark, layer, table, now)
    try:
        old = lake.read_version(spark, layer, table, seen)
        old.schema  # noqa: B018 - resolves the version now
    except Exception:  # noqa: BLE001 - vacuumed or gone
        return FROM_START
    use = sorted(cols or [c for c in new.columns if c not in IGNORED_COLUMNS])
    if not set(use) <= set(old.columns):
        return FROM_START
    if keep is not None:
        keys = F.broadcast(spark.createDataFrame(keep))
        new, old = (df.join(keys, keep.column_names, "left_semi") for df in (new, old))

    def hashed(columns):
        return F.xxhash64(F.to_json(F.struct(*sorted(columns))))

    a = new.select(*use, hashed(use).alias("_h"))
    b = old.select(*use, hashed(use).alias("_h"))
    only_new, only_old = a.join(b.select("_h"), "_h", "left_anti"), b.join(a.select("_h"), "_h", "left_anti")

    def as_date(c):
        if col is not None and not isinstance(col, (Interval, Via)) and dict(new.dtypes)[col] in ("int", "bigint",
                                                                                                  "smallint"):
            return F.make_date(c, F.lit(1), F.lit(1)).cast("date")   # a year column
        return c.cast("date")

    if isinstance(col, Interval):
        # pair the rows that differ only in their end: such a pair differs from the earlier end on
        pair = [c for c in use if c != col.end]

        def side(df, tag):
            return (df.groupBy(hashed(pair).alias("_p"))
                    .agg(F.count(F.lit(1)).alias(f"n_{tag}"), F.min(col.start).alias(f"s_{tag}"),
                         F.first(col.end).alias(f"e_{tag}")))

        j = side(only_new, "a").join(side(only_old, "b"), "_p", "full")
        paired = (F.col("n_a") == 1) & (F.col("n_b") == 1)
        d = F.when(paired, F.coalesce(F.least("e_a", "e_b"), F.least("s_a", "s_b"))).otherwise(F.least("s_a", "s_b"))
        row = j.agg(F.count(F.lit(1)).alias("n"), F.min(as_date(d)).alias("d")).first()
    elif isinstance(col, Via):
        keys = only_new.select(col.key).unionByName(only_old.select(col.key)).distinct()
        via = f"{col.layer}/{col.table}"
        versions = {lake.version(col.layer, col.table), (seen_versions or {}).get(via)} - {None}
        if not versions:
            return FROM_START
        dates = reduce(lambda x, y: x.unionByName(y),
                       [lake.read_version(spark, col.layer, col.table, v).select(col.key, col.date)
                        for v in sorted(versions)])
        row = keys.join(dates, col.key, "left").agg(
            F.count(F.lit(1)).alias("n"), F.min(as_date(F.col(col.date))).alias("d")).first()
        if row["n"] and row["d"] is None:
            return None   # no changed key has a date there: the mart reads none of them
    else:
        d = F.lit(None).cast("date") if col is None else as_date(F.col(col))
        row = only_new.select(d.alias("_d")).unionByName(only_old.select(d.alias("_d"))).agg(
            F.count(F.lit(1)).alias("n"), F.min("_d").alias("d")).first()
    if not row["n"]:
        return None
    return row["d"] if row["d"] is not None else FROM_START


# Marts updated from their last build instead of recounted (var update_from): additive counts whose
# rows on a date are the sum of each member's contribution, so a change of the listed inputs only
# moves the contributions of the members it touches. A change of any other input (the organisation
# tree) recounts. -> the inputs whose changes the update handles.
UPDATED_MARTS = {"mart_member_composition": ("silver/members", "silver/member_status_history")}


class Seen(NamedTuple):
    """What a mart's last build read: ``versions`` of its inputs and of the mart itself
    (``marts/<mart>``), its logical date, the latest logical date it has been built for (``through``)
    and whether every row it holds was computed from those versions (``consistent``: built forward
    from a full refresh; a backfill of an earlier date leaves the later dates as they were)."""
    versions: dict[str, int]
    logical_date: dt.date
    through: dt.date
    consistent: bool


def seen_inputs(lake) -> dict[str, Seen]:
    """Per mart, what its last build read (:func:`record_input_versions`); empty for a table of the
    former layout (one version per input for all marts): every mart then recomputes once."""
    if not lake.exists(*INPUT_VERSIONS):
        return {}
    df = lake.pandas(*INPUT_VERSIONS)
    if "mart" not in df.columns:
        return {}
    out = {}
    for mart, rows in df.groupby("mart"):
        first = rows.iloc[0]
        out[mart] = Seen({r.table: int(r.version) for r in rows.itertuples()}, first.logical_date, first.through,
                         bool(first.consistent))
    return out


def changed_from(ctx: RunContext, compare: bool = True) -> tuple[dict[str, str], dict[str, int], dict[str, dict]]:
    """Per incremental mart, the first date to recompute (ISO; absent: only the logical date's
    period); the input versions read now; and, per mart of :data:`UPDATED_MARTS` that can be updated
    from its last build, that build's versions (``{"marts/<mart>": v, input: v, ...}``, dbt var
    ``update_from``). ``compare=False`` (a full refresh) only reads the versions."""
    spark, lake = ctx.spark, ctx.lake
    seen = seen_inputs(lake) if compare else {}
    found, versions, out, bases = {}, {}, {}, {}
    for mart, inputs in INCREMENTAL_INPUTS.items():
        last = seen.get(mart)
        last_versions = last.versions if last else {}
        dates, changed = [], {}
        for layer, table, col, cols in inputs:
            name = f"{layer}/{table}"
            if name not in versions:
                versions[name] = lake.version(layer, table)   # None: the table does not exist
            # one comparison per table, version seen and date spec (two marts may read a table differently)
            key = (name, last_versions.get(name), repr(col), tuple(cols or ()))
            if key not in found:
                found[key] = None if not compare or versions[name] is None else \
                    first_changed(spark, lake, layer, table, col, cols, key[1], versions[name], last_versions)
            if found[key] is not None:
                dates.append(found[key])
                changed[name] = found[key]
        if dates:
            out[mart] = min(dates).isoformat()
        updatable = UPDATED_MARTS.get(mart, ())
        base, held = f"marts/{mart}", lake.version("marts", mart) if updatable else None
        if (changed and updatable and last is not None and last.consistent and ctx.day >= last.through
                and set(changed) <= set(updatable) and FROM_START not in changed.values()
                and all(t in last_versions for t in (base, *updatable))
                and held is not None and held >= last_versions[base]):
            bases[mart] = {t: last_versions[t] for t in (base, *updatable)}
    return out, {k: v for k, v in versions.items() if v is not None}, bases


def _latest_date(lake, mart: str) -> dt.date:
    """The latest snapshot date the mart holds (``as_of_date``)."""
    import pyarrow.compute as pc

    latest = pc.max(lake.arrow("marts", mart, ["as_of_date"])["as_of_date"]).as_py()
    return latest or dt.date.min


def record_input_versions(lake, versions: dict[str, int], day: dt.date, built: list[str],
                          full_refresh: bool = False) -> None:
    """Record, for each incremental mart ``built``, the input versions it read and its own version
    now; the other marts keep their records (see :class:`Seen`)."""
    import pyarrow as pa

    seen = seen_inputs(lake)
    rows = []
    for mart, inputs in INCREMENTAL_INPUTS.items():
        last = seen.get(mart)
        if mart in built:
            mine = {f"{layer}/{table}": versions[f"{layer}/{table}"] for layer, table, _, _ in inputs
                    if f"{layer}/{table}" in versions}
            mine[f"marts/{mart}"] = lake.version("marts", mart)
            through = day if full_refresh or last is None else max(last.through, day)
            if full_refresh:
                consistent = True
            elif last is None:   # built whole, or recounted from var history_start (nothing seen)
                consistent = mart not in UPDATED_MARTS or _latest_date(lake, mart) <= day
            else:
                consistent = last.consistent and day >= last.through
            record = Seen(mine, day, through, consistent)
        elif last is not None:
            record = last
        else:
            continue
        rows += [dict(mart=mart, table=t, version=int(v), logical_date=record.logical_date, through=record.through,
                      consistent=record.consistent) for t, v in record.versions.items() if v is not None]
    if not rows:
        return
    lake.overwrite_arrow(*INPUT_VERSIONS, pa.Table.from_pylist(rows, schema=pa.schema([
        ("mart", pa.string()), ("table", pa.string()), ("version", pa.int64()), ("logical_date", pa.date32()),
        ("through", pa.date32()), ("consistent", pa.bool_())])),
        description="per incremental mart, the input versions its last build read (redcloud.marts.changed_from)")


class DbtBuildFailed(RuntimeError):
    """dbt reported a failed model or test; nothing downstream should publish."""


def _is_delta(path: str) -> bool:
    return (Path(path) / "_delta_log").is_dir() if "://" not in path else True


def env(settings: Settings, day: dt.date | None = None) -> dict[str, str]:
    """Environment for a dbt run (in-process or ``dbt build`` in a subprocess)."""
    from redcloud.spark import jars

    s = settings
    run = Path(s.paths.run_dir) / "dbt"
    out = {
        "REDCLOUD_PATHS__LAKE_ROOT": s.paths.lake_root,
        "REDCLOUD_DBT__TARGET": s.dbt.target,
        "REDCLOUD_DBT__THREADS": str(s.dbt.threads),
        "REDCLOUD_DBT_RUN_DIR": str(run),
        "REDCLOUD_DBT_SPARK_JARS": ",".join(jars(s)),
        "REDCLOUD_SPARK__MASTER": s.spark.master,
        "REDCLOUD_SPARK__SHUFFLE_PARTITIONS": str(s.spark.shuffle_partitions),
        "REDCLOUD_SPARK__DRIVER_MEMORY": s.spark.driver_memory,
        "DBT_TARGET_PATH": str(run / "target"),
        "DBT_LOG_PATH": str(run / "logs"),
        "DBT_PROFILES_DIR": s.dbt.project_dir,
        "DBT_PROJECT_DIR": s.dbt.project_dir,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "SPARK_LOCAL_IP": "127.0.0.1",  # a stand-alone dbt's JVM binds loopback only
        "TZ": "Asia/Shanghai",
        "REDCLOUD_DBT_VOCAB": json.dumps(vocab.dbt_vocab(), ensure_ascii=False),
    }
    if day is not None:
        out["REDCLOUD_LOGICAL_DATE"] = day.isoformat()
    return out


# Core marts over a gold fact the gold stage writes only once its source has an event (a young lake,
# e.g. a 3-month city without 党务公开 yet): gold table -> (its staging model, the marts on it).
OPTIONAL_GOLD = {
    "fct_party_disclosure": ("stg_party_disclosures", ("mart_disclosure_timeliness",)),
    "fct_power_operation": ("stg_power_operations", ("mart_power_operation_monthly",)),
    "fct_project_support": ("stg_project_support", ("mart_project_support",)),
    "fct_cadre_training_year": ("stg_cadre_training_years", ("mart_training_by_unit",)),
    "fct_member_question": ("stg_member_questions", ("mart_member_questions",)),
    "fct_volunteer_need": ("stg_volunteer_needs", ("mart_volunteer_market",)),
}


def plan(settings: Settings) -> dict:
    """Which marts can be built now and which are skipped: a model-output mart needs its score table
    in gold, a mart of :data:`OPTIONAL_GOLD` its fact; ``exclude``: the dbt selectors to leave out
    (a skipped staging model with everything built on it)."""
    s = settings
    build, skip, exclude = [], {}, []
    for mart, table in MODEL_OUTPUT_MARTS.items():
        if _is_delta(f"{s.paths.lake_root}/gold/{table}"):
            build.append(mart)
        else:
            skip[mart] = f"gold/{table} does not exist yet"
            exclude += [mart, MODEL_OUTPUT_STAGING[table]]
    for table, (staging, on_it) in OPTIONAL_GOLD.items():
        if not _is_delta(f"{s.paths.lake_root}/gold/{table}"):
            for mart in on_it:
                skip[mart] = f"gold/{table} does not exist yet (no event in its source up to the logical date)"
            exclude.append(f"{staging}+")
    return dict(build=build, skip=skip, exclude=exclude)


def existing_marts(settings: Settings) -> list[str]:
    s = settings
    root = Path(s.paths.lake_root) / "marts"
    if "://" in s.paths.lake_root or not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "_delta_log").is_dir() and not p.name.startswith("_"))


SCHEMA = "redcloud_marts"  # profiles.yml schema


def register_existing(spark, settings: Settings) -> list[str]:
    """Point the session catalog's mart tables at ``<lake_root>/marts/<model>`` before dbt starts.

    dbt reads its relation cache before any hook runs, and the in-process session's catalog is
    in-memory: without this, every run would see no table and rebuild incremental marts from scratch.
    A table registered for another lake root (tests switch lakes) is re-pointed; one whose folder is
    gone is dropped (dropping an external table keeps files)."""
    s = settings
    spark.sql(f"create schema if not exists {SCHEMA}")
    present = {r.tableName for r in spark.sql(f"show tables in {SCHEMA}").collect()}
    registered = []
    for name in MARTS:
        path = f"{s.paths.lake_root.rstrip('/')}/marts/{name}"
        exists = _is_delta(path)
        if name in present:
            try:
                loc = spark.sql(f"describe detail {SCHEMA}.{name}").collect()[0]["location"]
            except Exception:  # noqa: BLE001 - files gone
                loc = None
            if not exists or loc is None or loc.removeprefix("file:").rstrip("/") != path:
                spark.sql(f"drop table if exists {SCHEMA}.{name}")
                present.discard(name)
        if exists and name not in present:
            try:
                spark.sql(f"create table {SCHEMA}.{name} using delta location '{path}'")
            except Exception as exc:  # noqa: BLE001 - e.g. a folder without a commit yet
                log.warning("marts: cannot register %s at %s (%s); dbt will rebuild it", name, path, exc)
                continue
        if exists:
            registered.append(name)
    return registered


# dbt's own console output (one coloured line per node and test) is replaced by the stage's progress:
# errors still print, and dbt's full log is in <run_dir>/dbt/logs/dbt.log.
QUIET = ["--quiet", "--no-use-colors"]


def _invoke(args: list[str], on_node=None):
    """Run dbt in-process; ``on_node(name, resource_type, status, seconds)`` is called as each node ends."""
    from dbt.cli.main import dbtRunner

    def callback(event) -> None:
        if on_node is None or event.info.name != "NodeFinished":
            return
        info, result = event.data.node_info, event.data.run_result
        on_node(info.node_name, info.resource_type, result.status, round(result.execution_time or 0, 2))

    return dbtRunner(callbacks=[callback]).invoke(args)


def _common_args(s: Settings, day: dt.date, changed: dict[str, str] | None = None,
                 bases: dict[str, dict] | None = None) -> list[str]:
    vars_ = {"logical_date": day.isoformat(), "existing_marts": existing_marts(s), "changed_from": changed or {},
             "update_from": bases or {}}
    return ["--project-dir", s.dbt.project_dir, "--profiles-dir", s.dbt.project_dir, "--target", s.dbt.target,
            "--vars", json.dumps(vars_)]


class _DbtEnv:
    """Set the dbt environment for the block; restore the environment and the Spark session's SQL
    settings that dbt-spark changes (it forces ``spark.sql.ansi.enabled=false``)."""

    KEEP = ("spark.sql.ansi.enabled", "spark.sql.sources.partitionOverwriteMode")

    def __init__(self, spark, s: Settings, day: dt.date):
        self.spark, self.vars = spark, env(s, day)

    def __enter__(self):
        self.old_env = {k: os.environ.get(k) for k in self.vars}
        os.environ.update(self.vars)
        Path(self.vars["REDCLOUD_DBT_RUN_DIR"]).mkdir(parents=True, exist_ok=True)
        self.old_conf = {k: self.spark.conf.get(k, None) for k in self.KEEP} if self.spark is not None else {}
        return self

    def __exit__(self, *exc):
        for k, v in self.old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for k, v in self.old_conf.items():
            if v is None:
                self.spark.conf.unset(k)
            else:
                self.spark.conf.set(k, v)
        return False


def build(spark, day: dt.date, settings: Settings, select: list[str] | None = None,
          full_refresh: bool = False, on_node=None, changed: dict[str, str] | None = None,
          bases: dict[str, dict] | None = None) -> dict:
    """``dbt build`` (seeds, models, data tests, unit tests) for the logical date, in-process;
    ``on_node`` is called as each node finishes (see :func:`_invoke`); ``changed``: per incremental
    mart, the first date to recompute (:func:`changed_from`)."""
    s = settings
    p = plan(s)
    for mart, why in p["skip"].items():
        log.warning("marts: skipping %s (%s)", mart, why)
    args = ["build", *QUIET, *_common_args(s, day, changed, None if full_refresh else bases)]
    if select:
        args += ["--select", *select]
    if p["exclude"]:
        args += ["--exclude", *p["exclude"]]
    if full_refresh:
        args.append("--full-refresh")
    t0 = time.perf_counter()
    with _DbtEnv(spark, s, day):
        if s.dbt.target == "session":
            spark.sql(f"create schema if not exists {SCHEMA}")
            register_existing(spark, s)
        res = _invoke(args, on_node)
    seconds = round(time.perf_counter() - t0, 1)
    nodes = []
    for r in (getattr(res.result, "results", None) or []):
        node = r.node
        nodes.append(dict(name=node.name, type=node.resource_type.value if hasattr(node.resource_type, "value")
                          else str(node.resource_type), status=str(r.status.value if hasattr(r.status, "value")
                                                                   else r.status),
                          seconds=round(r.execution_time or 0, 2), message=r.message,
                          # a data test's model ("model.redcloud.<name>"; None for other nodes)
                          tested=(getattr(node, "attached_node", None) or "").rsplit(".", 1)[-1] or None))
    failed = [n for n in nodes if n["status"] in ("error", "fail", "runtime error")]
    if not res.success or failed:
        detail = "; ".join(f"{n['type']} {n['name']}: {n['status']} {n['message'] or ''}"[:400] for n in failed)
        raise DbtBuildFailed(f"dbt build failed for {day}: {detail or res.exception}")
    return dict(nodes=nodes, skipped=p["skip"], seconds=seconds)


def run(ctx: RunContext, select: list[str] | None = None, full_refresh: bool = False) -> dict:
    """Pipeline stage ``marts``: dbt build for the logical date; row counts of every mart built. The
    incremental marts recompute the periods from the first date whose inputs changed since the last
    run (:func:`changed_from`); ``full_refresh`` rebuilds every mart from scratch."""
    tests, seconds, lock = {}, {}, threading.Lock()   # dbt calls on_node from its worker threads
    with ctx.progress.step("changed periods"):
        changed, versions, bases = changed_from(ctx, compare=not full_refresh)
    if changed:
        ctx.progress.note("recomputed from: " + ", ".join(f"{m} {d}" for m, d in sorted(changed.items())))
    if bases:
        ctx.progress.note("updated from the last build: " + ", ".join(sorted(bases)))

    def on_node(name: str, kind: str, status: str, secs: float) -> None:
        with lock:
            if kind == "model":
                seconds[name] = secs
            else:
                tests[status] = tests.get(status, 0) + 1
                seconds[f"({kind}s)"] = round(seconds.get(f"({kind}s)", 0.0) + secs, 2)
        if kind == "model":
            rows = ctx.lake.count("marts", name) if name in MARTS and status == "success" else None
            ctx.progress.table(f"marts/{name}", rows, secs, status)

    with ctx.progress.step("dbt build"):
        result = build(ctx.spark, ctx.day, ctx.settings, select=select, on_node=on_node, changed=changed,
                       full_refresh=full_refresh, bases=bases)
    built = [n["name"] for n in result["nodes"] if n["type"] == "model" and n["name"] in MARTS
             and n["status"] == "success"]
    record_input_versions(ctx.lake, versions, ctx.day, built, full_refresh)
    if tests:
        ctx.progress.note("dbt tests: " + ", ".join(f"{n} {status}" for status, n in sorted(tests.items())))
    kinds = {}
    for n in result["nodes"]:
        kinds.setdefault(n["type"], {}).setdefault(n["status"], 0)
        kinds[n["type"]][n["status"]] += 1
    tables = [dict(table=f"marts/{name}", rows=ctx.lake.count("marts", name), seconds=seconds.get(name))
              for name in built]
    return dict(tables=tables, run_id=ctx.run_id, logical_date=ctx.day.isoformat(), changed_from=changed,
                updated_from=bases,
                dbt=kinds, skipped=result["skipped"], dbt_seconds=result["seconds"],
                # the data and unit tests' summed node seconds, beside the marts' (the benchmarks' breakdown)
                test_seconds={k: v for k, v in sorted(seconds.items()) if k.startswith("(")})


def docs(settings: Settings, spark=None, day: dt.date | None = None) -> Path:
    """``dbt docs generate --static --empty-catalog``: returns the self-contained ``static_index.html`` (in <run_dir>/dbt/target)."""
    s = settings
    day = day or dt.date.fromisoformat(s.synth.end)
    if spark is None:
        from redcloud.spark import get_spark

        spark = get_spark(s)
    with _DbtEnv(spark, s, day) as e:
        # --empty-catalog: column docs come from the YAML; no catalog queries against Spark (the sources
        # live in the pseudo-schema `delta`, which has no catalog to list), and it takes seconds.
        res = _invoke(["docs", "generate", *QUIET, "--static", "--empty-catalog", *_common_args(s, day)])
        target = Path(e.vars["DBT_TARGET_PATH"])
    if not res.success:
        raise DbtBuildFailed(f"dbt docs generate failed: {res.exception}")
    return target / "static_index.html"


def main(argv: list[str] | None = None) -> int:
    """``python -m redcloud.marts env [DATE]`` prints ``export`` lines for a stand-alone dbt;
    ``build DATE`` / ``docs [DATE]`` run in-process."""
    from redcloud.config import get_settings

    settings = get_settings()
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv else "env"
    day = dt.date.fromisoformat(argv[1]) if len(argv) > 1 else None
    if cmd == "env":
        import shlex

        for k, v in env(settings, day).items():
            print(f"export {k}={shlex.quote(v)}")
        return 0
    if cmd == "build":
        ctx = RunContext.create(day or dt.date.fromisoformat(settings.synth.end), settings)
        print(json.dumps(run(ctx), ensure_ascii=False, indent=1, default=str))
    elif cmd == "docs":
        print(docs(settings, day=day))
    else:
        print(f"unknown command {cmd!r}: env | build DATE | docs [DATE]", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
