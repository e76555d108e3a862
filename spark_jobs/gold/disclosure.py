"""Gold fact of 党务公开 (app system 3): each disclosure's 时限, state and completeness on the logical date.

``fct_party_disclosure``: one row per disclosure whose event happened by the logical date. The 时限
is ``[rules] disclosure_due_workdays`` working days after the event (official calendar, 调休
included); an item not published when the 时限 has passed is 逾期未公开, reminded from the next working
day and escalated after ``[rules] disclosure_escalate_after`` more working days.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from redcloud.rules import Rules
from redcloud.rules.vocab import DISCLOSED_LATE, DISCLOSED_ON_TIME, DISCLOSURE_OVERDUE, DISCLOSURE_PENDING
from spark_jobs.gold.facts import _alive, with_workday_deadline, workday_numbers


def fct_party_disclosure(disclosures: DataFrame, calendar: DataFrame, as_of: dt.date, rules: Rules) -> DataFrame:
    """One row per 党务公开 item with ``event_date`` on or before ``as_of``.

    ``calendar`` (:func:`spark_jobs.gold.facts.calendar_frame`) must run past ``as_of`` far enough to
    hold the 时限 of the latest events; a 时限 beyond it is NULL (the item counts as 待公开).

    - ``due_date``: the ``disclosure_due_workdays``-th working day after ``event_date``;
    - ``published_on``: the day published (NULL if not by as_of); ``state``: 按时公开 (on or before the
      due date), 逾期公开, 逾期未公开 (not published and the due date has passed), 待公开;
    - ``workdays_overdue``: working days after the due date up to as_of (逾期未公开 only, else 0);
      ``reminder_due`` = 逾期未公开; ``escalation_due``: at least ``disclosure_escalate_after`` of them;
    - ``is_complete``: published with every required item; ``completeness`` = items_published / items_required.

    Columns: disclosure_id, org_id, item_type, title, event_date, due_date, published_on, state,
    is_on_time, is_complete, completeness, items_required, items_published, workdays_overdue,
    reminder_due, escalation_due, as_of_date.
    """
    d = F.lit(as_of).cast("date")
    items = _alive(disclosures).where(F.col("event_date") <= d)
    # an event before the calendar's first working day has no 时限 here
    out = with_workday_deadline(items, "event_date", rules.disclosure_due_workdays, workday_numbers(calendar),
                                as_of, "due_date")
    pub = F.to_date("published_at")
    published_on = F.when(pub <= d, pub)
    out = out.withColumn("published_on", published_on)
    overdue = F.col("published_on").isNull() & F.col("due_date").isNotNull() & (F.col("due_date") < d)
    state = (F.when(F.col("published_on").isNotNull() & F.col("due_date").isNotNull()
                    & (F.col("published_on") <= F.col("due_date")), F.lit(DISCLOSED_ON_TIME))
             .when(F.col("published_on").isNotNull() & F.col("due_date").isNotNull(), F.lit(DISCLOSED_LATE))
             .when(F.col("published_on").isNotNull(), F.lit(DISCLOSED_ON_TIME))   # due beyond the calendar: in time
             .when(overdue, F.lit(DISCLOSURE_OVERDUE))
             .otherwise(F.lit(DISCLOSURE_PENDING)))
    late_days = F.when(overdue, F.col("_today_n") - F.col("_due_n")).otherwise(F.lit(0)).cast("int")
    complete = F.col("published_on").isNotNull() & (F.col("items_published") >= F.col("items_required"))
    return out.select(
        "disclosure_id", "org_id", "item_type", "title", "event_date", "due_date", "published_on", state.alias("state"),
        (state == F.lit(DISCLOSED_ON_TIME)).alias("is_on_time"), complete.alias("is_complete"),
        F.when(F.col("published_on").isNotNull(), F.col("items_published") / F.col("items_required"))
        .alias("completeness"),
        F.col("items_required").cast("int").alias("items_required"),
        F.col("items_published").cast("int").alias("items_published"),
        late_days.alias("workdays_overdue"), overdue.alias("reminder_due"),
        (overdue & (late_days >= rules.disclosure_escalate_after)).alias("escalation_due"), d.alias("as_of_date"))
