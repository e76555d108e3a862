"""Gold stage: silver -> gold dimensions and facts, and every business rule's verdict.

Reads silver (and silver history of the same date), writes in dependency order, reading back from
the lake where a later fact builds on an earlier one (meeting signals -> branch facts; learning and
village days -> cadre-year; project lifecycle -> project status), so each is computed once. Every
rule parameter comes from ``ctx.rules`` (``[rules]``): downstream readers take the columns as they are.

The two daily facts (:data:`INCREMENTAL`: ``fct_learning_daily``, ``fct_village_work_daily``) are
recomputed from the first day whose inputs changed since the last build (:func:`plan`; the silver
versions that build read are kept in ``ops/gold_input_versions``), their streaks continued from the
rows before it; every other table is rebuilt whole. A table named in ``ctx.gold_tables`` (a repair,
``redcloud run gold --gold-tables``) is always rebuilt whole, and so is a fact whose record does not
match it (first build, another writer, a restore after a failed gate, a changed rule or fact code)
or that holds less than a year of rows (:data:`UPDATE_AFTER_DAYS`). Each month's rows are one data
file (:func:`by_month`), so an update rewrites the months it recomputes only. The result equals a
full rebuild (``tests/integration/test_incremental_equals_full.py``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from functools import reduce
from importlib import metadata
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from redcloud import workdays
from redcloud.context import RunContext
from redcloud.lake import DeltaDataSet
from redcloud.marts import FROM_START, Interval, first_changed
from spark_jobs import gold as G
from spark_jobs.gold import disclosure as P
from spark_jobs.gold import facts as X
from spark_jobs.gold import leadership as L
from spark_jobs.gold import project_support as S
from spark_jobs.gold import questions as Q
from spark_jobs.gold import training as T
from spark_jobs.gold import volunteer_market as V


def _min_date(df, col: str) -> dt.date | None:
    return df.where(~F.coalesce(F.col("is_deleted"), F.lit(False))).agg(F.min(col)).first()[0]


def _calendar(spark, first: dt.date, day: dt.date, ahead_days: int = 0):
    """The official calendar from ``first`` (or the first year it knows after) to ``day``, or ``ahead_days``
    past it as far as it knows: room for the deadlines of the latest records."""
    end = max(min(day + dt.timedelta(days=ahead_days), workdays.last_known_day()), day)
    return X.calendar_frame(spark, X.first_known_day(first, day), end)


def _learning_from(ctx: RunContext, from_date: dt.date, prior):
    s = lambda name: ctx.lake.read(ctx.spark, "silver", name)  # noqa: E731
    links = X.cadre_member_links(s("cadres"), s("members"))
    return X.fct_learning_daily(links, s("app_users"), s("learning_answers"), s("member_status_history"),
                                s("cadre_post_history"), _calendar(ctx.spark, from_date, ctx.day), ctx.day, ctx.rules,
                                since=_min_date(s("learning_answers"), "answer_date"), from_date=from_date,
                                prior=prior)


def _village_from(ctx: RunContext, from_date: dt.date, prior):
    s = lambda name: ctx.lake.read(ctx.spark, "silver", name)  # noqa: E731
    return X.fct_village_work_daily(s("village_assignments"), s("village_work_records"),
                                    _calendar(ctx.spark, from_date, ctx.day), ctx.day, ctx.rules,
                                    since=_min_date(s("village_work_records"), "work_date"), from_date=from_date,
                                    prior=prior)


# the daily facts a micro-batch can recompute from a date on (their rows depend only on the days up to theirs)
INCREMENTAL = {"fct_learning_daily": _learning_from, "fct_village_work_daily": _village_from}


def by_month(df, first: dt.date, last: dt.date):
    """A daily fact's rows laid out one data file per month of ``work_date`` (months are never split
    between files), so replacing the days from a month's first day on rewrites those months' files
    only, and the nightly run's replacement of the month also compacts the micro-batches' files."""
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    return df.repartitionByRange(max(months, 1), F.trunc("work_date", "month"))


def increment(ctx: RunContext, table: str, from_date: dt.date, whole_months: bool = False) -> dict:
    """Recompute the daily fact ``gold/<table>`` (one of :data:`INCREMENTAL`) from ``from_date`` to
    ``ctx.day`` only (the micro-batch, :mod:`redcloud.stages.microbatch`): the streaks continue from
    the table's rows before ``from_date``, and the rows from it on are replaced in one Delta commit
    (``replaceWhere``). The caller chooses ``from_date`` so that no input changed before it; the
    result then equals the full rebuild's rows (``tests/unit/test_gold_incremental.py``,
    ``tests/integration/test_microbatch.py``). ``whole_months``: from the first day of ``from_date``'s
    month (the nightly run: each month's rows in one file again, see :func:`by_month`)."""
    if table not in INCREMENTAL:
        raise ValueError(f"gold/{table} has no incremental path; these do: {', '.join(INCREMENTAL)}")
    spark, lake = ctx.spark, ctx.lake
    t0 = time.perf_counter()
    from_date = min(from_date, ctx.day)
    if whole_months:
        from_date = from_date.replace(day=1)
    prior = lake.read(spark, "gold", table)
    df = by_month(INCREMENTAL[table](ctx, from_date, prior), from_date, ctx.day).localCheckpoint()
    lake.write(spark, DeltaDataSet(table, "gold", df, mode="replace_where",
                                   where=f"work_date >= '{from_date.isoformat()}'",
                                   description=getattr(X, table).__doc__ or ""))
    n = df.count()
    row = dict(table=f"gold/{table}", rows=lake.count("gold", table), rows_replaced=n,
               from_date=from_date.isoformat(), seconds=round(time.perf_counter() - t0, 2))
    ctx.progress.table(row["table"], row["rows"], row["seconds"], f"recomputed {n:,} rows from {from_date}")
    return row


# Per daily fact, the silver inputs whose changes move its rows, as redcloud.marts.INCREMENTAL_INPUTS:
# (table, the date a changed row counts from, the columns the fact reads, and the key of the
# cadre-member links its rows are compared on: the learning fact has rows for linked cadres only, so
# a change of any other member's roll period or answers moves none). The links themselves (silver
# cadres and members) are compared as links (:func:`_links`).
DAILY_INPUTS = {
    "fct_learning_daily": [
        ("learning_answers", "answer_date", ["answer_id", "member_id", "answer_date", "is_deleted"], "member_id"),
        ("app_users", "registered_at", ["member_id", "registered_at", "is_deleted"], "member_id"),
        ("member_status_history", Interval("valid_from", "valid_to"),
         ["member_id", "membership_status", "valid_from", "valid_to"], "member_id"),
        ("cadre_post_history", Interval("valid_from", "valid_to"), ["cadre_id", "rank", "valid_from", "valid_to"],
         "cadre_id")],
    "fct_village_work_daily": [
        ("village_work_records", "work_date", ["record_id", "assignment_id", "work_date", "photo_count", "signed_in",
                                               "sign_in_at", "is_deleted"], None),
        ("village_assignments", Interval("start_date", "end_date"),
         ["assignment_id", "cadre_id", "village_org_id", "role", "start_date", "end_date", "is_deleted"], None)],
}
# A fact with less history than this is rebuilt whole: finding the changed days costs more than it
# saves (30k members: the gold stage took 84.7 CPU-s updating the facts of a 3-month lake against
# 71.5 rebuilding them, and 113.1 against 113.8 on a 36-month lake; benchmarks/README.md).
UPDATE_AFTER_DAYS = 365
LINK_INPUTS = ("cadres", "members")   # fct_learning_daily's cadre -> member links
INPUT_VERSIONS = ("ops", "gold_input_versions")   # per daily fact, what its last build read and wrote


def fingerprint(ctx: RunContext) -> str:
    """What a daily fact's rows depend on besides its inputs: the rule parameters, the facts' code
    and the official calendar's release. A change rebuilds the facts whole."""
    h = hashlib.sha256(ctx.rules.model_dump_json().encode())
    h.update(Path(X.__file__).read_bytes())
    h.update(metadata.version("chinesecalendar").encode())
    return h.hexdigest()[:16]


def _inputs(fact: str) -> list[str]:
    return [t for t, _, _, _ in DAILY_INPUTS[fact]] + (list(LINK_INPUTS) if fact == "fct_learning_daily" else [])


def _seen(ctx: RunContext) -> dict[str, dict]:
    """Per daily fact, its last build's record: {"versions": {table: v}, "written": v, "fingerprint"}."""
    if not ctx.lake.exists(*INPUT_VERSIONS):
        return {}
    out: dict[str, dict] = {}
    for r in ctx.lake.pandas(*INPUT_VERSIONS).itertuples():
        rec = out.setdefault(r.fact, {"versions": {}, "written": int(r.written_version), "fingerprint": r.fingerprint})
        rec["versions"][r.table] = int(r.version)
    return out


def record(ctx: RunContext, facts: dict[str, dict[str, int]]) -> None:
    """Record, per daily fact just written, the silver versions it was computed from and its own
    version now (the other facts keep their records)."""
    import pyarrow as pa

    if not facts:
        return
    seen, fp = _seen(ctx), fingerprint(ctx)
    for fact, versions in facts.items():
        seen[fact] = {"versions": versions, "written": ctx.lake.version("gold", fact), "fingerprint": fp}
    rows = [dict(fact=f, table=t, version=int(v), written_version=int(rec["written"]), fingerprint=rec["fingerprint"],
                 logical_date=ctx.day) for f, rec in sorted(seen.items()) for t, v in sorted(rec["versions"].items())]
    ctx.lake.overwrite_arrow(*INPUT_VERSIONS, pa.Table.from_pylist(rows, schema=pa.schema([
        ("fact", pa.string()), ("table", pa.string()), ("version", pa.int64()), ("written_version", pa.int64()),
        ("fingerprint", pa.string()), ("logical_date", pa.date32())])),
        description="per daily gold fact, the silver versions its last build read (redcloud.stages.gold.plan)")


def input_versions(ctx: RunContext, fact: str) -> dict[str, int] | None:
    """The current versions of ``fact``'s silver inputs (None when one is missing)."""
    versions = {t: ctx.lake.version("silver", t) for t in _inputs(fact)}
    return None if None in versions.values() else versions


def _links(ctx: RunContext, seen: dict[str, int], now: dict[str, int]):
    """The cadre-member links now, with those that differ from the seen versions of silver cadres
    and members (an Arrow table of cadre_id, member_id: linked now or before), and the earliest
    registration day of a member whose link differs (the link's rows start no earlier; None: no
    link differs; FROM_START: not known, a version is gone). Most days change no column a link is
    made from (:data:`spark_jobs.gold.facts.LINK_COLUMNS`): then no link differs. Otherwise, a link
    is made within one ``id_number_pseudonym``, so only the numbers in the data files that differ
    can differ: the links of those numbers are built from both versions' rows and compared."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    spark, lake = ctx.spark, ctx.lake
    pairs = ["cadre_id", "member_id"]
    links = X.cadre_member_links(*(lake.read(spark, "silver", t) for t in LINK_INPUTS)).select(pairs).toArrow()
    if all(first_changed(spark, lake, "silver", t, None, X.LINK_COLUMNS[t], seen[t], now[t]) is None
           for t in LINK_INPUTS):
        return links, None
    ids = []
    for t in LINK_INPUTS:
        files = lake.change_files("silver", t, seen[t], now[t]) if seen[t] != now[t] else ([], [])
        if files is None:
            return links, FROM_START
        ids += [pq.read_table(f, columns=["id_number_pseudonym"])["id_number_pseudonym"] for f in files[0] + files[1]]
    ids = pc.unique(pa.chunked_array(ids, pa.string())).drop_null().to_pylist()
    if not ids:
        return links, None

    def built(versions: dict[str, int]):   # the links of those numbers, from the rows of these versions
        rows = (lake.arrow("silver", t, X.LINK_COLUMNS[t], filters=[("id_number_pseudonym", "in", ids)],
                           version=versions[t]) for t in LINK_INPUTS)
        return X.cadre_member_links(*(spark.createDataFrame(r) for r in rows)).select(pairs)

    try:
        before = built(seen)
    except Exception:  # noqa: BLE001 - vacuumed or gone
        return links, FROM_START
    after = built(now)
    diff = after.subtract(before).unionByName(before.subtract(after)).toArrow()
    if not diff.num_rows:
        return links, None
    users = [lake.read(spark, "silver", "app_users")] + \
        ([lake.read_version(spark, "silver", "app_users", seen["app_users"])] if "app_users" in seen else [])
    reg = reduce(DataFrame.unionByName, [u.select("member_id", F.to_date("registered_at").alias("d")) for u in users])
    row = spark.createDataFrame(diff).select("member_id").distinct().join(reg, "member_id").agg(
        F.count(F.lit(1)).alias("n"), F.min("d").alias("d")).first()
    return pa.concat_tables([links, diff.cast(links.schema)]), (row["d"] if row["n"] else None)


def _current(rec: dict | None, now: dict[str, int] | None, fp: str, written: int | None) -> bool:
    """A fact's record still describes it: same rule/code fingerprint, the fact as last written."""
    return rec is not None and now is not None and rec["fingerprint"] == fp and rec["written"] == written


def record_after_batch(ctx: RunContext, silver_before: dict[str, int | None],
                       gold_before: dict[str, int | None]) -> list[str]:
    """After a micro-batch updated the daily facts (:mod:`redcloud.stages.microbatch`) from the silver
    tables it merged (their versions before the merge: ``silver_before``), keep a fact's record
    current when it was current before the batch, so the nightly run updates the fact from there
    instead of rebuilding it. Returns the facts recorded."""
    seen, fp, keep = _seen(ctx), fingerprint(ctx), {}
    for fact, before in gold_before.items():
        rec, now = seen.get(fact), input_versions(ctx, fact)
        if not _current(rec, now, fp, before):
            continue
        if rec["versions"] == {t: silver_before[t] if t in silver_before else v for t, v in now.items()}:
            keep[fact] = now
    if keep:
        record(ctx, keep)
    return sorted(keep)


def plan(ctx: RunContext, versions: dict[str, dict[str, int] | None]) -> dict[str, dt.date]:
    """Per daily fact that can be updated, the first day to recompute: the earliest date among its
    inputs' rows that changed since its last build (:func:`redcloud.marts.first_changed`), the day
    after its last row, or the logical date, whichever is first. A fact missing here is rebuilt
    whole (no usable record, less than :data:`UPDATE_AFTER_DAYS` of rows, or a change with no date).
    ``versions``: per fact, its inputs' current versions (:func:`input_versions`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    spark, lake = ctx.spark, ctx.lake
    seen, fp, out = _seen(ctx), fingerprint(ctx), {}
    for fact, inputs in DAILY_INPUTS.items():
        rec, now = seen.get(fact), versions.get(fact)
        if not _current(rec, now, fp, lake.version("gold", fact)) or set(rec["versions"]) != set(now):
            continue
        span = pc.min_max(lake.arrow("gold", fact, ["work_date"])["work_date"]).as_py()
        if span["min"] is None or (ctx.day - span["min"]).days < UPDATE_AFTER_DAYS:
            ctx.progress.note(f"gold/{fact}: rebuild (less than {UPDATE_AFTER_DAYS} days of rows)")
            continue
        keys, dates = {}, {}
        if fact == "fct_learning_daily":
            linked, dates["cadre-member links"] = _links(ctx, rec["versions"], now)   # linked now or before
            keys = {k: pa.table({k: pc.unique(linked[k])}) for k in ("member_id", "cadre_id")}
        dates.update({table: first_changed(spark, lake, "silver", table, col, cols, rec["versions"][table],
                                           now[table], keep=keys.get(key)) for table, col, cols, key in inputs})
        dates["the day after the last row"] = span["max"] + dt.timedelta(days=1)
        first = min([d for d in dates.values() if d is not None] + [ctx.day])
        changed = ", ".join(f"{t} {d}" for t, d in dates.items() if d is not None)
        ctx.progress.note(f"gold/{fact}: {'recompute from ' + str(first) if first > FROM_START else 'rebuild'}"
                          f" ({changed})")
        if first > FROM_START:
            out[fact] = first
    return out


# every table the stage writes, in the order it writes them
TABLES = ("dim_organization", "dim_member", "fct_member_month", "fct_meeting_signals", "fct_branch_month",
          "fct_branch_quarter", "fct_learning_daily", "fct_village_work_daily", "fct_project_lifecycle",
          "fct_project_status", "fct_power_operation", "fct_cadre_year", "fct_cadre_duty_month",
          "fct_unit_leadership", "fct_cadre_change", "fct_party_disclosure", "fct_project_support",
          "fct_cadre_training_year", "fct_member_question", "fct_volunteer_need")


def run(ctx: RunContext, only: set[str] | None = None) -> dict:
    """Rebuild gold for ``ctx.day``; ``only`` (default ``ctx.gold_tables``): just these tables (the
    others are read as they are, e.g. a repair of one fact after a fix)."""
    spark, lake, day, rules = ctx.spark, ctx.lake, ctx.day, ctx.rules
    only = ctx.gold_tables if only is None else only
    unknown = sorted(set(only or ()) - set(TABLES))
    if unknown:
        raise ValueError(f"unknown gold table(s) {', '.join(unknown)}; the gold stage writes {', '.join(TABLES)}")
    for name in ("member_status_history", "cadre_post_history"):
        if not lake.exists("silver", name):
            raise RuntimeError(f"silver/{name} is missing: run the silver stage for {day.isoformat()} first")
    s = lambda name: lake.read(spark, "silver", name)  # noqa: E731
    g = lambda name: lake.read(spark, "gold", name)  # noqa: E731
    hist, posts = s("member_status_history"), s("cadre_post_history")
    out = []
    # the daily facts' inputs as read now, and the first day each must be recomputed from (a repair rebuilds whole)
    read_versions = {f: input_versions(ctx, f) for f in DAILY_INPUTS}
    with ctx.progress.step("gold: the days the daily facts' inputs changed on"):
        increments = plan(ctx, read_versions) if only is None else {}

    def write(name: str, df, doc: str | None) -> None:
        assert name in TABLES, name
        if only is not None and name not in only:
            return
        t0 = time.perf_counter()
        lake.write(spark, DeltaDataSet(name, "gold", df, mode="overwrite", description=doc or ""))
        row = dict(table=f"gold/{name}", rows=lake.count("gold", name), seconds=round(time.perf_counter() - t0, 2))
        ctx.progress.table(row["table"], row["rows"], row["seconds"])
        out.append(row)

    # dimensions and the member-month fact
    write("dim_organization", G.dim_organization(s("organizations")), G.dim_organization.__doc__)
    write("dim_member", G.dim_member(s("members"), g("dim_organization"), day), G.dim_member.__doc__)
    write("fct_member_month", G.fct_member_month(s("members"), s("app_activity_monthly"), s("dues_payments"),
                                                 s("volunteer_records"), s("meetings"), s("meeting_attendance"),
                                                 rules), G.fct_member_month.__doc__)

    # go-live dates: nobody could answer / record before the system existed
    learning_since = _min_date(s("learning_answers"), "answer_date")
    village_since = _min_date(s("village_work_records"), "work_date")
    first_meeting = _min_date(s("meetings"), "meeting_date")
    known = [x for x in (learning_since, village_since, first_meeting) if x is not None and x <= day]
    cal_start = X.first_known_day(min(known) if known else dt.date(day.year, 1, 1), day)
    calendar = X.calendar_frame(spark, cal_start, day).cache()
    first_year = s("cadre_assessments").agg(F.min("assess_year")).first()[0]
    first_year = min(int(first_year) if first_year is not None else day.year, cal_start.year)
    links = X.cadre_member_links(s("cadres"), s("members")).cache()  # TODO(identity-fusion): read the fusion table

    write("fct_meeting_signals", X.fct_meeting_signals(s("meetings"), s("meeting_attendance"), hist, calendar, day),
          X.fct_meeting_signals.__doc__)
    write("fct_branch_month", X.fct_branch_month(s("organizations"), g("fct_meeting_signals"), day, rules),
          X.fct_branch_month.__doc__)
    write("fct_branch_quarter", X.fct_branch_quarter(s("organizations"), g("fct_meeting_signals"), hist,
                                                     s("volunteer_records"), s("app_activity_monthly"), day, rules),
          X.fct_branch_quarter.__doc__)
    for fact in INCREMENTAL:
        if fact in increments:
            row = increment(ctx, fact, increments[fact], whole_months=True)
            increments[fact] = dt.date.fromisoformat(row["from_date"])
            out.append(row)
        elif fact == "fct_learning_daily":
            write(fact, by_month(X.fct_learning_daily(links, s("app_users"), s("learning_answers"), hist, posts,
                                                      calendar, day, rules, since=learning_since), cal_start, day),
                  X.fct_learning_daily.__doc__)
        else:
            write(fact, by_month(X.fct_village_work_daily(s("village_assignments"), s("village_work_records"),
                                                          calendar, day, rules, since=village_since), cal_start, day),
                  X.fct_village_work_daily.__doc__)
    record(ctx, {f: v for f, v in read_versions.items() if v is not None and (only is None or f in only)})
    write("fct_project_lifecycle", X.fct_project_lifecycle(s("poverty_projects"), day, rules),
          X.fct_project_lifecycle.__doc__)
    write("fct_project_status", X.fct_project_status(s("poverty_projects"), g("fct_project_lifecycle"), day),
          X.fct_project_status.__doc__)
    if all(lake.exists("silver", t) for t in ("power_operations", "complaints")):
        write("fct_power_operation", X.fct_power_operation(s("power_operations"), s("complaints"), day),
              X.fct_power_operation.__doc__)
    ironcage, ironcage_since, ic_keys = None, None, None
    if all(lake.exists("silver", t) for t in ("power_operations", "complaints", "duty_records", "person_links",
                                              "persons")):
        ic_keys = X.ironcage_cadre_keys(s("person_links"), s("persons")).cache()
        ironcage = X.ironcage_cadre_year(g("fct_power_operation"), s("complaints"), s("duty_records"), ic_keys, day)
        duty_since = _min_date(s("duty_records"), "duty_month")
        firsts = [x for x in (_min_date(s("power_operations"), "received_at"), duty_since) if x is not None]
        ironcage_since = min(x.year for x in firsts) if firsts else None   # a timestamp and a date
    write("fct_cadre_year", X.fct_cadre_year(s("cadres"), links, g("fct_learning_daily"), s("meeting_attendance"),
                                             s("meetings"), s("cadre_assessments"), s("cadre_discipline"), posts,
                                             g("fct_village_work_daily"), s("poverty_projects"), day, first_year,
                                             ironcage, ironcage_since),
          X.fct_cadre_year.__doc__)
    if ic_keys is not None:
        if duty_since is not None and duty_since <= day:
            duty_cal = _calendar(spark, duty_since.replace(day=1), day)
            write("fct_cadre_duty_month", X.fct_cadre_duty_month(s("duty_records"), ic_keys, posts, duty_cal, day, rules),
                  X.fct_cadre_duty_month.__doc__)
        ic_keys.unpersist()
    # the cadre force: 班子 per unit at every quarter end since the first assessed year, and cadre changes
    lead_start = X.first_known_day(dt.date(first_year, 1, 1), day)
    lead_cal = _calendar(spark, lead_start, day)
    write("fct_unit_leadership", L.fct_unit_leadership(posts, s("cadres"), lead_cal, L.snapshot_dates(lead_start, day),
                                                       day, rules), L.fct_unit_leadership.__doc__)
    write("fct_cadre_change", L.fct_cadre_change(posts, day), L.fct_cadre_change.__doc__)
    # 党务公开: the calendar runs on past the day, to hold the 时限 of the latest events
    if lake.exists("silver", "party_disclosures"):
        first_event = _min_date(s("party_disclosures"), "event_date")
        if first_event is not None and first_event <= day:
            write("fct_party_disclosure", P.fct_party_disclosure(s("party_disclosures"),
                                                                 _calendar(spark, first_event, day, 120), day, rules),
                  P.fct_party_disclosure.__doc__)
    # 帮扶措施 and funding per project (the measures' due day counted on the calendar up to the day)
    if lake.exists("silver", "project_measures"):
        first_start = _min_date(s("poverty_projects"), "start_date")
        if first_start is not None and first_start <= day:
            write("fct_project_support", S.fct_project_support(s("poverty_projects"), g("fct_project_status"),
                                                               s("project_measures"), _calendar(spark, first_start, day),
                                                               day, rules),
                  S.fct_project_support.__doc__)
    # 干部调训: the calendar runs to the end of the day's year (the working days left to train)
    if lake.exists("silver", "training_classes") and lake.exists("silver", "training_enrollments"):
        first_class = _min_date(s("training_classes"), "start_date")
        if first_class is not None and first_class <= day:
            tr_cal = _calendar(spark, dt.date(first_class.year, 1, 1), day, (dt.date(day.year, 12, 31) - day).days)
            write("fct_cadre_training_year", T.fct_cadre_training_year(s("training_classes"), s("training_enrollments"),
                                                                       tr_cal, day, rules),
                  T.fct_cadre_training_year.__doc__)
    # 解决疑难问题: the calendar runs on past the day, to hold the 时限 of the latest questions
    if lake.exists("silver", "member_questions"):
        first_q = s("member_questions").agg(F.min(F.to_date("asked_at"))).first()[0]
        if first_q is not None and first_q <= day:
            write("fct_member_question", Q.fct_member_question(s("member_questions"), _calendar(spark, first_q, day, 60),
                                                               day, rules),
                  Q.fct_member_question.__doc__)
    # 志愿服务超市: the calendar runs on past the day, to hold the 时限 of the latest needs
    if lake.exists("silver", "volunteer_needs"):
        first_need = s("volunteer_needs").agg(F.min(F.to_date("published_at"))).first()[0]
        if first_need is not None and first_need <= day:
            write("fct_volunteer_need", V.fct_volunteer_need(s("volunteer_needs"), _calendar(spark, first_need, day, 60),
                                                             day, rules),
                  V.fct_volunteer_need.__doc__)
    calendar.unpersist()
    links.unpersist()
    return {"tables": out, "calendar_start": cal_start.isoformat(), "learning_since": str(learning_since),
            "village_since": str(village_since), "increments": {f: d.isoformat() for f, d in increments.items()}}
