"""SCD2 history (silver) and gold facts: hand-built unit cases for the tricky logic, then one real
pipeline run on the test city (bronze -> silver -> history -> gold facts for 2025-12-31) checked for
invariants and against an independent pandas recomputation and the planted truth.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from redcloud import lake, pipeline, workdays
from redcloud.stages import gold_facts, history, silver
from spark_jobs.gold import facts as G
from spark_jobs.silver import history as H

pytestmark = pytest.mark.slow

D = dt.date
D1, D2 = D(2025, 12, 30), D(2025, 12, 31)
TS = dt.datetime

META = "is_deleted boolean, deleted_on date"
S_MEMBERS = f"member_id long, join_date date, full_member_date date, party_status string, org_id long, {META}"
S_CHANGES = (f"change_id long, member_id long, change_type string, change_date date, from_org_id long, "
             f"to_org_id long, updated_at timestamp, {META}")
S_POSTS = (f"post_id long, cadre_id long, unit_org_id long, position string, rank string, start_date date, "
           f"end_date date, {META}")
S_CADRES = f"cadre_id long, id_number_pseudonym string, {META}"
S_HIST = "member_id long, valid_from date, valid_to date, membership_status string, org_id long"
S_POST_HIST = "cadre_id long, valid_from date, valid_to date, rank string, position string, unit_org_id long"


def _alive(rows):
    return [tuple(r) + (False, None) for r in rows]


# ---------------------------------------------------------------------------------------------
# unit: SCD2
# ---------------------------------------------------------------------------------------------

def test_organization_history_collapses_versions_and_closes_on_tombstone(spark):
    cols = ("org_id long, org_code string, org_name string, parent_org_id long, org_level string, org_type string, "
            "region_code string, established_date date, updated_at timestamp, _op string, _logical_date date")
    br = "党支部"

    def v(org, name, parent, upd, ld, level=br, region="520102", op="U", est=D(2015, 3, 1)):
        return (org, f"GY{org}", name, parent, level, "机关", region, est, upd, op, ld)

    rows = [
        v(1, "A支部", 10, TS(2020, 1, 5, 9), D(2020, 1, 5)),
        v(1, "A支部", 10, TS(2020, 1, 5, 9), D(2020, 1, 6)),             # same version re-extracted
        v(1, "A支部", 10, TS(2021, 2, 1, 9), D(2021, 2, 1), region="520103"),  # untracked change only
        v(1, "B支部", 10, TS(2022, 6, 15, 10), D(2022, 6, 15)),
        v(1, "C支部", 10, TS(2022, 6, 15, 16), D(2022, 6, 16)),         # same day: the later version wins
        v(1, "C支部", 11, TS(2023, 3, 1, 9), D(2023, 3, 1)),
        v(1, "C支部", 11, TS(2023, 5, 1, 9), D(2023, 5, 1)),            # identical to the previous: collapses
        (1, None, None, None, None, None, None, None, None, "D", D(2024, 1, 10)),  # deleted in the source
        v(2, "X支部", 10, TS(2019, 2, 1, 9), D(2019, 2, 1), est=D(2019, 1, 1)),
        v(2, "X支部", 10, TS(2020, 1, 1, 9), D(2020, 1, 1), level="未知"),  # breaks a silver rule: ignored
        v(2, "Y支部", 10, TS(2021, 1, 1, 9), D(2021, 1, 1)),
        v(2, "Z支部", 10, TS(2025, 2, 1, 9), D(2025, 2, 1)),            # loaded after the as-of date
    ]
    out = H.organization_history(spark.createDataFrame(rows, cols), D(2025, 1, 1)).toPandas()
    o1 = out[out.org_id == 1].sort_values("valid_from")
    assert list(zip(o1.valid_from, o1.valid_to, o1.org_name, o1.parent_org_id)) == [
        (D(2015, 3, 1), D(2022, 6, 15), "A支部", 10),
        (D(2022, 6, 15), D(2023, 3, 1), "C支部", 10),
        (D(2023, 3, 1), D(2024, 1, 10), "C支部", 11),
    ]
    assert not o1.is_current.any()
    o2 = out[out.org_id == 2].sort_values("valid_from")
    assert list(zip(o2.valid_from, o2.valid_to, o2.org_name)) == [
        (D(2019, 1, 1), D(2021, 1, 1), "X支部"), (D(2021, 1, 1), None, "Y支部")]
    assert list(o2.is_current) == [False, True]


def test_member_status_history_places_late_changes_at_their_effective_date(spark):
    members = spark.createDataFrame(_alive([
        (1, D(2010, 5, 1), D(2011, 5, 1), "正式党员", 50),
        (2, D(2024, 3, 1), None, "预备党员", 51),
        (3, D(2000, 7, 1), D(2001, 7, 1), "正式党员", 52),
    ]) + [(5, D(2001, 1, 1), D(2002, 1, 1), "正式党员", 50, True, D(2025, 1, 1))], S_MEMBERS)
    changes = spark.createDataFrame(_alive([
        # a death on 2025-03-10 recorded only on 2025-06-20 (late-arriving update)
        (11, 1, "去世", D(2025, 3, 10), 50, None, TS(2025, 6, 20, 10)),
        (12, 2, "入党", D(2024, 3, 1), None, 51, TS(2024, 3, 1, 10)),
        (13, 3, "转入", D(2023, 6, 1), None, 52, TS(2023, 6, 1, 10)),
        (14, 3, "流动", D(2024, 2, 1), 52, 52, TS(2024, 2, 1, 10)),
        (15, 4, "转出", D(2024, 1, 1), 50, None, TS(2024, 1, 1, 10)),   # member 4 is quarantined
        (16, 2, "转正", D(2025, 3, 1), None, 51, TS(2025, 3, 1, 10)),
        (17, 5, "去世", D(2024, 5, 1), 50, None, TS(2024, 5, 1, 10)),   # member 5 deleted in silver
    ]), S_CHANGES)
    out = H.member_status_history(changes, members, D(2025, 7, 1)).toPandas().sort_values(["member_id", "valid_from"])
    assert set(out.member_id) == {1, 2, 3}
    got = lambda m: [(r.valid_from, r.valid_to, r.membership_status, r.party_status, r.is_mobile,  # noqa: E731
                      None if pd.isna(r.org_id) else int(r.org_id), r.is_current)
                     for r in out[out.member_id == m].itertuples()]
    assert got(1) == [
        (D(2010, 5, 1), D(2011, 5, 1), "在册", "预备党员", False, 50, False),
        (D(2011, 5, 1), D(2025, 3, 10), "在册", "正式党员", False, 50, False),
        (D(2025, 3, 10), None, "已去世", "正式党员", False, 50, True),
    ]
    death = out[(out.member_id == 1) & (out.membership_status == "已去世")].iloc[0]
    assert death.recorded_at == pd.Timestamp(2025, 6, 20, 10) and death.opened_by_change_id == 11
    assert got(2) == [(D(2024, 3, 1), D(2025, 3, 1), "在册", "预备党员", False, 51, False),
                      (D(2025, 3, 1), None, "在册", "正式党员", False, 51, True)]
    assert got(3) == [
        (D(2000, 7, 1), D(2001, 7, 1), "在册", "预备党员", False, None, False),   # before 转入: outside the city
        (D(2001, 7, 1), D(2023, 6, 1), "在册", "正式党员", False, None, False),
        (D(2023, 6, 1), D(2024, 2, 1), "在册", "正式党员", False, 52, False),
        (D(2024, 2, 1), None, "在册", "正式党员", True, 52, True),
    ]
    # as of a date before the death took effect, the member is still on the roll
    early = H.member_status_history(changes, members, D(2025, 3, 9)).where("member_id = 1 and is_current").first()
    assert early.membership_status == "在册" and early.valid_to is None


def test_cadre_post_history_validity_windows(spark):
    posts = spark.createDataFrame(_alive([
        (1, 1, 34, "科长", "乡科级正职", D(2015, 1, 1), D(2018, 6, 30)),
        (2, 1, 34, "局长", "县处级正职", D(2018, 7, 1), None),
        (3, 2, 35, "科长", "乡科级正职", D(2016, 1, 1), D(2020, 12, 31)),
        (4, 2, 35, "副局长", "县处级副职", D(2020, 6, 1), D(2022, 1, 31)),   # overlaps post 3
        (5, 3, 36, "科长", "乡科级正职", D(2026, 1, 1), None),                 # starts after as-of
    ]), S_POSTS)
    cadres = spark.createDataFrame(_alive([(1, "p1"), (2, "p2"), (3, "p3")]), S_CADRES)
    out = H.cadre_post_history(posts, cadres, D(2025, 12, 31)).toPandas().sort_values(["cadre_id", "valid_from"])
    rows = [(r.cadre_id, r.post_id, r.valid_from, r.valid_to, r.is_current, r.overlap_trimmed, r.rank)
            for r in out.itertuples()]
    assert rows == [
        (1, 1, D(2015, 1, 1), D(2018, 7, 1), False, False, "乡科级正职"),
        (1, 2, D(2018, 7, 1), None, True, False, "县处级正职"),
        (2, 3, D(2016, 1, 1), D(2020, 6, 1), False, True, "乡科级正职"),
        (2, 4, D(2020, 6, 1), D(2022, 2, 1), False, False, "县处级副职"),
    ]


# ---------------------------------------------------------------------------------------------
# unit: learning miss streaks on the real calendar (调休 and 国庆 2025)
# ---------------------------------------------------------------------------------------------

CAL_LO, CAL_HI = D(2025, 9, 15), D(2025, 10, 17)


@pytest.fixture(scope="module")
def learning_unit(spark):
    cal = G.calendar_frame(spark, CAL_LO, CAL_HI)
    wds = workdays.workdays_between(CAL_LO, CAL_HI)
    a_miss = {D(2025, 9, 22), D(2025, 9, 23), D(2025, 9, 24), D(2025, 9, 25), D(2025, 9, 26), D(2025, 9, 28)}
    b_miss = {D(2025, 9, 28), D(2025, 9, 29), D(2025, 9, 30), D(2025, 10, 9), D(2025, 10, 10), D(2025, 10, 11)}
    ans = [(101, d) for d in wds if d not in a_miss]
    ans += [(102, d) for d in wds if d not in b_miss]
    ans += [(102, D(2025, 10, 4))]                       # an answer on a holiday neither counts nor resets
    answers = spark.createDataFrame(_alive([(i + 1, m, d) for i, (m, d) in enumerate(ans)]),
                                    f"answer_id long, member_id long, answer_date date, {META}")
    links = spark.createDataFrame([(1, 101, "t"), (2, 102, "t"), (3, 103, "t")],
                                  "cadre_id long, member_id long, link_method string")
    users = spark.createDataFrame(_alive([(101, TS(2025, 9, 15, 8)), (102, TS(2025, 9, 15, 8)),
                                          (103, TS(2025, 10, 9, 9))]),
                                  f"member_id long, registered_at timestamp, {META}")
    hist = spark.createDataFrame([(m, D(2000, 1, 1), None, "在册", 50) for m in (101, 102, 103)], S_HIST)
    posts = spark.createDataFrame([(1, D(2020, 1, 1), None, "县处级正职", "局长", 34)], S_POST_HIST)
    daily = G.fct_learning_daily(links, users, answers, hist, posts, cal, CAL_HI).toPandas()
    return dict(daily=daily, wds=wds, links=links, posts=posts, spark=spark)


def _streaks(daily, cadre):
    d = daily[daily.cadre_id == cadre].sort_values("work_date")
    return dict(zip(d.work_date, d.miss_streak))


def test_calendar_rows_are_official_working_days_including_make_up_days(learning_unit):
    daily, wds = learning_unit["daily"], learning_unit["wds"]
    days = sorted(daily[daily.cadre_id == 1].work_date)
    assert days == list(wds)
    assert D(2025, 9, 28) in days and D(2025, 10, 11) in days          # 调休 Sunday / Saturday
    assert not {D(2025, 9, 27), D(2025, 10, 12)} & set(days)           # ordinary weekend
    assert not {D(2025, 10, 1) + dt.timedelta(days=i) for i in range(8)} & set(days)  # 国庆 + 中秋
    mk = daily[(daily.cadre_id == 1) & daily.is_makeup_workday].work_date
    assert set(mk) == {D(2025, 9, 28), D(2025, 10, 11)}


def test_miss_streak_counts_working_days_and_resets_on_an_answer(learning_unit):
    daily = learning_unit["daily"]
    a = _streaks(daily, 1)
    # misses Mon-Fri of a normal week: 5 on Friday; the weekend does not count; the 调休 Sunday does
    assert [a[D(2025, 9, d)] for d in (19, 22, 23, 24, 25, 26, 28, 29)] == [0, 1, 2, 3, 4, 5, 6, 0]
    row = daily[(daily.cadre_id == 1) & (daily.work_date == D(2025, 9, 26))].iloc[0]
    assert row.escalation_due and row.reminder_due and row["rank"] == "县处级正职" and row.is_obligated
    assert not daily[(daily.cadre_id == 1) & (daily.work_date == D(2025, 9, 25))].iloc[0].escalation_due
    b = _streaks(daily, 2)
    # the streak runs across the 国庆 holidays (they are not working days) and through the 调休 Saturday
    assert [b[D(2025, 9, 26)], b[D(2025, 9, 28)], b[D(2025, 9, 29)], b[D(2025, 9, 30)], b[D(2025, 10, 9)],
            b[D(2025, 10, 10)], b[D(2025, 10, 11)], b[D(2025, 10, 13)]] == [0, 1, 2, 3, 4, 5, 6, 0]
    assert not daily[(daily.cadre_id == 2)].is_obligated.any()
    # registered on 2025-10-09: the obligation starts then, and nothing was ever answered
    c = _streaks(daily, 3)
    assert list(c) == list(workdays.workdays_between(D(2025, 10, 9), CAL_HI))
    assert list(c.values()) == list(range(1, len(c) + 1))


def test_cadre_year_learning_inputs_from_the_daily_fact(learning_unit, spark):
    daily = spark.createDataFrame(learning_unit["daily"])
    e = lambda schema: spark.createDataFrame([], schema)  # noqa: E731
    cadres = spark.createDataFrame(_alive([(1, "p1"), (2, "p2"), (3, "p3"), (4, None)]), S_CADRES)
    assessments = spark.createDataFrame(_alive([(1, 1, 2025, "优秀", TS(2025, 12, 28)), (2, 1, 2024, "称职", TS(2024, 12, 28))]),
                                        f"assessment_id long, cadre_id long, assess_year long, grade string, "
                                        f"updated_at timestamp, {META}")
    discipline = spark.createDataFrame(_alive([(1, 3, D(2025, 10, 1))]), f"discipline_id long, cadre_id long, action_date date, {META}")
    out = G.fct_cadre_year(
        cadres, learning_unit["links"], daily,
        e(f"attendance_id long, meeting_id long, member_id long, status string, {META}"),
        e(f"meeting_id long, meeting_date date, {META}"), assessments, discipline, learning_unit["posts"],
        e("cadre_id long, work_date date, has_record boolean"),
        e(f"project_id long, cadre_id long, deadline date, completed_date date, {META}"),
        CAL_HI, 2024).toPandas().set_index(["cadre_id", "year"])
    a = out.loc[(1, 2025)]
    assert a.learning_days_required == len(workdays.workdays_between(CAL_LO, CAL_HI))
    assert a.learning_days_required - a.learning_days_answered == 6 and a.learning_longest_miss_streak == 6
    assert a.assessment_grade == "优秀" and a["rank"] == "县处级正职" and not a.year_complete
    assert out.loc[(1, 2024)].assessment_grade == "称职"
    # discipline records start in 2025: 2024 is "unknown", not "none"
    assert out.loc[(1, 2025)].discipline_count == 0 and pd.isna(out.loc[(1, 2024)].discipline_count)
    assert (3, 2025) not in out.index  # no post, no grade: no cadre-year row
    for col in ("ironcage_items_handled", "ironcage_timely_rate", "ironcage_complaints", "duty_target_completion_rate"):
        assert col in out.columns and out[col].isna().all()


@pytest.fixture(scope="module")
def meeting_unit(spark):
    cal = G.calendar_frame(spark, CAL_LO, CAL_HI)
    hist = spark.createDataFrame([(m, D(2000, 1, 1), None, "在册", 1) for m in (1, 2, 3)]
                                 + [(4, D(2000, 1, 1), D(2025, 1, 1), "在册", 1)], S_HIST)
    meetings = spark.createDataFrame(_alive([
        (1, 1, "党课", D(2025, 9, 26), 2),
        (2, 1, "党课", D(2025, 10, 4), 5),       # a holiday, the list of meeting 1, more than 3 members
        (3, 1, "支委会", D(2025, 9, 28), 2),     # the 调休 Sunday is a working day
        (4, 1, "支委会", D(2025, 10, 9), 2),     # same all-present list as meeting 3 (a committee)
        (5, 1, "联学共建", D(2025, 10, 10), 1),
        (6, 1, "支委会", D(2025, 10, 13), 1),
        (7, 1, "支委会", D(2025, 10, 14), 1),
        (8, 1, "支委会", D(2025, 10, 15), 1),    # a 4th 支委会 in the quarter: counts once towards 3
    ]), f"meeting_id long, org_id long, meeting_type string, meeting_date date, declared_attendance long, {META}")
    att = [(1, 1, "出席"), (1, 2, "请假"), (1, 3, "出席"), (2, 3, "出席"), (2, 2, "请假"), (2, 1, "出席"),
           (3, 1, "出席"), (3, 2, "出席"), (4, 2, "出席"), (4, 1, "出席"), (5, 3, "出席"), (5, 1, "缺席"),
           (6, 1, "出席"), (6, 2, "缺席"), (7, 1, "出席"), (7, 3, "缺席"), (8, 1, "出席"), (8, 2, "请假")]
    attendance = spark.createDataFrame(_alive([(i, m, p, s) for i, (m, p, s) in enumerate(att)]),
                                       f"attendance_id long, meeting_id long, member_id long, status string, {META}")
    signals = G.fct_meeting_signals(meetings, attendance, hist, cal, CAL_HI)
    return dict(signals=signals, hist=hist)


def test_meeting_signals_on_hand_built_meetings(meeting_unit):
    out = meeting_unit["signals"].toPandas().set_index("meeting_id").sort_index().loc[[1, 2, 3, 4]]
    assert list(out.branch_member_count) == [3, 3, 3, 3]
    assert list(out.is_non_working_day) == [False, True, False, False]
    assert list(out.identical_attendance) == [False, True, False, True]
    assert out.identical_to_meeting_id[2] == 1 and out.identical_to_meeting_id[4] == 3
    assert list(out.identical_attendance_nontrivial) == [False, True, False, False]
    assert list(out.declared_exceeds_members) == [False, True, False, False]
    assert list(out.signal_count) == [0, 3, 0, 0]
    assert out.attendance_rate[1] == pytest.approx(2 / 3)


def test_branch_quarter_on_hand_built_meetings(meeting_unit, spark):
    orgs = spark.createDataFrame(_alive([(1, "一支部", "机关", 9, "党支部", D(2010, 1, 1)),
                                         (9, "机关党委", "机关", None, "党委/党总支", D(2000, 1, 1))]),
                                 f"org_id long, org_name string, org_type string, parent_org_id long, org_level string, "
                                 f"established_date date, {META}")
    vol = spark.createDataFrame(_alive([(1, 1, D(2025, 10, 11), 6.0), (2, 2, D(2025, 10, 12), 4.0),
                                        (3, 4, D(2025, 10, 12), 8.0)]),  # member 4 left the roll in 2025-01
                                f"record_id long, member_id long, service_date date, hours double, {META}")
    act = spark.createDataFrame(_alive([(1, 2, D(2025, 10, 1), 12), (2, 1, D(2025, 8, 1), 9)]),
                                f"activity_id long, member_id long, activity_month date, login_days long, {META}")
    out = G.fct_branch_quarter(orgs, meeting_unit["signals"], meeting_unit["hist"], vol, act, CAL_HI,
                               first_quarter=D(2025, 7, 1)).toPandas().set_index("quarter_start").sort_index()
    assert list(out.index) == [D(2025, 7, 1), D(2025, 10, 1)] and set(out.org_id) == {1}
    q3, q4 = out.loc[D(2025, 7, 1)], out.loc[D(2025, 10, 1)]
    assert q3.quarter_complete and not q4.quarter_complete
    assert (q3.members_active, q4.members_active) == (3, 3)
    assert (q3.committee_meetings, q3.party_lectures, q3.sanhui_held) == (1, 1, 2)
    assert q3.sanhui_completion_rate == pytest.approx(0.4)
    assert (q4.committee_meetings, q4.party_lectures, q4.other_meetings, q4.meetings_total) == (4, 1, 1, 6)
    assert q4.sanhui_held == 4 and q4.sanhui_completion_rate == pytest.approx(0.8)
    assert (q3.activity_types, q3.new_activity_types, q4.activity_types, q4.new_activity_types) == (2, 2, 3, 1)
    assert q4.volunteer_hours_per_member == pytest.approx(10 / 3) and q4.app_login_days_per_member == pytest.approx(4)
    assert q3.app_login_days == 9 and q3.volunteer_hours == 0
    assert (q4.non_working_day_meetings, q4.identical_attendance_meetings, q4.suspicious_meetings) == (1, 2, 1)


def test_project_status_as_of_the_logical_date(spark):
    p = spark.createDataFrame(_alive([
        (1, D(2025, 1, 1), D(2025, 5, 20), D(2025, 6, 1), "已完成"),
        (2, D(2025, 1, 1), D(2026, 3, 1), D(2026, 1, 10), "已完成"),   # completed after the as-of date
        (3, D(2025, 1, 1), D(2025, 12, 1), None, "进行中"),
        (4, D(2025, 1, 1), D(2026, 1, 15), None, "进行中"),
        (5, D(2026, 2, 1), D(2026, 9, 1), None, "进行中"),              # not started yet
    ]), f"project_id long, start_date date, deadline date, completed_date date, status string, {META}")
    p = p.select("*", F.lit("x").alias("project_name"), F.lit(1).cast("long").alias("village_org_id"),
                 F.lit(1).cast("long").alias("cadre_id"), F.lit("产业帮扶").alias("category"),
                 F.lit(1.0).alias("budget_yuan"))
    out = G.fct_project_status(p, D(2025, 12, 31)).toPandas().set_index("project_id").sort_index()
    assert sorted(out.index) == [1, 2, 3, 4]
    assert list(out.status) == ["已完成", "进行中", "已逾期", "进行中"]
    assert out.completed_late_days[1] == 12 and out.days_to_deadline[2] == 60 and pd.isna(out.completed_date[2])
    assert out.overdue_days[3] == 30 and out.days_to_deadline[3] == -30
    assert list(out.deadline_warning) == [False, False, False, True]


# ---------------------------------------------------------------------------------------------
# integration: the real stages on the test city
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def city_run(spark, source_dbs):
    for day in (D1, D2):
        pipeline.bronze_orgdb(spark, day)
    for day in (D1, D2):
        silver.run(spark, day)
    return {"history": history.run(spark, D2), "facts": gold_facts.run(spark, D2)}


def _pd(spark, layer, name, *cols):
    df = lake.read(spark, layer, name)
    return (df.select(*cols) if cols else df).toPandas()


def _check_periods(df, key, exactly_one_current):
    df = df.sort_values([key, "valid_from"])
    problems = []
    for k, g in df.groupby(key):
        frm, to = list(g.valid_from), list(g.valid_to)
        for i in range(len(g)):
            if to[i] is not None and not pd.isna(to[i]) and to[i] <= frm[i]:
                problems.append((k, "empty period", frm[i], to[i]))
            if i + 1 < len(g) and (to[i] is None or pd.isna(to[i]) or to[i] > frm[i + 1]):
                problems.append((k, "overlap", frm[i], to[i], frm[i + 1]))
        n_cur = int(g.is_current.sum())
        open_last = to[-1] is None or pd.isna(to[-1])
        if n_cur > 1 or (exactly_one_current and n_cur != 1) or (open_last and n_cur != 1):
            problems.append((k, "current rows", n_cur))
    return problems


def test_history_periods_do_not_overlap_and_have_one_current_row(spark, city_run):
    tables = {r["table"]: r["rows"] for r in city_run["history"]["tables"]}
    assert min(tables.values()) > 0, tables
    orgs = _pd(spark, "silver", "organization_history")
    members = _pd(spark, "silver", "member_status_history")
    posts = _pd(spark, "silver", "cadre_post_history")
    assert _check_periods(orgs, "org_id", True) == []
    assert _check_periods(members, "member_id", True) == []
    assert _check_periods(posts, "cadre_id", False) == []
    # every silver organisation and member has a history; quarantined members have none
    silver_orgs = set(_pd(spark, "silver", "organizations", "org_id").org_id)
    assert set(orgs.org_id) == silver_orgs
    silver_members = set(_pd(spark, "silver", "members", "member_id").member_id)
    quarantined = {int(k) for k in _pd(spark, "quarantine", "members", "record_key").record_key}
    assert quarantined and set(members.member_id) == silver_members and not quarantined & set(members.member_id)
    # the current period agrees with the member table's current status
    cur = members[members.is_current].set_index("member_id").membership_status
    m = _pd(spark, "silver", "members", "member_id", "membership_status").set_index("member_id").membership_status
    agree = (cur.reindex(m.index) == m).mean()
    assert agree > 0.98, agree


def test_late_arriving_status_changes_land_at_their_effective_date(spark, city, city_run):
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    late = {int(k) for k in faults[faults.fault == "late_arriving_update"].record_key}
    changes = _pd(spark, "silver", "member_status_changes")
    hist = _pd(spark, "silver", "member_status_history")
    # members quarantined in silver (e.g. a bad 身份证号) have no history: only the others count
    exits = changes[changes.member_id.isin(late & set(hist.member_id)) & changes.change_type.isin(["转出", "去世"])]
    assert len(exits) > 0
    for r in exits.itertuples():
        p = hist[(hist.member_id == r.member_id) & hist.membership_status.isin(["已转出", "已去世"])]
        assert len(p) == 1 and p.iloc[0].valid_from == r.change_date, (r.member_id, p)
        assert p.iloc[0].recorded_at.date() >= r.change_date + dt.timedelta(days=60)
        before = hist[(hist.member_id == r.member_id) & (hist.valid_to == r.change_date)]
        assert len(before) == 1 and before.iloc[0].membership_status == "在册"


def test_branch_quarter_rates_and_suspicious_signals(spark, city, city_run):
    bq = _pd(spark, "gold", "fct_branch_quarter")
    assert not bq.duplicated(["org_id", "quarter_start"]).any()
    assert bq.sanhui_completion_rate.between(0, 1).all()
    assert (bq.sanhui_held <= bq.sanhui_required).all() and (bq.sanhui_required == 5).all()
    assert bq.mean_attendance_rate.dropna().between(0, 1).all()
    assert (bq.new_activity_types <= bq.activity_types).all()
    assert (bq.meetings_total == bq[["committee_meetings", "general_meetings", "party_lectures", "theme_days",
                                     "other_meetings"]].sum(axis=1)).all()
    assert bq.groupby("org_id").size().eq(12).all()                    # 2023Q1 .. 2025Q4
    assert bq[bq.quarter_complete].sanhui_completion_rate.mean() > 0.6
    truth = pd.read_parquet(city / "truth" / "branches.parquet")
    bq = bq.merge(truth[["org_id", "fabricates"]], on="org_id")
    per = bq.groupby("fabricates").suspicious_meetings.mean()
    assert truth.fabricates.any() and per[True] > 2 * per[False], per


def test_meeting_signals_flag_the_planted_fabrications(spark, city, city_run):
    ms = _pd(spark, "gold", "fct_meeting_signals")
    fab = pd.read_parquet(city / "truth" / "fabricated_meetings.parquet")
    ms = ms.merge(fab, on="meeting_id", how="left")
    planted = ms[ms.reasons.notna()]
    assert len(planted) == len(fab)
    hol = planted[planted.reasons.str.contains("holiday")]
    assert len(hol) > 0 and hol.is_non_working_day.all()
    imp = planted[planted.reasons.str.contains("impossible_count")]
    assert len(imp) > 0 and imp.declared_exceeds_members.all()
    ident = planted[planted.reasons.str.contains("identical_attendance")]
    assert ident.identical_attendance.mean() >= 0.8
    honest = ms[ms.reasons.isna()]
    assert not honest.is_non_working_day.any()        # real meetings are held on working days (incl. 调休)
    assert honest.is_suspicious.mean() < 0.1 and planted.is_suspicious.mean() > 0.8


def _learning_expectation(answer_dates: set, start: dt.date, end: dt.date):
    days = workdays.workdays_between(start, end)
    streak, rows = 0, []
    for d in days:
        done = d in answer_dates
        streak = 0 if done else streak + 1
        rows.append((d, done, streak))
    return rows


def test_learning_daily_streaks_equal_a_pandas_recomputation(spark, city_run):
    daily = lake.read(spark, "gold", "fct_learning_daily")
    hist = _pd(spark, "silver", "member_status_history")
    single = hist.groupby("member_id").filter(lambda g: len(g) <= 2 and (g.membership_status == "在册").all())
    go_live = _pd(spark, "silver", "learning_answers", "answer_date").answer_date.min()
    stats = daily.groupBy("cadre_id", "member_id").agg(F.max("miss_streak").alias("mx")).toPandas()
    stats = stats[stats.member_id.isin(set(single.member_id))].sort_values("cadre_id")
    # a few cadres, including the streakiest one
    pick = list(stats.cadre_id[:4]) + [int(stats.sort_values("mx").cadre_id.iloc[-1])]
    assert stats.mx.max() >= 5
    got = daily.where(F.col("cadre_id").isin(pick)).toPandas()
    members = dict(zip(stats.cadre_id, stats.member_id))
    users = _pd(spark, "silver", "app_users", "member_id", "registered_at").set_index("member_id").registered_at
    ans = _pd(spark, "silver", "learning_answers", "member_id", "answer_date")
    cy = _pd(spark, "gold", "fct_cadre_year").set_index(["cadre_id", "year"])
    for c in pick:
        m = members[c]
        start = max(users[m].date(), go_live)
        exp = _learning_expectation(set(ans[ans.member_id == m].answer_date), start, D2)
        g = got[got.cadre_id == c].sort_values("work_date")
        assert list(zip(g.work_date, g.answered, g.miss_streak)) == exp, c
        y = [r for r in exp if r[0].year == 2025]
        row = cy.loc[(c, 2025)]
        assert row.learning_days_required == len(workdays.workdays_between(max(D(2025, 1, 1), start), D2))
        assert row.learning_days_answered == sum(r[1] for r in y)
        s, best = 0, 0
        for r in y:
            s = 0 if r[1] else s + 1
            best = max(best, s)
        assert row.learning_longest_miss_streak == best


def test_cadre_year_carries_the_grade_label_and_fusion_placeholders(spark, city_run):
    cy = _pd(spark, "gold", "fct_cadre_year")
    assert not cy.duplicated(["cadre_id", "year"]).any()
    grades = _pd(spark, "silver", "cadre_assessments", "cadre_id", "assess_year", "grade")
    merged = grades.merge(cy, left_on=["cadre_id", "assess_year"], right_on=["cadre_id", "year"], how="left")
    assert (merged.grade == merged.assessment_grade).all()
    # the app recorded meetings from 2023 on: earlier years are unknown, later ones counted (0 when none)
    assert cy[cy.year < 2023].meetings_expected.isna().all() and (cy.year < 2023).any()
    assert cy[(cy.year >= 2023) & cy.member_id.notna()].meetings_expected.notna().all()
    linked = cy[cy.member_id.notna() & (cy.year == 2025)]
    assert len(linked) > 0.8 * cy[cy.year == 2025].cadre_id.nunique()
    assert linked.meetings_expected.gt(0).mean() > 0.9 and linked.learning_days_required.gt(0).mean() > 0.9
    for col in ("ironcage_items_handled", "ironcage_timely_rate", "ironcage_overdue_items", "ironcage_complaints",
                "duty_target_completion_rate"):
        assert col in cy.columns and cy[col].isna().all()


def test_village_work_and_project_status(spark, city_run):
    vw = _pd(spark, "gold", "fct_village_work_daily")
    assert not vw.duplicated(["assignment_id", "work_date"]).any()
    wd = set(workdays.workdays_between(vw.work_date.min(), D2))
    assert set(vw.work_date) <= wd
    va = _pd(spark, "silver", "village_assignments").set_index("assignment_id")
    lo = vw.groupby("assignment_id").work_date.agg(["min", "max"])
    assert (lo["min"] >= va.start_date.reindex(lo.index)).all()
    end = va.end_date.reindex(lo.index).fillna(D2)
    assert (lo["max"] <= end).all()
    rec = _pd(spark, "silver", "village_work_records", "assignment_id", "work_date")
    rec = rec[rec.work_date.isin(wd)]
    assert int(vw.record_count.sum()) == len(rec.merge(vw[["assignment_id", "work_date"]]))
    assert vw.has_record.mean() > 0.3 and (vw.days_without_record[vw.has_record] == 0).all()
    ps = _pd(spark, "gold", "fct_project_status")
    assert len(ps) > 0 and set(ps.status) <= {"进行中", "已完成", "已逾期"}
    # the app's stored status was computed on the city's last day, which is our logical date
    assert (ps.status == ps.source_status).all()
    assert (ps.overdue_days[ps.status == "已逾期"] > 0).all() and (ps.overdue_days[ps.status != "已逾期"] == 0).all()
    assert ps.deadline_warning.sum() <= (ps.status == "进行中").sum()


def _content(spark, layer, name):
    df = lake.read(spark, layer, name)
    return sorted(repr(tuple(r)) for r in df.select(*sorted(df.columns)).collect())


def test_history_rerun_is_identical_and_a_backfill_leaves_no_residue(spark, city_run):
    # last in the module: it rewrites the history tables (and restores them)
    before = {t: _content(spark, "silver", t) for t in history.TABLES}
    history.run(spark, D2)
    assert {t: _content(spark, "silver", t) for t in history.TABLES} == before
    history.run(spark, D1)
    for t in history.TABLES:
        df = lake.read(spark, "silver", t)
        assert df.count() > 0 and df.where(F.col("valid_from") > F.lit(D1)).count() == 0, t
    history.run(spark, D2)
    assert {t: _content(spark, "silver", t) for t in history.TABLES} == before
