"""党员志愿服务超市 in gold on hand-built needs: the matching 时限 in working days over 国庆 2025, the state
on the logical date, and what completed services delivered."""

from __future__ import annotations

import datetime as dt

from redcloud import workdays
from redcloud.rules import Rules
from spark_jobs.gold import facts as G
from spark_jobs.gold import volunteer_market as V

D = dt.date
TS = dt.datetime
RULES = Rules.defaults()
SCHEMA = ("need_id long, org_id long, category string, title string, published_at timestamp, beneficiaries long, "
          "team_id long, matched_at timestamp, completed_at timestamp, service_hours double, funds_yuan double, "
          "is_deleted boolean, deleted_on date")


def test_need_matching_deadline_state_and_delivery_on_the_official_calendar(spark):
    as_of = D(2025, 10, 20)
    rows = [(1, 9, "帮扶慰问", "a", TS(2025, 9, 30, 9), 4, 2, TS(2025, 10, 10, 9), TS(2025, 10, 15, 9), 10.0, 800.0),
            (2, 9, "助老助残", "b", TS(2025, 9, 30, 9), 3, 2, TS(2025, 10, 16, 9), None, 0.0, 0.0),
            (3, 9, "环境整治", "c", TS(2025, 9, 30, 9), 6, None, None, None, 0.0, 0.0),
            (4, 9, "政策宣讲", "d", TS(2025, 10, 17, 9), 2, None, None, None, 0.0, 0.0)]
    df = spark.createDataFrame([r + (False, None) for r in rows], SCHEMA)
    cal = G.calendar_frame(spark, D(2025, 9, 1), D(2025, 12, 31))
    out = V.fct_volunteer_need(df, cal, as_of, RULES).toPandas().set_index("need_id")
    assert RULES.volunteer_match_workdays == 5
    due = workdays.workdays_between(D(2025, 10, 1), D(2025, 12, 31))[4]
    assert due == D(2025, 10, 14)               # Oct 9, 10, 11 (调休), 13, 14
    assert (out.match_due_date[[1, 2, 3]] == due).all()
    assert out.state.to_dict() == {1: "已完成", 2: "已对接", 3: "超时未对接", 4: "待对接"}
    assert bool(out.loc[1].matched_in_time) and not bool(out.loc[2].matched_in_time)
    assert (out.loc[1].people_served, out.loc[1].service_hours, out.loc[1].funds_yuan) == (4, 10.0, 800.0)
    assert out.loc[2].people_served == 0        # not completed: nothing delivered yet
    assert out.loc[3].reminder_due and out.loc[3].workdays_overdue == len(workdays.workdays_between(D(2025, 10, 15), as_of))
    assert out.loc[1].match_workdays == 2 and not out.loc[4].reminder_due
