"""自流程化 (redcloud.alerts): the escalation rule on the real official calendar, the 帮扶 and 驻村
rules, the outbox against a real local SMTP server, and the stage on the main job's lake."""

from __future__ import annotations

import contextlib
import datetime as dt
import email
import email.policy
import json
from pathlib import Path

import pandas as pd
import pytest

from redcloud import workdays
from redcloud.alerts import outbox, rules
from redcloud.alerts.rules import Recipient
from redcloud.config import get_settings

D = dt.date.fromisoformat
OFFICE = Recipient("dangjianban@localhost", "市委党建办", "party_office")
DOMAIN = "redcloud.invalid"


def state(start: str, day: str, answered: list[str]) -> dict:
    rows = rules.learning_days(D(start), D(day), {D(x) for x in answered})
    return rules.learning_state(rows, D(day), 5)


def answered_all(start: str, end: str, except_: list[str] = ()) -> list[str]:
    return [d.isoformat() for d in workdays.workdays_between(D(start), D(end)) if d.isoformat() not in except_]


# ---------------------------------------------------------------------------------------------
# 学习问答 escalation on the official calendar (real dates)
# ---------------------------------------------------------------------------------------------

def test_normal_week_escalates_on_the_fifth_working_day():
    ans = answered_all("2025-11-03", "2025-11-07")          # answered the week before
    week = ["2025-11-10", "2025-11-11", "2025-11-12", "2025-11-13", "2025-11-14"]   # Mon..Fri missed
    for i, day in enumerate(week, start=1):
        st = state("2025-11-03", day, ans)
        assert st["streak"] == i and st["reminder"]
        assert st["escalation"] is (i == 5), day
    st = state("2025-11-03", "2025-11-14", ans)
    assert st["since"] == D("2025-11-10") and st["escalated_on"] == D("2025-11-14")
    assert [d.isoformat() for d in st["missed"]] == week
    # the weekend is not a working day: no row, no state change
    rows = rules.learning_days(D("2025-11-03"), D("2025-11-16"), {D(x) for x in ans})
    assert rules.trailing_misses(rows, D("2025-11-15")) is None
    assert state("2025-11-03", "2025-11-17", ans)["streak"] == 6      # Monday continues the streak


def test_national_day_holidays_do_not_count_and_makeup_saturday_does():
    # 2025 国庆+中秋: Oct 1-8 off; 调休 working days Sun Sep 28 and Sat Oct 11.
    assert workdays.is_workday(D("2025-10-11")) and D("2025-10-11").weekday() == 5
    assert not any(workdays.is_workday(D(f"2025-10-0{i}")) for i in range(1, 9))
    ans = answered_all("2025-09-15", "2025-09-28")             # answered up to the make-up Sunday
    expected = {"2025-09-29": 1, "2025-09-30": 2, "2025-10-09": 3, "2025-10-10": 4, "2025-10-11": 5}
    for day, n in expected.items():
        st = state("2025-09-15", day, ans)
        assert st["streak"] == n and st["escalation"] is (n == 5), day
    st = state("2025-09-15", "2025-10-11", ans)
    assert st["escalated_on"] == D("2025-10-11")              # escalates on the 调休 Saturday
    assert all(not D("2025-10-01") <= d <= D("2025-10-08") for d in st["missed"])
    # a weekday-only approximation would have escalated on Fri Oct 3, in the middle of the holiday
    naive = pd.bdate_range("2025-09-29", "2025-10-11")
    assert naive[4].date() == D("2025-10-03")
    # the make-up Sunday Sep 28 counts as a miss too
    ans2 = answered_all("2025-09-15", "2025-09-25")
    st = state("2025-09-15", "2025-10-09", ans2)   # missed Fri 26, Sun 28, Mon 29, Tue 30, Thu Oct 9
    assert st["escalation"] and st["since"] == D("2025-09-26")
    assert [d.isoformat() for d in st["missed"]] == ["2025-09-26", "2025-09-28", "2025-09-29", "2025-09-30",
                                                     "2025-10-09"]


def test_spring_festival_window():
    # 2025 春节: Jan 28 - Feb 4 off; 调休 Sun Jan 26 and Sat Feb 8.
    ans = answered_all("2025-01-02", "2025-01-23")
    assert state("2025-01-02", "2025-01-27", ans)["streak"] == 3          # Fri 24, Sun 26 (调休), Mon 27
    st = state("2025-01-02", "2025-02-05", ans)
    assert st["streak"] == 4 and not st["escalation"]                   # the holiday week did not count
    st = state("2025-01-02", "2025-02-06", ans)
    assert st["escalation"] and st["escalated_on"] == D("2025-02-06") and st["since"] == D("2025-01-24")


def test_answering_on_day_four_resets_the_count():
    ans = answered_all("2025-11-03", "2025-11-07") + ["2025-11-13"]      # misses Mon-Wed, answers Thu
    assert state("2025-11-03", "2025-11-12", ans)["streak"] == 3
    assert not state("2025-11-03", "2025-11-13", ans)["reminder"]        # answered: streak 0
    st = state("2025-11-03", "2025-11-14", ans)
    assert st["streak"] == 1 and not st["escalation"] and st["since"] == D("2025-11-14")
    # a new streak: Fri 14, Mon 17 .. Thu 20 -> escalation on Thu 20, not earlier
    assert not state("2025-11-03", "2025-11-19", ans)["escalation"]
    st = state("2025-11-03", "2025-11-20", ans)
    assert st["escalation"] and st["since"] == D("2025-11-14")
    old = rules.alert_id("learning_escalation", "cadre", "1", D("2025-11-10"))
    assert rules.alert_id("learning_escalation", "cadre", "1", st["since"]) != old


def test_date_outside_the_official_calendar_fails_loudly():
    with pytest.raises(workdays.CalendarUnknownError):
        rules.learning_days(D("2027-01-04"), D("2027-01-08"), set())
    with pytest.raises(workdays.CalendarUnknownError):
        rules.trailing_misses(pd.DataFrame({"work_date": [D("2003-06-02")], "answered": [False]}), D("2003-06-02"))
    from redcloud import alerts
    with pytest.raises(workdays.CalendarUnknownError):
        alerts.run(None, D("2027-01-04"), "test")


def _daily(cadre_id: int, rank: str, start: str, day: str, answered: list[str]) -> pd.DataFrame:
    rows = rules.learning_days(D(start), D(day), {D(x) for x in answered})
    return rows.assign(cadre_id=cadre_id, member_id=1000 + cadre_id, rank=rank)


def test_learning_alerts_levels_switch_and_recipients():
    ans = answered_all("2025-11-03", "2025-11-07")
    daily = pd.concat([_daily(1, "县处级正职", "2025-11-03", "2025-11-14", ans),
                       _daily(2, "乡科级正职", "2025-11-03", "2025-11-14", ans),
                       _daily(3, "县处级副职", "2025-11-03", "2025-11-14", ans + ["2025-11-14"])])
    cadres = pd.DataFrame({"cadre_id": [1, 2, 3], "cadre_name": ["张三", "李四", "王五"], "unit_org_id": [10, 10, 10],
                           "unit_name": ["某局机关党支部"] * 3, "position": ["局长", "科长", "副局长"],
                           "rank": ["县处级正职", "乡科级正职", "县处级副职"]})
    head = Recipient("member-77@redcloud.invalid", "某局机关党支部书记赵六", "org_head")
    heads = {1: head, 2: head, 3: head}
    got = rules.learning_alerts(daily, D("2025-11-14"), "县处级", 5, cadres, heads, OFFICE, DOMAIN)
    assert sorted((a.rule, a.subject_id) for a in got) == [("learning_escalation", "1"), ("learning_reminder", "1")]
    esc = next(a for a in got if a.rule == "learning_escalation")
    assert [r.address for r in esc.recipients] == ["member-77@redcloud.invalid", "dangjianban@localhost"]
    assert esc.evidence["missed_dates"] == [D(x) for x in ["2025-11-10", "2025-11-11", "2025-11-12", "2025-11-13",
                                                           "2025-11-14"]]
    rem = next(a for a in got if a.rule == "learning_reminder")
    assert [r.address for r in rem.recipients] == ["cadre-1@redcloud.invalid"]
    wider = rules.learning_alerts(daily, D("2025-11-14"), "科级", 5, cadres, heads, OFFICE, DOMAIN)
    assert {a.subject_id for a in wider} == {"1", "2"}                   # 科级 switch extends to cadre 2


def test_org_head_is_most_frequent_host_and_never_the_person_themself():
    orgs = pd.DataFrame({"org_id": [1, 2, 3], "org_name": ["市委", "某局党委", "某局机关党支部"],
                         "parent_org_id": [None, 1, 2], "org_level": ["市委", "党委/党总支", "党支部"]})
    meetings = pd.DataFrame({"org_id": [3, 3, 3, 2], "meeting_date": [D("2025-11-01")] * 4,
                             "host_member_id": [50, 50, 51, 60]})
    members = pd.DataFrame({"member_id": [50, 51, 60], "member_name": ["甲", "乙", "丙"]})
    heads = rules.org_heads(meetings, members, orgs, D("2025-12-31"))
    assert rules.head_recipient(3, None, heads, orgs, DOMAIN).address == "member-50@redcloud.invalid"
    # the cadre is the branch secretary: the escalation goes up to the parent organisation's head
    assert rules.head_recipient(3, 50, heads, orgs, DOMAIN).address == "member-60@redcloud.invalid"


# ---------------------------------------------------------------------------------------------
# 精准帮扶 and 驻村
# ---------------------------------------------------------------------------------------------

def test_project_rules():
    day = D("2025-12-31")
    P = [  # id, deadline, completed
        (1, "2026-01-10", None),          # due in 10 days -> 督办预警 (15-day window)
        (2, "2025-12-11", None),          # 20 days overdue -> 逾期督办
        (3, "2025-12-31", "2025-12-29"),  # completed 2 days ago -> 自动注销 (已完成)
        (4, "2024-06-30", "2024-06-01"),  # completed long ago -> nothing
        (5, "2025-10-02", None),          # 90 days past deadline on 12-31 -> expired -> 自动注销 (逾期未完成)
        (6, "2026-06-30", None),          # far away -> nothing
    ]
    projects = pd.DataFrame({
        "project_id": [p[0] for p in P], "project_name": [f"项目{p[0]}" for p in P], "village_org_id": 9,
        "cadre_id": 7, "category": "产业帮扶", "start_date": D("2024-01-01"), "deadline": [D(p[1]) for p in P],
        "completed_date": [D(p[2]) if p[2] else None for p in P]})
    vh = {9: Recipient("member-90@redcloud.invalid", "某村党支部书记", "org_head")}
    got = rules.project_alerts(projects, day, 15, 90, 7, {7: "张三"}, vh, OFFICE, DOMAIN)
    by = {(a.rule, a.subject_id): a for a in got}
    assert set(by) == {("project_warning", "1"), ("project_overdue", "2"), ("project_closure", "3"),
                       ("project_closure", "5"), ("project_report", "all")}
    assert by[("project_warning", "1")].since == D("2025-12-26")
    assert by[("project_overdue", "2")].since == D("2025-12-12")
    assert by[("project_overdue", "2")].evidence["overdue_days"] == 20
    assert {r.address for r in by[("project_overdue", "2")].recipients} == {
        "cadre-7@redcloud.invalid", "member-90@redcloud.invalid", "dangjianban@localhost"}
    assert by[("project_closure", "5")].evidence["reason"] == "逾期未完成"
    assert by[("project_closure", "5")].since == D("2025-12-31")
    rep = by[("project_report", "all")].evidence
    assert rep["counts"] == {"进行中": 1, "督办预警": 1, "已逾期": 1, "已完成": 2, "逾期注销": 1}
    assert rep["new_today"]["project_closure"] == 1 and rep["overdue_project_ids"] == [2]
    # a day earlier project 5 was still overdue, not closed
    earlier = rules.project_alerts(projects, D("2025-12-30"), 15, 90, 7, {7: "张三"}, vh, OFFICE, DOMAIN)
    assert ("project_overdue", "5") in {(a.rule, a.subject_id) for a in earlier}


def test_village_reminder_and_timeline():
    days = workdays.workdays_between(D("2025-09-25"), D("2025-10-10"))  # crosses 国庆 and the Sep 28 调休
    missing = {D("2025-09-30"), D("2025-10-09")}
    daily = pd.DataFrame({"assignment_id": 1, "cadre_id": 7, "village_org_id": 9, "role": "第一书记", "work_date": days,
                          "is_makeup_workday": [d.weekday() >= 5 for d in days],
                          "has_record": [d not in missing for d in days]})
    daily["record_count"] = daily["has_record"].astype(int)
    daily["photo_count"] = 2 * daily["record_count"]
    daily["signed_in"] = daily["has_record"]
    daily["record_ids"] = [[i + 100] if h else [] for i, h in enumerate(daily["has_record"])]
    streak, out = [], 0
    for h in daily["has_record"]:
        out = 0 if h else out + 1
        streak.append(out)
    daily["days_without_record"] = streak
    names, villages = {7: "张三"}, {9: "某村"}
    # Sep 30 and Oct 9 are consecutive working days (the holiday between does not break the streak)
    got = rules.village_alerts(daily, D("2025-10-09"), 2, names, villages, DOMAIN)
    assert len(got) == 1 and got[0].since == D("2025-09-30") and got[0].evidence["streak"] == 2
    assert rules.village_alerts(daily, D("2025-10-10"), 2, names, villages, DOMAIN) == []
    assign = pd.DataFrame({"assignment_id": [1], "cadre_id": [7], "village_org_id": [9], "role": ["第一书记"],
                           "start_date": [D("2025-09-25")], "end_date": [D("2025-10-10")]})
    tl = rules.village_timeline(daily, assign, D("2025-10-10"), 2, names, villages)
    assert list(tl["event_type"].value_counts().sort_index().items()) == [
        ("工作记实", len(days) - 2), ("提醒", 1), ("未记实", 2), ("派驻开始", 1), ("派驻结束", 1)]
    mk = tl[tl["event_date"] == D("2025-09-28")]
    assert "调休" in mk["detail"].iloc[0]
    assert tl[tl["event_type"] == "提醒"]["event_date"].tolist() == [D("2025-10-09")]


# ---------------------------------------------------------------------------------------------
# outbox + SMTP against a real local server
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def smtp_sink():
    """The project's SMTP sink service on the test port (settings.smtp), for this module."""
    from redcloud.services import procs, smtp

    started = not procs.read_pid("smtp")
    smtp.start()
    yield smtp.mail_dir()
    if started:
        smtp.stop()


@contextlib.contextmanager
def lake_root(path: Path):
    live = get_settings()
    old = live.paths.lake_root
    live.paths.lake_root = str(path)
    try:
        yield
    finally:
        live.paths.lake_root = old


def _mails(folder: Path) -> dict[str, email.message.EmailMessage]:
    out = {}
    for f in folder.glob("*.eml*"):
        m = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        out.setdefault(m["Message-ID"].strip("<>").split("@")[0], []).append(m)
    return out


def test_outbox_delivers_once_over_real_smtp(smtp_sink, tmp_path):
    from redcloud.alerts import io

    s = get_settings()
    day = D("2025-11-14")
    ans = answered_all("2025-11-03", "2025-11-07")
    daily = _daily(1, "县处级正职", "2025-11-03", "2025-11-14", ans)
    cadres = pd.DataFrame({"cadre_id": [1], "cadre_name": ["张三"], "unit_org_id": [10],
                           "unit_name": ["某局机关党支部"], "position": ["局长"], "rank": ["县处级正职"]})
    head = Recipient(f"member-77@{DOMAIN}", "某局机关党支部书记赵六", "org_head")
    alerts = rules.learning_alerts(daily, day, "县处级", 5, cadres, {1: head}, OFFICE, DOMAIN)
    msgs = outbox.messages(alerts, day, "test-run")
    assert len(msgs) == 3       # reminder to the person; escalation to the head and to 市委党建办
    with lake_root(tmp_path / "lake"):
        assert outbox.enqueue(msgs) == 3
        # server unreachable: recorded as a failed attempt, nothing marked sent
        r = outbox.deliver(s.smtp.host, 1, s.smtp.sender)
        assert r["failed"] == 3 and r["sent"] == 0 and r["error"]
        ob = io.read("ops", outbox.OUTBOX)
        assert ob["sent_at"].isna().all() and (ob["attempts"] == 1).all() and ob["last_error"].notna().all()
        # the real server accepts them
        r = outbox.deliver(s.smtp.host, s.smtp.port, s.smtp.sender)
        assert r == {"pending": 3, "sent": 3, "failed": 0, "error": None}
        ob = io.read("ops", outbox.OUTBOX)
        assert ob["sent_at"].notna().all() and (ob["attempts"] == 2).all()
        got = _mails(smtp_sink)
        for m in msgs.itertuples():
            assert len(got.get(m.message_id, [])) == 1, m.message_id
            mail = got[m.message_id][0]
            assert mail["Subject"] == m.subject and "学习问答" in mail["Subject"]
            assert mail["X-Envelope-To"] == m.recipient
            assert mail.get_content().strip().startswith(m.body.split("：")[0])
        esc = [got[m.message_id][0] for m in msgs.itertuples() if m.rule == "learning_escalation"]
        assert {str(x["To"].addresses[0].addr_spec) for x in esc} == {head.address, OFFICE.address}
        assert all("连续5个工作日未完成学习问答" in x["Subject"] for x in esc)
        # a rerun of the same day: nothing new enqueued, nothing sent
        again = outbox.messages(rules.learning_alerts(daily, day, "县处级", 5, cadres, {1: head}, OFFICE, DOMAIN),
                                day, "test-run-2")
        assert set(again["message_id"]) == set(msgs["message_id"])
        assert outbox.enqueue(again) == 0
        assert outbox.deliver(s.smtp.host, s.smtp.port, s.smtp.sender)["pending"] == 0
        assert all(len(_mails(smtp_sink).get(m, [])) == 1 for m in msgs["message_id"])
        # the next working day: a new daily reminder, the escalation is not sent again
        nxt = outbox.messages(rules.learning_alerts(_daily(1, "县处级正职", "2025-11-03", "2025-11-17", ans),
                                                    D("2025-11-17"), "县处级", 5, cadres, {1: head}, OFFICE, DOMAIN),
                              D("2025-11-17"), "test-run-3")
        assert outbox.enqueue(nxt) == 1
        assert outbox.deliver(s.smtp.host, s.smtp.port, s.smtp.sender)["sent"] == 1


# ---------------------------------------------------------------------------------------------
# the stage on the main job's lake
# ---------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_stage_on_main_lake(main_lake, smtp_sink, spark):
    from redcloud import alerts
    from redcloud.alerts import io

    day = main_lake.day
    assert workdays.is_workday(day)
    with main_lake.use():
        before = set(_mails(smtp_sink))
        res = alerts.run(spark, day, main_lake.run_id)
        assert res["working_day"] and {t["table"] for t in res["tables"]} == {
            "gold/alerts", "gold/village_timeline", "ops/alert_outbox"}
        assert res["delivery"]["failed"] == 0 and res["delivery"]["sent"] == res["messages_new"] > 0

        # the fact's streak is the rule: recompute it from the answered flags of every cadre
        ld = io.read("gold", "fct_learning_daily", ["cadre_id", "work_date", "answered", "miss_streak", "rank"])
        dates = sorted(ld["work_date"].unique())
        assert dates == list(workdays.workdays_between(dates[0], day))   # official working days only
        today = ld[ld["work_date"] == day]
        for cid, g in ld[ld["cadre_id"].isin(today["cadre_id"])].groupby("cadre_id"):
            mine = len(rules.trailing_misses(g[["work_date", "answered"]], day))
            assert mine == int(g.loc[g["work_date"] == day, "miss_streak"].iloc[0]), cid

        a = io.read("gold", "alerts")
        cur = a[(a["status"] == "open") & (a["last_seen"] == day)]
        oblig = today[today["rank"].map(lambda r: rules.is_obligated(r, get_settings().alerts.learning_min_level))]
        n_rem = int((~oblig["answered"]).sum())
        n_esc = int((oblig["miss_streak"] >= 5).sum())
        assert (cur["rule"] == "learning_reminder").sum() == n_rem
        assert (cur["rule"] == "learning_escalation").sum() == n_esc
        assert len(cur) > 0   # the small test city may have no 县处级 miss on the day (seen: 0 reminders)
        for r in a.itertuples():
            ev = json.loads(r.evidence)
            assert ev and ev["source"].startswith("gold/") and len(r.recipients) > 0
            if r.rule.startswith("learning"):
                assert ev["missed_dates"][0] == r.since.isoformat() and len(ev["missed_dates"]) == ev["streak"]
        esc = cur[cur["rule"] == "learning_escalation"]
        assert all(get_settings().smtp.party_office in list(x) for x in esc["recipients"])
        assert (a["alert_id"].str.len() > 0).all() and a["alert_id"].is_unique

        tl = io.read("gold", "village_timeline")
        vd = io.read("gold", "fct_village_work_daily", ["assignment_id"])
        assert tl["event_type"].isin(["工作记实", "未记实"]).sum() == len(vd)

        ob = io.read("ops", outbox.OUTBOX)
        assert ob["sent_at"].notna().all() and ob["message_id"].is_unique
        sent = _mails(smtp_sink)
        assert set(ob["message_id"]) <= set(sent) and len(set(sent) - before) == len(ob)

        # rerun of the same logical date: nothing new recorded or sent
        v_alerts = io.version("gold", "alerts")
        res2 = alerts.run(spark, day, main_lake.run_id + "-again")
        assert res2["messages_new"] == 0 and res2["delivery"]["pending"] == 0 and res2["alerts_written"] == 0
        assert io.version("gold", "alerts") == v_alerts
        assert set(_mails(smtp_sink)) == set(sent)
        assert all(len(v) == 1 for k, v in _mails(smtp_sink).items() if k in set(ob["message_id"]))

        # a rest day records nothing and sends nothing
        v_outbox = io.version("ops", outbox.OUTBOX)
        rest = alerts.run(spark, D("2026-01-01"), "test-rest")
        assert rest["working_day"] is False and rest["tables"] == []
        assert io.version("ops", outbox.OUTBOX) == v_outbox


@pytest.mark.slow
def test_fact_builder_streak_on_official_calendar(spark):
    """spark_jobs.gold.facts.miss_streaks (what fct_learning_daily uses) agrees with the rule on the
    国庆 window: holidays are not rows, the 调休 Saturday is, escalation on the fifth miss."""
    from spark_jobs.gold import facts as G

    ans = answered_all("2025-09-15", "2025-09-28")
    rows = rules.learning_days(D("2025-09-15"), D("2025-10-13"), {D(x) for x in ans})
    df = spark.createDataFrame([(1, r.work_date, bool(r.answered)) for r in rows.itertuples()],
                               "cadre_id int, work_date date, answered boolean")
    got = {r["work_date"]: r["miss_streak"] for r in G.miss_streaks(df, ["cadre_id"], "work_date", "answered").collect()}
    for day in rows["work_date"]:
        assert got[day] == len(rules.trailing_misses(rows, day)), day
    assert got[D("2025-10-11")] == G.ESCALATE_AFTER == 5
