"""Gold stage: silver -> gold dimensions and facts, and every business rule's verdict (full rebuild).

Reads silver (and silver history of the same date), writes in dependency order, reading back from
the lake where a later fact builds on an earlier one (meeting signals -> branch facts; learning and
village days -> cadre-year; project lifecycle -> project status), so each is computed once. Every
rule parameter comes from ``ctx.rules`` (``[rules]``): downstream readers take the columns as they are.
"""

from __future__ import annotations

import datetime as dt
import time

from pyspark.sql import functions as F

from redcloud import workdays
from redcloud.context import RunContext
from redcloud.lake import DeltaDataSet
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


def increment(ctx: RunContext, table: str, from_date: dt.date) -> dict:
    """Recompute the daily fact ``gold/<table>`` (one of :data:`INCREMENTAL`) from ``from_date`` to
    ``ctx.day`` only (the micro-batch, :mod:`redcloud.stages.microbatch`): the streaks continue from
    the table's rows before ``from_date``, and the rows from it on are replaced in one Delta commit
    (``replaceWhere``). The caller chooses ``from_date`` so that no input changed before it; the
    result then equals the full rebuild's rows (``tests/unit/test_gold_incremental.py``,
    ``tests/integration/test_microbatch.py``)."""
    if table not in INCREMENTAL:
        raise ValueError(f"gold/{table} has no incremental path; these do: {', '.join(INCREMENTAL)}")
    spark, lake = ctx.spark, ctx.lake
    t0 = time.perf_counter()
    from_date = min(from_date, ctx.day)
    prior = lake.read(spark, "gold", table)
    df = INCREMENTAL[table](ctx, from_date, prior).localCheckpoint()
    lake.write(spark, DeltaDataSet(table, "gold", df, mode="replace_where",
                                   where=f"work_date >= '{from_date.isoformat()}'"))
    n = df.count()
    row = dict(table=f"gold/{table}", rows=lake.count("gold", table), rows_replaced=n,
               from_date=from_date.isoformat(), seconds=round(time.perf_counter() - t0, 2))
    ctx.progress.table(row["table"], row["rows"], row["seconds"], f"recomputed {n:,} rows from {from_date}")
    return row


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
    write("fct_learning_daily", X.fct_learning_daily(links, s("app_users"), s("learning_answers"), hist, posts,
                                                     calendar, day, rules, since=learning_since),
          X.fct_learning_daily.__doc__)
    write("fct_village_work_daily", X.fct_village_work_daily(s("village_assignments"), s("village_work_records"),
                                                             calendar, day, rules, since=village_since),
          X.fct_village_work_daily.__doc__)
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
            "village_since": str(village_since)}
