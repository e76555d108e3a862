"""解决疑难问题 in gold on hand-built questions: the answer 时限 in working days over 国庆 2025 and its
调休 Saturday, the state on the logical date and the working days taken."""

from __future__ import annotations

import datetime as dt

from redcloud import workdays
from redcloud.rules import Rules
from spark_jobs.gold import facts as G
from spark_jobs.gold import questions as Q

D = dt.date
TS = dt.datetime
RULES = Rules.defaults()
SCHEMA = ("question_id long, member_id long, org_id long, category string, asked_at timestamp, "
          "answered_at timestamp, answered_by string, is_deleted boolean, deleted_on date")


def test_question_deadline_and_state_on_the_official_calendar(spark):
    as_of = D(2025, 10, 15)
    rows = [(1, 5, 9, "党费缴纳", TS(2025, 9, 30, 16), TS(2025, 10, 10, 9), "支部"),    # 3rd working day after
            (2, 5, 9, "入党程序", TS(2025, 9, 30, 16), TS(2025, 10, 13, 9), "支部"),    # 4th: late
            (3, 6, 9, "政策咨询", TS(2025, 9, 30, 16), None, None),                      # open past the 时限
            (4, 6, 9, "学习平台使用", TS(2025, 10, 14, 10), None, None),                 # open within it
            (5, 6, 9, "党费缴纳", TS(2025, 10, 16, 10), None, None)]                     # after the logical date
    df = spark.createDataFrame([r + (False, None) for r in rows], SCHEMA)
    cal = G.calendar_frame(spark, D(2025, 9, 1), D(2025, 12, 31))
    out = Q.fct_member_question(df, cal, as_of, RULES).toPandas().set_index("question_id")
    assert RULES.question_answer_workdays == 3
    due = workdays.workdays_between(D(2025, 10, 1), D(2025, 12, 31))[2]
    assert due == D(2025, 10, 11)               # Oct 9, 10 and the 调休 Saturday Oct 11
    assert (out.due_date[[1, 2, 3]] == due).all() and 5 not in out.index
    assert out.state.to_dict() == {1: "按时解答", 2: "超时解答", 3: "超时未解答", 4: "待解答"}
    assert out.loc[1].answer_workdays == 2 and out.loc[2].answer_workdays == 4
    assert out.loc[3].reminder_due and out.loc[3].workdays_overdue == len(workdays.workdays_between(D(2025, 10, 12), as_of))
    assert not out.loc[4].reminder_due and out.loc[4].workdays_overdue == 0
