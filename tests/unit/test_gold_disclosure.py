"""党务公开 in gold on hand-built items: the 时限 counted in working days over 国庆 2025 and its 调休
Saturday, the state on the logical date, reminders and escalation from ``[rules]``."""

from __future__ import annotations

import datetime as dt

from redcloud import workdays
from redcloud.rules import Rules
from spark_jobs.gold import disclosure as P
from spark_jobs.gold import facts as G

D = dt.date
TS = dt.datetime
RULES = Rules.defaults()
SCHEMA = ("disclosure_id long, org_id long, item_type string, title string, event_date date, published_at timestamp, "
          "items_required long, items_published long, is_deleted boolean, deleted_on date")


def test_disclosure_deadline_state_and_escalation_on_the_official_calendar(spark):
    as_of = D(2025, 11, 5)
    rows = [(1, 9, "党费收缴情况", "a", D(2025, 9, 30), TS(2025, 10, 20, 10), 3, 3),
            (2, 9, "党费收缴情况", "b", D(2025, 9, 30), TS(2025, 10, 22, 10), 3, 3),
            (3, 9, "组织生活开展情况", "c", D(2025, 9, 30), None, 3, 0),
            (4, 9, "发展党员情况", "d", D(2025, 11, 3), None, 4, 0),
            (5, 9, "发展党员情况", "e", D(2025, 9, 30), TS(2025, 10, 9, 10), 4, 3),
            (6, 9, "评先评优结果", "f", D(2025, 11, 20), None, 2, 0)]
    df = spark.createDataFrame([r + (False, None) for r in rows], SCHEMA)
    cal = G.calendar_frame(spark, D(2025, 9, 1), D(2026, 1, 31))
    out = P.fct_party_disclosure(df, cal, as_of, RULES).toPandas().set_index("disclosure_id")
    assert RULES.disclosure_due_workdays == 10 and RULES.disclosure_escalate_after == 10
    due = workdays.workdays_between(D(2025, 10, 1), D(2025, 12, 31))[9]
    assert due == D(2025, 10, 21)               # 国庆 to Oct 8, Saturday Oct 11 is a 调休 working day
    assert (out.due_date[[1, 2, 3, 5]] == due).all()
    assert out.state.to_dict() == {1: "按时公开", 2: "逾期公开", 3: "逾期未公开", 4: "待公开", 5: "按时公开"}
    assert 6 not in out.index                   # the event is after the logical date
    late = len(workdays.workdays_between(D(2025, 10, 22), as_of))
    assert late == 11 and out.loc[3].workdays_overdue == late and out.loc[3].reminder_due and out.loc[3].escalation_due
    assert not out.loc[5].is_complete and out.loc[5].completeness == 0.75 and out.loc[1].is_complete
    assert out.loc[4].due_date == workdays.workdays_between(D(2025, 11, 4), D(2025, 12, 31))[9]
    assert not out.loc[4].reminder_due and out.loc[4].workdays_overdue == 0
    lenient = P.fct_party_disclosure(df, cal, as_of, RULES.replace(disclosure_escalate_after=12)).toPandas()
    assert not lenient.escalation_due.any() and lenient.reminder_due.sum() == 1
