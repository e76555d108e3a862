"""Which 自流程化 alerts fire, read off gold's verdict columns (hand-built frames, no IO, no Spark)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from redcloud.alerts import triggers
from redcloud.alerts.triggers import Recipient

D = dt.date.fromisoformat
OFFICE = Recipient("dangjianban@localhost", "市委党建办", "party_office")
DOMAIN = "redcloud.invalid"


def _learning_rows(cadre_id: int, missed: list[str], escalate_after: int = 5, answered_today: bool = False):
    """fct_learning_daily rows of one cadre's current streak, as gold writes them."""
    days = [D(x) for x in missed]
    rows = []
    for i, d in enumerate(days, start=1):
        rows.append(dict(cadre_id=cadre_id, member_id=1000 + cadre_id, work_date=d, rank="县处级正职", miss_streak=i,
                         miss_streak_start=days[0], reminder_due=not answered_today,
                         escalation_due=i >= escalate_after,
                         escalated_on=days[escalate_after - 1] if i >= escalate_after else None))
    return pd.DataFrame(rows)


CADRES = pd.DataFrame({"cadre_id": [1, 2], "cadre_name": ["张三", "李四"], "unit_org_id": [10, 10],
                       "unit_name": ["某局机关党支部"] * 2, "position": ["局长", "副局长"],
                       "rank": ["县处级正职", "县处级副职"]})


def test_learning_reminder_and_escalation_come_from_the_gold_columns():
    week = ["2025-11-10", "2025-11-11", "2025-11-12", "2025-11-13", "2025-11-14"]
    rows = pd.concat([_learning_rows(1, week), _learning_rows(2, week[:3])])
    head = Recipient("member-77@redcloud.invalid", "某局机关党支部书记赵六", "org_head")
    got = triggers.learning_alerts(rows, D("2025-11-14"), 5, CADRES, {1: head, 2: head}, OFFICE, DOMAIN)
    # cadre 2's rows end on Wednesday: nothing is due for it on Friday
    assert sorted((a.rule, a.subject_id) for a in got) == [("learning_escalation", "1"), ("learning_reminder", "1")]
    esc = next(a for a in got if a.rule == "learning_escalation")
    assert [r.address for r in esc.recipients] == ["member-77@redcloud.invalid", "dangjianban@localhost"]
    assert esc.evidence["missed_dates"] == [D(x) for x in week] and esc.evidence["escalated_on"] == D(week[-1])
    assert esc.since == D(week[0])
    rem = next(a for a in got if a.rule == "learning_reminder")
    assert [r.address for r in rem.recipients] == ["cadre-1@redcloud.invalid"] and rem.message_key == "2025-11-14"
    # one alert per streak: the id depends on the streak's first day, not on the day
    assert rem.alert_id == triggers.alert_id("learning_reminder", "cadre", "1", D(week[0]))
    # gold says nothing is due (an answer today): no alert, whatever the streak was
    quiet = _learning_rows(1, week, answered_today=True)
    assert triggers.learning_alerts(quiet, D("2025-11-14"), 5, CADRES, {}, OFFICE, DOMAIN) == []


def test_org_head_is_most_frequent_host_and_never_the_person_themself():
    orgs = pd.DataFrame({"org_id": [1, 2, 3], "org_name": ["市委", "某局党委", "某局机关党支部"],
                         "parent_org_id": [None, 1, 2], "org_level": ["市委", "党委/党总支", "党支部"]})
    meetings = pd.DataFrame({"org_id": [3, 3, 3, 2], "meeting_date": [D("2025-11-01")] * 4,
                             "host_member_id": [50, 50, 51, 60]})
    members = pd.DataFrame({"member_id": [50, 51, 60], "member_name": ["甲", "乙", "丙"]})
    heads = triggers.org_heads(meetings, members, orgs, D("2025-12-31"))
    assert triggers.head_recipient(3, None, heads, orgs, DOMAIN).address == "member-50@redcloud.invalid"
    # the cadre is the branch secretary: the escalation goes up to the parent organisation's head
    assert triggers.head_recipient(3, 50, heads, orgs, DOMAIN).address == "member-60@redcloud.invalid"


def _projects(states: list[tuple]) -> pd.DataFrame:
    """(project_id, state, state_since, deadline) -> the rows the stage joins from the lifecycle."""
    return pd.DataFrame([dict(project_id=p, state=s, state_since=D(since), deadline=D(dl), project_name=f"项目{p}",
                              village_org_id=9, cadre_id=7, category="产业帮扶", start_date=D("2024-01-01"))
                         for p, s, since, dl in states])


def test_project_alerts_follow_the_lifecycle_state_of_the_day():
    day = D("2025-12-31")
    pr = _projects([(1, "督办预警", "2025-12-26", "2026-01-10"), (2, "已逾期", "2025-12-12", "2025-12-11"),
                    (3, "已完成", "2025-12-29", "2025-12-31"), (4, "已完成", "2024-06-01", "2024-06-30"),
                    (5, "逾期注销", "2025-12-31", "2025-10-02"), (6, "进行中", "2024-01-01", "2026-06-30")])
    vh = {9: Recipient("member-90@redcloud.invalid", "某村党支部书记", "org_head")}
    got = triggers.project_alerts(pr, day, 7, {7: "张三"}, vh, OFFICE, DOMAIN)
    by = {(a.rule, a.subject_id): a for a in got}
    assert set(by) == {("project_warning", "1"), ("project_overdue", "2"), ("project_closure", "3"),
                       ("project_closure", "5"), ("project_report", "all")}
    assert by[("project_warning", "1")].since == D("2025-12-26")
    assert by[("project_warning", "1")].evidence["days_to_deadline"] == 10
    assert by[("project_overdue", "2")].since == D("2025-12-12") and by[("project_overdue", "2")].evidence["overdue_days"] == 20
    assert {r.address for r in by[("project_overdue", "2")].recipients} == {
        "cadre-7@redcloud.invalid", "member-90@redcloud.invalid", "dangjianban@localhost"}
    assert by[("project_closure", "5")].evidence["reason"] == "逾期未完成"
    assert by[("project_closure", "3")].evidence["reason"] == "已完成"
    rep = by[("project_report", "all")].evidence
    assert rep["counts"] == {"进行中": 1, "督办预警": 1, "已逾期": 1, "已完成": 2, "逾期注销": 1}
    assert rep["new_today"] == {"project_warning": 0, "project_overdue": 0, "project_closure": 1}
    assert rep["overdue_project_ids"] == [2]


def _village_days(missing: set, days: list) -> pd.DataFrame:
    """fct_village_work_daily rows of one assignment with gold's streak columns (reminder after 2)."""
    rows, streak, start = [], 0, None
    for i, d in enumerate(days):
        has = d not in missing
        streak = 0 if has else streak + 1
        start = None if has else (start or d)
        rows.append(dict(assignment_id=1, cadre_id=7, village_org_id=9, role="第一书记", work_date=d,
                         is_makeup_workday=d.weekday() >= 5, has_record=has, record_count=int(has),
                         photo_count=2 * int(has), signed_in=has, record_ids=[i + 100] if has else [],
                         days_without_record=streak, miss_streak_start=start, reminder_due=streak >= 2))
    return pd.DataFrame(rows)


def test_village_reminder_and_timeline():
    from redcloud import workdays

    days = workdays.workdays_between(D("2025-09-25"), D("2025-10-10"))  # crosses 国庆 and the Sep 28 调休
    daily = _village_days({D("2025-09-30"), D("2025-10-09")}, days)
    names, villages = {7: "张三"}, {9: "某村"}
    # Sep 30 and Oct 9 are consecutive working days (the holiday between does not break the streak)
    got = triggers.village_alerts(daily[daily.work_date <= D("2025-10-09")], D("2025-10-09"), names, villages, DOMAIN)
    assert len(got) == 1 and got[0].since == D("2025-09-30") and got[0].evidence["streak"] == 2
    assert got[0].evidence["missed_dates"] == [D("2025-09-30"), D("2025-10-09")]
    assert triggers.village_alerts(daily, D("2025-10-10"), names, villages, DOMAIN) == []
    assign = pd.DataFrame({"assignment_id": [1], "cadre_id": [7], "village_org_id": [9], "role": ["第一书记"],
                           "start_date": [D("2025-09-25")], "end_date": [D("2025-10-10")]})
    tl = triggers.village_timeline(daily, assign, D("2025-10-10"), names, villages)
    assert list(tl["event_type"].value_counts().sort_index().items()) == [
        ("工作记实", len(days) - 2), ("提醒", 1), ("未记实", 2), ("派驻开始", 1), ("派驻结束", 1)]
    assert "调休" in tl[tl["event_date"] == D("2025-09-28")]["detail"].iloc[0]
    assert tl[tl["event_type"] == "提醒"]["event_date"].tolist() == [D("2025-10-09")]


def test_duty_record_reminder_one_per_cadre_and_month_with_its_due_day():
    from redcloud.alerts import outbox

    rows = pd.DataFrame({"cadre_id": [3, 3], "month": [D("2025-08-01"), D("2025-09-01")], "unit_org_id": [10, 10],
                         "due_date": [D("2025-09-05"), D("2025-10-14")], "workdays_overdue": [30, 4],
                         "reminder_due": [True, True]})
    got = triggers.duty_alerts(rows, {3: "王五"}, {10: "某局机关党支部"}, 5, DOMAIN)
    assert [(a.rule, a.subject_type, a.subject_id, a.since) for a in got] == [
        ("duty_record_reminder", "cadre", "3", D("2025-09-05")), ("duty_record_reminder", "cadre", "3", D("2025-10-14"))]
    assert len({a.alert_id for a in got}) == 2 and got[1].recipients[0].address == f"cadre-3@{DOMAIN}"
    subj, body = outbox.render(got[1], "王五", "self", D("2025-10-20"))
    assert "2025年9月岗位责任工作记实尚未填报" in subj
    assert "2025-10-14（次月第5个工作日）" in body and "已超过4个工作日" in body


def test_leadership_vacancy_warning_once_per_vacancy_to_the_party_office():
    from redcloud.alerts import outbox

    rows = pd.DataFrame({"unit_org_id": [34], "chief_vacant_since": [D("2025-09-20")], "vacancy_workdays": [68],
                         "leaders": [3], "vacancy_overdue": [True]})
    got = triggers.leadership_alerts(rows, {34: "某局"}, OFFICE, 60)
    assert [(a.rule, a.level, a.subject_type, a.subject_id, a.since) for a in got] == [
        ("leadership_vacancy", "warning", "org", "34", D("2025-09-20"))]
    assert got[0].recipients == [OFFICE] and got[0].evidence["vacancy_workdays"] == 68
    subj, body = outbox.render(got[0], OFFICE.name, OFFICE.role, D("2025-12-31"))
    assert subj.endswith("某局领导班子正职已空缺68个工作日") and "超过60个工作日" in body and "2025-09-20" in body


def test_disclosure_reminder_to_the_branch_head_and_escalation_to_the_party_office():
    from redcloud.alerts import outbox

    head = Recipient("member-7@redcloud.invalid", "某支部书记王五", "org_head")
    rows = pd.DataFrame({"disclosure_id": [11, 12], "org_id": [9, 9], "item_type": ["党费收缴情况", "组织生活开展情况"],
                         "title": ["某支部2025年第3季度党费收缴情况公开", "某支部2025年第3季度组织生活开展情况公开"],
                         "event_date": [D("2025-10-01")] * 2, "due_date": [D("2025-10-21")] * 2,
                         "workdays_overdue": [11, 3], "escalation_due": [True, False]})
    got = triggers.disclosure_alerts(rows, {9: head}, OFFICE, {9: "某支部"}, 10)
    assert [(a.rule, a.subject_id, a.since) for a in got] == [
        ("disclosure_reminder", "11", D("2025-10-21")), ("disclosure_escalation", "11", D("2025-10-21")),
        ("disclosure_reminder", "12", D("2025-10-21"))]
    assert got[0].recipients == [head] and got[1].recipients == [head, OFFICE]
    subj, body = outbox.render(got[1], OFFICE.name, OFFICE.role, D("2025-11-05"))
    assert "逾期11个工作日未公开" in subj and "2025-10-21" in body


def test_project_without_measures_warns_the_responsible_cadre_once():
    from redcloud.alerts import outbox

    rows = pd.DataFrame({"project_id": [5], "project_name": ["产业帮扶项目0005"], "cadre_id": [3], "village_org_id": [9],
                         "start_date": [D("2025-09-26")], "measure_due_date": [D("2025-10-20")],
                         "workdays_without_measure": [9]})
    got = triggers.measure_alerts(rows, {3: "王五"}, DOMAIN, 15)
    assert [(a.rule, a.level, a.subject_type, a.subject_id, a.since) for a in got] == [
        ("project_measure_missing", "warning", "project", "5", D("2025-10-20"))]
    subj, body = outbox.render(got[0], "王五", "self", D("2025-10-31"))
    assert "尚未录入帮扶措施" in subj and "超过15个工作日" in body


def test_question_reminder_goes_to_the_branch_head_once_per_question():
    from redcloud.alerts import outbox

    head = Recipient("member-7@redcloud.invalid", "某支部书记王五", "org_head")
    rows = pd.DataFrame({"question_id": [3], "org_id": [9], "category": ["政策咨询"], "asked_on": [D("2025-09-30")],
                         "due_date": [D("2025-10-11")], "workdays_overdue": [3]})
    got = triggers.question_alerts(rows, {9: head}, {9: "某支部"}, 3)
    assert [(a.rule, a.subject_type, a.subject_id, a.since, a.recipients) for a in got] == [
        ("question_reminder", "question", "3", D("2025-10-11"), [head])]
    subj, body = outbox.render(got[0], head.name, head.role, D("2025-10-15"))
    assert "超时未解答" in subj and "已超过3个工作日" in body


def test_unmatched_volunteer_need_reminds_the_publishing_branch_head():
    from redcloud.alerts import outbox

    head = Recipient("member-7@redcloud.invalid", "某村党支部书记王五", "org_head")
    rows = pd.DataFrame({"need_id": [3], "org_id": [9], "title": ["某村环境整治需求"], "published_on": [D("2025-09-30")],
                         "match_due_date": [D("2025-10-14")], "workdays_overdue": [4]})
    got = triggers.volunteer_alerts(rows, {9: head}, 5)
    assert [(a.rule, a.subject_type, a.subject_id, a.since) for a in got] == [
        ("volunteer_match_reminder", "volunteer_need", "3", D("2025-10-14"))]
    subj, body = outbox.render(got[0], head.name, head.role, D("2025-10-20"))
    assert "超时未对接" in subj and "5个工作日内" in body and "已超过4个工作日" in body
