"""Gold facts on hand-built frames: every rule's verdict from the rules module, on the real calendar.

The learning streaks run over 调休 and 国庆 2025; the 帮扶 lifecycle over warning, overdue, expiry and
completion; 三会一课 per month and per quarter with the requirement from ``[rules]``.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from pyspark.sql import functions as F

from redcloud import workdays
from redcloud.rules import Rules
from spark_jobs.gold import facts as G

D = dt.date
TS = dt.datetime
RULES = Rules.defaults()

META = "is_deleted boolean, deleted_on date"
S_HIST = "member_id long, valid_from date, valid_to date, membership_status string, org_id long"
S_POST_HIST = "cadre_id long, valid_from date, valid_to date, rank string, position string, unit_org_id long"
S_CADRES = f"cadre_id long, id_number_pseudonym string, {META}"


def _alive(rows):
    return [tuple(r) + (False, None) for r in rows]


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
    daily = G.fct_learning_daily(links, users, answers, hist, posts, cal, CAL_HI, RULES).toPandas()
    return dict(daily=daily, wds=wds, links=links, posts=posts, spark=spark, users=users, answers=answers,
                hist=hist, cal=cal)


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
    assert row.miss_streak_start == D(2025, 9, 22) and row.escalated_on == D(2025, 9, 26)
    later = daily[(daily.cadre_id == 1) & (daily.work_date == D(2025, 9, 28))].iloc[0]
    assert later.escalation_due and later.escalated_on == D(2025, 9, 26) and later.miss_streak_start == D(2025, 9, 22)
    assert not daily[(daily.cadre_id == 1) & (daily.work_date == D(2025, 9, 25))].iloc[0].escalation_due
    assert pd.isna(daily[(daily.cadre_id == 1) & (daily.work_date == D(2025, 9, 29))].iloc[0].miss_streak_start)
    b = _streaks(daily, 2)
    # the streak runs across the 国庆 holidays (they are not working days) and through the 调休 Saturday
    assert [b[D(2025, 9, 26)], b[D(2025, 9, 28)], b[D(2025, 9, 29)], b[D(2025, 9, 30)], b[D(2025, 10, 9)],
            b[D(2025, 10, 10)], b[D(2025, 10, 11)], b[D(2025, 10, 13)]] == [0, 1, 2, 3, 4, 5, 6, 0]
    assert not daily[(daily.cadre_id == 2)].is_obligated.any()
    assert not daily[(daily.cadre_id == 2)].reminder_due.any()          # no obligation, no reminder
    # registered on 2025-10-09: the obligation starts then, and nothing was ever answered
    c = _streaks(daily, 3)
    assert list(c) == list(workdays.workdays_between(D(2025, 10, 9), CAL_HI))
    assert list(c.values()) == list(range(1, len(c) + 1))


def test_obligation_and_escalation_follow_the_rules(learning_unit):
    """科级 extends the obligation (cadre 2 holds no post: still not obligated); 3 misses escalate."""
    u = learning_unit
    spark = u["spark"]
    posts = spark.createDataFrame([(1, D(2020, 1, 1), None, "县处级正职", "局长", 34),
                                   (2, D(2020, 1, 1), None, "乡科级副职", "副科长", 34)], S_POST_HIST)
    rules = RULES.replace(learning_min_level="科级", learning_escalate_after=3)
    daily = G.fct_learning_daily(u["links"], u["users"], u["answers"], u["hist"], posts, u["cal"], CAL_HI,
                                 rules).toPandas()
    assert daily[daily.cadre_id == 2].is_obligated.all()
    row = daily[(daily.cadre_id == 1) & (daily.work_date == D(2025, 9, 24))].iloc[0]
    assert row.miss_streak == 3 and row.escalation_due and row.escalated_on == D(2025, 9, 24)


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


def test_cadre_year_ironcage_inputs_reach_only_linked_cadres(spark):
    """数据铁笼 records count for a cadre only through a linked identity; overdue = late, or open past the
    deadline at the end of as_of (gold fct_power_operation decides, the cadre year counts its verdicts);
    the duty completion rate sums targets over the months."""
    as_of = D(2025, 10, 17)
    links = spark.createDataFrame([("ironcage", "d1|张三|-", "p1", "linked"), ("ironcage", "d1|李四|-", "p2", "ambiguous"),
                                   ("web", "x", "p1", "linked")],
                                  "source string, source_key string, person_key string, status string")
    persons = spark.createDataFrame([("p1", 1), ("p2", 2)], "person_key string, cadre_id long")
    keys = G.ironcage_cadre_keys(links, persons)
    assert sorted(map(tuple, keys.collect())) == [("d1|张三|-", 1)]
    po = spark.createDataFrame(_alive([(*r[:2], "D001", "民政局", "低保审批", "张三", *r[2:]) for r in [
        ("o1", "d1|张三|-", TS(2025, 3, 1, 9), TS(2025, 3, 10, 17), TS(2025, 3, 9, 10)),    # on time
        ("o2", "d1|张三|-", TS(2025, 4, 1, 9), TS(2025, 4, 10, 17), TS(2025, 4, 12, 10)),   # late
        ("o3", "d1|张三|-", TS(2025, 10, 1, 9), TS(2025, 10, 16, 17), None),                # open, deadline passed
        ("o4", "d1|张三|-", TS(2025, 10, 15, 9), TS(2025, 10, 30, 17), None),               # open, not yet due
        ("o5", "d1|张三|-", TS(2024, 5, 1, 9), TS(2024, 5, 2, 17), TS(2024, 5, 2, 9)),
        ("o6", "d1|李四|-", TS(2025, 5, 1, 9), TS(2025, 5, 2, 17), None),                   # ambiguous: nobody's
        ("o7", "d1|张三|-", TS(2025, 10, 1, 9), TS(2025, 10, 10, 17), TS(2025, 10, 20, 9)),  # 办结 after as_of: overdue
        ("o8", "d1|张三|-", TS(2025, 10, 18, 9), TS(2025, 10, 30, 17), None),               # received after as_of
    ]]), f"op_id string, identity_key string, dept_code string, dept_name string, item_name string, "
         f"handler_name string, received_at timestamp, deadline timestamp, completed_at timestamp, {META}")
    cp = spark.createDataFrame(_alive([("c1", "o2", "d1|张三|-", TS(2025, 6, 1, 9)),
                                       ("c2", "o3", "d1|张三|-", TS(2025, 11, 1, 9))]),      # after as_of
                               f"complaint_id string, op_id string, identity_key string, received_at timestamp, {META}")
    ops = G.fct_power_operation(po, cp, as_of)
    got = ops.toPandas().set_index("op_id")
    assert sorted(got.index) == ["o1", "o2", "o3", "o4", "o5", "o6", "o7"]
    assert list(got.loc[["o1", "o2", "o3", "o4", "o7"], "is_on_time"]) == [True, False, False, False, False]
    assert list(got.loc[["o1", "o2", "o3", "o4", "o7"], "is_overdue"]) == [False, True, True, False, True]
    assert pd.isna(got.loc["o7", "completed_at"]) and got.loc["o2", "complaints"] == 1 and got.loc["o3", "complaints"] == 0
    assert got.loc["o2", "month"] == D(2025, 4, 1) and (got.as_of_date == as_of).all()
    du = spark.createDataFrame(_alive([("r1", "d1|张三|-", D(2025, 1, 1), 10, 8, 80.0),
                                       ("r2", "d1|张三|-", D(2025, 2, 1), 10, 10, 90.0)]),
                               f"record_id string, identity_key string, duty_month date, target_count int, "
                               f"completed_count int, review_score double, {META}")
    ic = G.ironcage_cadre_year(ops, cp, du, keys, as_of).toPandas().set_index(["cadre_id", "year"])
    r = ic.loc[(1, 2025)]
    assert (r.ironcage_items_handled, r.ironcage_overdue_items, r.ironcage_complaints) == (5, 3, 1)
    assert r.ironcage_timely_rate == pytest.approx(1 / 4)          # o4 is not decided yet
    assert (r.duty_targets, r.duty_completed, r.duty_target_completion_rate, r.duty_review_score) == (20, 18, 0.9, 85.0)
    assert ic.loc[(1, 2024)].ironcage_timely_rate == 1.0 and 2 not in ic.index.get_level_values(0)


def test_duty_month_record_due_on_the_nth_working_day_of_the_next_month(spark):
    """四位一体 记实 of September 2025 is due on the 5th working day of October: 国庆 runs to Oct 8 and
    Saturday Oct 11 is a 调休 working day, so the 5th is Oct 14; on Oct 20 it is 4 working days late."""
    as_of = D(2025, 10, 20)
    cal = G.calendar_frame(spark, D(2025, 7, 1), as_of)
    keys = spark.createDataFrame([("k1", 1), ("k2", 2), ("k3", 3)], "identity_key string, cadre_id long")
    recs = [("r1", "k1", D(2025, 7, 1), 10, 9, 90.0), ("r2", "k1", D(2025, 8, 1), 10, 5, 70.0),
            ("r3", "k2", D(2025, 8, 1), 10, 8, 80.0), ("r4", "k2", D(2025, 9, 1), 10, 10, 95.0),
            ("r5", "k2", D(2025, 10, 1), 12, 3, 60.0), ("r6", "k3", D(2025, 7, 1), 10, 10, 99.0),
            ("r7", "kX", D(2025, 9, 1), 10, 10, 99.0)]                       # an unlinked identity: nobody's
    duty = spark.createDataFrame(_alive(recs), f"record_id string, identity_key string, duty_month date, "
                                               f"target_count int, completed_count int, review_score double, {META}")
    posts = spark.createDataFrame([(1, D(2020, 1, 1), None, "乡科级正职", "局长", 34),
                                   (2, D(2025, 8, 15), None, "乡科级副职", "副局长", 35),
                                   (3, D(2020, 1, 1), D(2025, 8, 1), "乡科级副职", "副局长", 34)], S_POST_HIST)
    out = G.fct_cadre_duty_month(duty, keys, posts, cal, as_of, RULES).toPandas().set_index(["cadre_id", "month"])
    assert RULES.duty_record_due_workday == 5
    sep1 = out.loc[(1, D(2025, 9, 1))]
    assert sep1.due_date == D(2025, 10, 14) and sep1.record_missing and sep1.workdays_overdue == 4 and sep1.reminder_due
    assert out.loc[(1, D(2025, 8, 1))].due_date == D(2025, 9, 5) and not out.loc[(1, D(2025, 8, 1))].record_missing
    oct1 = out.loc[(1, D(2025, 10, 1))]
    assert pd.isna(oct1.due_date) and not oct1.record_missing      # due in November: not yet
    # cadre 2 took the post on Aug 15: from August on; year to date through September
    sep2 = out.loc[(2, D(2025, 9, 1))]
    assert (sep2.ytd_targets, sep2.ytd_completed, sep2.ytd_completion_rate) == (20, 18, 0.9) and sep2.unit_org_id == 35
    assert out.loc[(2, D(2025, 10, 1))].completion_rate == 0.25
    # cadre 3 left on Aug 1: July only, nothing missing after
    assert sorted(m for c, m in out.index if c == 3) == [D(2025, 7, 1)]
    assert int(out.record_missing.sum()) == 1
    later = G.fct_cadre_duty_month(duty, keys, posts, cal, as_of, RULES.replace(duty_record_due_workday=8)).toPandas()
    row = later[(later.cadre_id == 1) & (later.month == D(2025, 9, 1))].iloc[0]
    assert row.due_date == D(2025, 10, 17) and row.workdays_overdue == 1


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
    return dict(signals=signals, hist=hist, orgs=spark.createDataFrame(
        _alive([(1, "一支部", "机关", 9, "党支部", D(2010, 1, 1)), (9, "机关党委", "机关", None, "党委/党总支", D(2000, 1, 1))]),
        f"org_id long, org_name string, org_type string, parent_org_id long, org_level string, "
        f"established_date date, {META}"))


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
    orgs = meeting_unit["orgs"]
    vol = spark.createDataFrame(_alive([(1, 1, D(2025, 10, 11), 6.0), (2, 2, D(2025, 10, 12), 4.0),
                                        (3, 4, D(2025, 10, 12), 8.0)]),  # member 4 left the roll in 2025-01
                                f"record_id long, member_id long, service_date date, hours double, {META}")
    act = spark.createDataFrame(_alive([(1, 2, D(2025, 10, 1), 12), (2, 1, D(2025, 8, 1), 9)]),
                                f"activity_id long, member_id long, activity_month date, login_days long, {META}")
    out = G.fct_branch_quarter(orgs, meeting_unit["signals"], meeting_unit["hist"], vol, act, CAL_HI, RULES,
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


def test_branch_month_carries_sanhui_to_date_equal_to_the_quarter(meeting_unit):
    m = G.fct_branch_month(meeting_unit["orgs"], meeting_unit["signals"], CAL_HI, RULES,
                           first_month=D(2025, 9, 1)).toPandas().set_index("month").sort_index()
    assert list(m.index) == [D(2025, 9, 1), D(2025, 10, 1)] and set(m.org_id) == {1}
    sep, oct_ = m.loc[D(2025, 9, 1)], m.loc[D(2025, 10, 1)]
    assert (sep.committee_meetings, sep.party_lectures, sep.sanhui_held_qtd) == (1, 1, 2) and sep.month_complete
    assert (oct_.committee_meetings, oct_.party_lectures, oct_.other_meetings, oct_.meetings_total) == (4, 1, 1, 6)
    assert oct_.sanhui_held_qtd == 4 and oct_.sanhui_completion_qtd == pytest.approx(0.8) and not oct_.month_complete
    assert sep.attendance_rows == 5 and sep.attended == 4


def test_sanhui_requirement_comes_from_the_rules(meeting_unit, spark):
    """Requiring 党小组会 (3 a quarter) and only 2 支委会 changes held, required and the rate."""
    rules = RULES.replace(sanhui_required={"支委会": 2, "支部党员大会": 1, "党课": 1, "党小组会": 3})
    e = lambda schema: spark.createDataFrame([], schema)  # noqa: E731
    q = G.fct_branch_quarter(meeting_unit["orgs"], meeting_unit["signals"], meeting_unit["hist"],
                             e(f"record_id long, member_id long, service_date date, hours double, {META}"),
                             e(f"activity_id long, member_id long, activity_month date, login_days long, {META}"),
                             CAL_HI, rules, first_quarter=D(2025, 10, 1)).toPandas().iloc[0]
    assert (q.sanhui_required, q.sanhui_held, q.group_meetings) == (7, 3, 0)   # 2 支委会 + 1 党课, no 党小组会
    assert q.sanhui_completion_rate == pytest.approx(3 / 7)


PROJECTS = [  # project_id, start, deadline, completed, the app's status
    (1, D(2025, 1, 1), D(2025, 5, 20), D(2025, 6, 1), "已完成"),    # completed late
    (2, D(2025, 1, 1), D(2026, 3, 1), D(2026, 1, 10), "已完成"),    # completed after the as-of date
    (3, D(2025, 1, 1), D(2025, 12, 1), None, "进行中"),              # overdue 30 days
    (4, D(2025, 1, 1), D(2026, 1, 15), None, "进行中"),              # due in 15 days: 督办预警
    (5, D(2026, 2, 1), D(2026, 9, 1), None, "进行中"),               # not started yet
    (6, D(2024, 1, 1), D(2025, 6, 1), None, "进行中"),               # 213 days overdue: 逾期注销 after 90
    (7, D(2024, 1, 1), D(2025, 1, 31), D(2025, 12, 20), "已完成"),  # expired, then completed: 已完成
    (8, D(2025, 12, 20), D(2025, 12, 31), None, "进行中"),           # started inside its warning window
]


def _projects(spark):
    p = spark.createDataFrame(_alive(PROJECTS), f"project_id long, start_date date, deadline date, "
                                                 f"completed_date date, status string, {META}")
    return p.select("*", F.lit("x").alias("project_name"), F.lit(1).cast("long").alias("village_org_id"),
                    F.lit(1).cast("long").alias("cadre_id"), F.lit("产业帮扶").alias("category"),
                    F.lit(1.0).alias("budget_yuan"))


def test_project_lifecycle_states_follow_each_other_from_the_dates(spark):
    p = _projects(spark)
    life = G.fct_project_lifecycle(p, D(2025, 12, 31), RULES).toPandas()
    per = {k: [(r.state, r.valid_from, None if pd.isna(r.valid_to) else r.valid_to)
               for r in g.sort_values("valid_from").itertuples()] for k, g in life.groupby("project_id")}
    assert per[1] == [("进行中", D(2025, 1, 1), D(2025, 5, 5)), ("督办预警", D(2025, 5, 5), D(2025, 5, 21)),
                      ("已逾期", D(2025, 5, 21), D(2025, 6, 1)), ("已完成", D(2025, 6, 1), None)]
    assert per[2] == [("进行中", D(2025, 1, 1), None)]           # the completion is not known yet
    assert per[3] == [("进行中", D(2025, 1, 1), D(2025, 11, 16)), ("督办预警", D(2025, 11, 16), D(2025, 12, 2)),
                      ("已逾期", D(2025, 12, 2), None)]
    assert per[4][-1] == ("督办预警", D(2025, 12, 31), None)
    assert 5 not in per
    assert per[6][-1] == ("逾期注销", D(2025, 8, 30), None) and per[6][-2][0] == "已逾期"
    assert [s for s, _, _ in per[7]] == ["进行中", "督办预警", "已逾期", "逾期注销", "已完成"]
    assert per[8] == [("督办预警", D(2025, 12, 20), None)]       # warning from the start, never 进行中
    # exactly one current state per project, and periods tile without gaps
    assert (life.valid_to.isna().groupby(life.project_id).sum() == 1).all()


def test_project_status_is_the_state_on_the_logical_date(spark):
    p = _projects(spark)
    life = G.fct_project_lifecycle(p, D(2025, 12, 31), RULES)
    out = G.fct_project_status(p, life, D(2025, 12, 31)).toPandas().set_index("project_id").sort_index()
    assert sorted(out.index) == [1, 2, 3, 4, 6, 7, 8]
    assert list(out.status) == ["已完成", "进行中", "已逾期", "督办预警", "逾期注销", "已完成", "督办预警"]
    assert out.state_since[6] == D(2025, 8, 30) and out.state_since[3] == D(2025, 12, 2)
    assert out.completed_late_days[1] == 12 and out.days_to_deadline[2] == 60 and pd.isna(out.completed_date[2])
    assert out.overdue_days[3] == 30 and out.days_to_deadline[3] == -30
    assert list(out.deadline_warning) == [False, False, False, True, False, False, True]
    assert list(out.is_overdue) == [False, False, True, False, False, False, False]
    assert list(out.is_closed) == [True, False, False, False, True, True, False]


def test_project_lifecycle_days_come_from_the_rules(spark):
    rules = RULES.replace(project_warning_days=30, project_expire_after_days=20)
    p = _projects(spark)
    out = G.fct_project_status(p, G.fct_project_lifecycle(p, D(2025, 12, 31), rules), D(2025, 12, 31)).toPandas()
    st = dict(zip(out.project_id, out.status))
    assert st[2] == "进行中" and st[4] == "督办预警"        # 60 days out: still 进行中 with 30 warning days
    assert st[3] == "逾期注销"                              # 30 days overdue > 20


def test_village_reminder_after_the_configured_working_days(spark):
    cal = G.calendar_frame(spark, CAL_LO, CAL_HI)
    a = spark.createDataFrame(_alive([(1, 7, 70, "第一书记", D(2025, 9, 22), None)]),
                              f"assignment_id long, cadre_id long, village_org_id long, role string, start_date date, "
                              f"end_date date, {META}")
    recs = spark.createDataFrame(_alive([(1, 1, D(2025, 9, 22), 2, True, TS(2025, 9, 22, 8)),
                                         (2, 1, D(2025, 9, 25), 1, True, TS(2025, 9, 25, 8))]),
                                 f"record_id long, assignment_id long, work_date date, photo_count long, "
                                 f"signed_in boolean, sign_in_at timestamp, {META}")
    out = G.fct_village_work_daily(a, recs, cal, D(2025, 9, 30), RULES).toPandas().set_index("work_date")
    # 9-23, 9-24 missed: the reminder is due on the 2nd missed working day; 9-28 is a 调休 Sunday
    assert list(out.days_without_record[[D(2025, 9, 23), D(2025, 9, 24), D(2025, 9, 25)]]) == [1, 2, 0]
    assert list(out.reminder_due[[D(2025, 9, 23), D(2025, 9, 24), D(2025, 9, 25)]]) == [False, True, False]
    # 9-26, the 调休 Sunday 9-28, 9-29 and 9-30: four working days without a record
    assert out.miss_streak_start[D(2025, 9, 30)] == D(2025, 9, 26) and out.days_without_record[D(2025, 9, 30)] == 4
    strict = G.fct_village_work_daily(a, recs, cal, D(2025, 9, 30), RULES.replace(village_reminder_after=3))
    due = sorted(strict.where("reminder_due").select("work_date").toPandas().work_date)
    assert due == [D(2025, 9, 29), D(2025, 9, 30)]


# ---------------------------------------------------------------------------------------------
# the 学习问答 escalation rule on the official calendar (real dates), as gold computes it
# ---------------------------------------------------------------------------------------------

def _learning(spark, start: str, end: str, answered: list[str], rules=RULES) -> dict:
    """fct_learning_daily of one 县处级 cadre registered on ``start``, as of ``end``: work_date -> row."""
    lo, hi = D.fromisoformat(start), D.fromisoformat(end)
    answers = spark.createDataFrame(_alive([(i, 1, D.fromisoformat(a)) for i, a in enumerate(answered)]),
                                    f"answer_id long, member_id long, answer_date date, {META}")
    links = spark.createDataFrame([(7, 1, "t")], "cadre_id long, member_id long, link_method string")
    users = spark.createDataFrame(_alive([(1, TS.combine(lo, dt.time(8)))]),
                                  f"member_id long, registered_at timestamp, {META}")
    hist = spark.createDataFrame([(1, D(2000, 1, 1), None, "在册", 5)], S_HIST)
    posts = spark.createDataFrame([(7, D(2000, 1, 1), None, "县处级正职", "局长", 5)], S_POST_HIST)
    out = G.fct_learning_daily(links, users, answers, hist, posts, G.calendar_frame(spark, lo, hi), hi, rules)
    return {r.work_date: r for r in out.toPandas().itertuples()}


def _answered_all(start: str, end: str, except_: tuple[str, ...] = ()) -> list[str]:
    return [d.isoformat() for d in workdays.workdays_between(D.fromisoformat(start), D.fromisoformat(end))
            if d.isoformat() not in except_]


def test_normal_week_escalates_on_the_fifth_working_day(spark):
    rows = _learning(spark, "2025-11-03", "2025-11-17", _answered_all("2025-11-03", "2025-11-07"))
    week = [D(2025, 11, d) for d in (10, 11, 12, 13, 14)]                 # Mon..Fri missed
    assert [rows[d].miss_streak for d in week] == [1, 2, 3, 4, 5]
    assert [bool(rows[d].escalation_due) for d in week] == [False] * 4 + [True]
    assert rows[week[-1]].miss_streak_start == week[0] and rows[week[-1]].escalated_on == week[-1]
    assert D(2025, 11, 15) not in rows                                  # Saturday: not a working day
    assert rows[D(2025, 11, 17)].miss_streak == 6                        # Monday continues the streak


def test_national_day_holidays_do_not_count_and_makeup_saturday_does(spark):
    # 2025 国庆+中秋: Oct 1-8 off; 调休 working days Sun Sep 28 and Sat Oct 11
    rows = _learning(spark, "2025-09-15", "2025-10-11", _answered_all("2025-09-15", "2025-09-28"))
    expected = {D(2025, 9, 29): 1, D(2025, 9, 30): 2, D(2025, 10, 9): 3, D(2025, 10, 10): 4, D(2025, 10, 11): 5}
    assert {d: rows[d].miss_streak for d in expected} == expected
    assert rows[D(2025, 10, 11)].escalated_on == D(2025, 10, 11)          # escalates on the 调休 Saturday
    assert not any(D(2025, 10, 1) <= d <= D(2025, 10, 8) for d in rows)
    # a weekday-only approximation would have escalated on Fri Oct 3, in the middle of the holiday
    assert pd.bdate_range("2025-09-29", "2025-10-11")[4].date() == D(2025, 10, 3)
    # the make-up Sunday Sep 28 counts as a miss too
    rows = _learning(spark, "2025-09-15", "2025-10-09", _answered_all("2025-09-15", "2025-09-25"))
    last = rows[D(2025, 10, 9)]
    assert last.escalation_due and last.miss_streak_start == D(2025, 9, 26) and last.miss_streak == 5


def test_spring_festival_window(spark):
    # 2025 春节: Jan 28 - Feb 4 off; 调休 Sun Jan 26 and Sat Feb 8
    rows = _learning(spark, "2025-01-02", "2025-02-06", _answered_all("2025-01-02", "2025-01-23"))
    assert rows[D(2025, 1, 27)].miss_streak == 3                          # Fri 24, Sun 26 (调休), Mon 27
    assert rows[D(2025, 2, 5)].miss_streak == 4 and not rows[D(2025, 2, 5)].escalation_due
    assert rows[D(2025, 2, 6)].escalated_on == D(2025, 2, 6) and rows[D(2025, 2, 6)].miss_streak_start == D(2025, 1, 24)


def test_answering_on_day_four_resets_the_count(spark):
    ans = _answered_all("2025-11-03", "2025-11-07") + ["2025-11-13"]      # misses Mon-Wed, answers Thu
    rows = _learning(spark, "2025-11-03", "2025-11-20", ans)
    assert rows[D(2025, 11, 12)].miss_streak == 3 and not rows[D(2025, 11, 13)].reminder_due
    assert rows[D(2025, 11, 14)].miss_streak_start == D(2025, 11, 14)
    assert not rows[D(2025, 11, 19)].escalation_due                       # a new streak: Fri 14, Mon 17 .. Wed 19
    assert rows[D(2025, 11, 20)].escalation_due and rows[D(2025, 11, 20)].miss_streak_start == D(2025, 11, 14)


def test_a_date_outside_the_official_calendar_fails_loudly(spark):
    with pytest.raises(workdays.CalendarUnknownError):
        G.calendar_frame(spark, D(2027, 1, 4), D(2027, 1, 8))
