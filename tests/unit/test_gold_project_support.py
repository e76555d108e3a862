"""帮扶措施 and funding in gold on hand-built projects: money by channel, and a running project without
measures flagged once its due working day (counted over 国庆 2025 and its 调休 Saturday) has passed."""

from __future__ import annotations

import datetime as dt

from redcloud import workdays
from redcloud.rules import Rules
from spark_jobs.gold import facts as G
from spark_jobs.gold import project_support as S

D = dt.date
RULES = Rules.defaults()
META = "is_deleted boolean, deleted_on date"


def test_measures_money_by_channel_and_missing_measures_on_the_official_calendar(spark):
    as_of = D(2025, 10, 31)
    projects = spark.createDataFrame([(p, f"项目{p}", 7, 3, "产业帮扶", D(2025, 9, 26), 1000.0, False, None)
                                      for p in (1, 2, 3)]
                                     + [(4, "项目4", 7, 3, "产业帮扶", D(2025, 11, 3), 500.0, False, None)],
                                     f"project_id long, project_name string, village_org_id long, cadre_id long, "
                                     f"category string, start_date date, budget_yuan double, {META}")
    status = spark.createDataFrame([(1, "进行中"), (2, "进行中"), (3, "已完成"), (4, "进行中")],
                                   "project_id long, status string")
    measures = spark.createDataFrame([(1, 1, "产业扶持", "政府帮扶", 700.0, D(2025, 9, 28), False, None),
                                      (2, 1, "技术指导", "社会帮扶", 300.0, D(2025, 10, 9), False, None),
                                      (3, 1, "产销对接", "社会帮扶", 99.0, D(2025, 11, 2), False, None)],
                                     f"measure_id long, project_id long, measure_type string, funding_channel string, "
                                     f"amount_yuan double, start_date date, {META}")
    cal = G.calendar_frame(spark, D(2025, 9, 1), as_of)
    out = S.fct_project_support(projects, status, measures, cal, as_of, RULES).toPandas().set_index("project_id")
    assert 4 not in out.index                                  # starts after the logical date
    one = out.loc[1]
    assert (one.measures, one.government_yuan, one.social_yuan, one.government_share) == (2, 700.0, 300.0, 0.7)
    assert list(one.measure_types) == ["产业扶持", "技术指导"] and not one.measures_missing
    due = [d for d in workdays.workdays_between(D(2025, 9, 27), as_of)][RULES.project_measure_workdays - 1]
    assert RULES.project_measure_workdays == 15 and due == D(2025, 10, 23)   # 国庆 off, Sep 28 and Oct 11 on
    two = out.loc[2]
    assert two.measure_due_date == due and two.measures_missing
    assert two.workdays_without_measure == len(workdays.workdays_between(D(2025, 10, 24), as_of)) == 6
    assert not out.loc[3].measures_missing                     # completed: nothing to warn about
    later = S.fct_project_support(projects, status, measures, cal, as_of,
                                  RULES.replace(project_measure_workdays=25)).toPandas().set_index("project_id")
    assert not later.loc[2].measures_missing and later.loc[2].workdays_without_measure == 0
