"""Gold fact of 解决疑难问题 (党建APP): each member's question, its answer 时限 and how fast it was answered.

``fct_member_question``: one row per question asked by the logical date. The 时限 is ``[rules]
question_answer_workdays`` working days after the day asked (official calendar); a question still
open past it is 超时未解答 and its branch's head is reminded.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from redcloud.rules import Rules
from redcloud.rules.vocab import ANSWERED_IN_TIME, ANSWERED_LATE, QUESTION_OPEN, QUESTION_OVERDUE
from spark_jobs.gold.facts import _alive, with_workday_deadline, with_workday_number, workday_numbers


def fct_member_question(questions: DataFrame, calendar: DataFrame, as_of: dt.date, rules: Rules) -> DataFrame:
    """One row per question with ``asked_at`` on or before ``as_of`` (``calendar`` must run past as_of
    far enough to hold the 时限 of the latest questions; beyond it the 时限 is NULL: 待解答).

    - ``asked_on``, ``due_date`` (the ``question_answer_workdays``-th working day after), ``answered_on``
      (NULL if not answered by as_of), ``answer_workdays`` (working days from asked to answered);
    - ``state``: 按时解答, 超时解答, 超时未解答 (open and the due date passed), 待解答;
    - ``workdays_overdue`` (超时未解答 only), ``reminder_due`` = 超时未解答.

    Columns: question_id, member_id, org_id, category, asked_on, due_date, answered_on, answered_by,
    answer_workdays, state, is_in_time, workdays_overdue, reminder_due, as_of_date.
    """
    d = F.lit(as_of).cast("date")
    end = F.lit(as_of + dt.timedelta(days=1)).cast("timestamp")
    wd = workday_numbers(calendar)
    q = (_alive(questions).where(F.col("asked_at") < end)
         .withColumn("asked_on", F.to_date("asked_at"))
         .withColumn("answered_on", F.when(F.col("answered_at") < end, F.to_date("answered_at"))))
    # working days are counted between the last working days on or before each date (a day off counts
    # as the working day before)
    q = with_workday_number(with_workday_deadline(q, "asked_on", rules.question_answer_workdays, wd, as_of, "due_date"),
                            "answered_on", wd, "_ans_n")
    answered = F.col("answered_on").isNotNull()
    overdue = ~answered & F.col("due_date").isNotNull() & (F.col("due_date") < d)
    in_time = answered & (F.col("due_date").isNull() | (F.col("answered_on") <= F.col("due_date")))
    state = (F.when(in_time, F.lit(ANSWERED_IN_TIME)).when(answered, F.lit(ANSWERED_LATE))
             .when(overdue, F.lit(QUESTION_OVERDUE)).otherwise(F.lit(QUESTION_OPEN)))
    return q.select(
        "question_id", "member_id", "org_id", "category", "asked_on", "due_date", "answered_on", "answered_by",
        F.when(answered, F.col("_ans_n") - F.col("_from_n")).cast("int").alias("answer_workdays"),
        state.alias("state"), in_time.alias("is_in_time"),
        F.when(overdue, F.col("_today_n") - F.col("_due_n")).otherwise(F.lit(0)).cast("int").alias("workdays_overdue"),
        overdue.alias("reminder_due"), d.alias("as_of_date"))
