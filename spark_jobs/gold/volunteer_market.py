"""Gold fact of the 党员志愿服务超市: each published need, its matching 时限 and what it delivered.

``fct_volunteer_need``: one row per need published by the logical date. It should be matched to a
volunteer team within ``[rules] volunteer_match_workdays`` working days (official calendar); one still
unmatched past that is 超时未对接 and its publisher's head is reminded.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from redcloud.rules import Rules
from redcloud.rules.vocab import NEED_DONE, NEED_MATCHED, NEED_OPEN, NEED_UNMATCHED
from spark_jobs.gold.facts import _alive, with_workday_deadline, with_workday_number, workday_numbers


def fct_volunteer_need(needs: DataFrame, calendar: DataFrame, as_of: dt.date, rules: Rules) -> DataFrame:
    """One row per need with ``published_at`` on or before ``as_of`` (``calendar`` must run past as_of
    far enough to hold the latest 时限; beyond it the 时限 is NULL).

    - ``published_on``, ``match_due_date`` (the ``volunteer_match_workdays``-th working day after),
      ``matched_on`` / ``completed_on`` (NULL if not by as_of), ``match_workdays`` (working days taken);
    - ``state``: 已完成, 已对接, 超时未对接 (unmatched past the due date), 待对接; ``matched_in_time``;
    - what a completed service delivered: ``people_served``, ``service_hours``, ``funds_yuan`` (0 before);
    - ``workdays_overdue`` (超时未对接 only), ``reminder_due`` = 超时未对接.

    Columns: need_id, org_id, category, title, team_id, published_on, match_due_date, matched_on,
    completed_on, match_workdays, state, matched_in_time, people_served, service_hours, funds_yuan,
    workdays_overdue, reminder_due, as_of_date.
    """
    d = F.lit(as_of).cast("date")
    end = F.lit(as_of + dt.timedelta(days=1)).cast("timestamp")
    wd = workday_numbers(calendar)
    n = (_alive(needs).where(F.col("published_at") < end)
         .withColumn("published_on", F.to_date("published_at"))
         .withColumn("matched_on", F.when(F.col("matched_at") < end, F.to_date("matched_at")))
         .withColumn("completed_on", F.when(F.col("completed_at") < end, F.to_date("completed_at"))))
    n = with_workday_number(with_workday_deadline(n, "published_on", rules.volunteer_match_workdays, wd, as_of,
                                                  "match_due_date"), "matched_on", wd, "_m_n")
    matched, done = F.col("matched_on").isNotNull(), F.col("completed_on").isNotNull()
    overdue = ~matched & F.col("match_due_date").isNotNull() & (F.col("match_due_date") < d)
    state = (F.when(done, F.lit(NEED_DONE)).when(matched, F.lit(NEED_MATCHED))
             .when(overdue, F.lit(NEED_UNMATCHED)).otherwise(F.lit(NEED_OPEN)))
    zero = lambda c: F.when(done, F.col(c)).otherwise(F.lit(0))  # noqa: E731
    return n.select(
        "need_id", "org_id", "category", "title", F.when(matched, F.col("team_id")).alias("team_id"), "published_on",
        "match_due_date", "matched_on", "completed_on",
        F.when(matched, F.col("_m_n") - F.col("_from_n")).cast("int").alias("match_workdays"), state.alias("state"),
        (matched & (F.col("match_due_date").isNull() | (F.col("matched_on") <= F.col("match_due_date"))))
        .alias("matched_in_time"),
        zero("beneficiaries").cast("long").alias("people_served"), zero("service_hours").cast("double").alias("service_hours"),
        zero("funds_yuan").cast("double").alias("funds_yuan"),
        F.when(overdue, F.col("_today_n") - F.col("_due_n")).otherwise(F.lit(0)).cast("int").alias("workdays_overdue"),
        overdue.alias("reminder_due"), d.alias("as_of_date"))
