"""自流程化 with real parts: the outbox against the project's SMTP sink, and the alerts stage of the
city lake (what it recorded and sent, checked against gold's verdict columns), rerun on a copy."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
from pathlib import Path

import pandas as pd
from helpers import D2, make_ctx, settings_for
from lakes import copy_lake

from redcloud import workdays
from redcloud.alerts import outbox, triggers
from redcloud.alerts.triggers import Recipient
from redcloud.lake import Lake

D = dt.date.fromisoformat
OFFICE = Recipient("dangjianban@localhost", "市委党建办", "party_office")
DOMAIN = "redcloud.invalid"
CADRES = pd.DataFrame({"cadre_id": [1], "cadre_name": ["张三"], "unit_org_id": [10], "unit_name": ["某局机关党支部"],
                       "position": ["局长"], "rank": ["县处级正职"]})
HEAD = Recipient(f"member-77@{DOMAIN}", "某局机关党支部书记赵六", "org_head")


def _mails(folder: Path) -> dict[str, list[email.message.EmailMessage]]:
    out = {}
    for f in folder.glob("*.eml*"):
        m = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        out.setdefault(m["Message-ID"].strip("<>").split("@")[0], []).append(m)
    return out


def _streak(missed: list[str]) -> pd.DataFrame:
    """Gold's fct_learning_daily rows of one cadre's current streak (escalation after 5)."""
    days = [D(x) for x in missed]
    return pd.DataFrame([dict(cadre_id=1, member_id=1001, work_date=d, rank="县处级正职", miss_streak=i,
                              miss_streak_start=days[0], reminder_due=True, escalation_due=i >= 5,
                              escalated_on=days[4] if i >= 5 else None) for i, d in enumerate(days, start=1)])


def _alerts(missed: list[str]):
    return triggers.learning_alerts(_streak(missed), D(missed[-1]), 5, CADRES, {1: HEAD}, OFFICE, DOMAIN)


def test_outbox_delivers_once_over_real_smtp(smtp_sink, settings, tmp_path):
    s = settings
    lake = Lake(tmp_path / "lake")
    week = ["2025-11-10", "2025-11-11", "2025-11-12", "2025-11-13", "2025-11-14"]
    msgs = outbox.messages(_alerts(week), D("2025-11-14"), "test-run")
    assert len(msgs) == 3       # reminder to the person; escalation to the head and to 市委党建办
    assert outbox.enqueue(lake, msgs) == 3
    # server unreachable: recorded as a failed attempt, nothing marked sent
    r = outbox.deliver(lake, s.smtp.host, 1, s.smtp.sender)
    assert r["failed"] == 3 and r["sent"] == 0 and r["error"]
    ob = lake.pandas("ops", outbox.OUTBOX)
    assert ob["sent_at"].isna().all() and (ob["attempts"] == 1).all() and ob["last_error"].notna().all()
    # a failed message backs off before its next attempt (10 min after the first failure) ...
    import datetime as dt

    r = outbox.deliver(lake, s.smtp.host, s.smtp.port, s.smtp.sender, backoff_minutes=10)
    assert r["pending"] == 0 and r["waiting"] == 3 and r["sent"] == 0
    # ... then the real server accepts them
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=11)
    r = outbox.deliver(lake, s.smtp.host, s.smtp.port, s.smtp.sender, backoff_minutes=10, now=later)
    assert r == {"pending": 3, "sent": 3, "failed": 0, "error": None}
    ob = lake.pandas("ops", outbox.OUTBOX)
    assert ob["sent_at"].notna().all() and (ob["attempts"] == 2).all()
    got = _mails(smtp_sink)
    for m in msgs.itertuples():
        assert len(got.get(m.message_id, [])) == 1, m.message_id
        mail = got[m.message_id][0]
        assert mail["Subject"] == m.subject and "学习问答" in mail["Subject"]
        assert mail["X-Envelope-To"] == m.recipient
        assert mail.get_content().strip().startswith(m.body.split("：")[0])
    esc = [got[m.message_id][0] for m in msgs.itertuples() if m.rule == "learning_escalation"]
    assert {str(x["To"].addresses[0].addr_spec) for x in esc} == {HEAD.address, OFFICE.address}
    assert all("连续5个工作日未完成学习问答" in x["Subject"] for x in esc)
    # a rerun of the same day: nothing new enqueued, nothing sent
    again = outbox.messages(_alerts(week), D("2025-11-14"), "test-run-2")
    assert set(again["message_id"]) == set(msgs["message_id"])
    assert outbox.enqueue(lake, again) == 0
    assert outbox.deliver(lake, s.smtp.host, s.smtp.port, s.smtp.sender)["pending"] == 0
    assert all(len(_mails(smtp_sink).get(m, [])) == 1 for m in msgs["message_id"])
    # the next working day: a new daily reminder, the escalation is not sent again
    nxt = outbox.messages(_alerts([*week, "2025-11-17"]), D("2025-11-17"), "test-run-3")
    assert outbox.enqueue(lake, nxt) == 1
    assert outbox.deliver(lake, s.smtp.host, s.smtp.port, s.smtp.sender)["sent"] == 1
    # what `make up` does once the SMTP server is up: send whatever a run left unsent
    later = outbox.messages(_alerts([*week, "2025-11-17", "2025-11-18"]), D("2025-11-18"), "test-run-4")
    assert outbox.enqueue(lake, later) == 1
    line = outbox.deliver_pending(s.replace(paths={"lake_root": str(tmp_path / "lake")}))
    assert line.startswith("告警邮件补发：1 封已发送"), line


def test_stage_on_the_city_lake_reads_gold_and_delivers(city_lake, smtp_sink):
    res = city_lake.summary["alerts"]
    lake = city_lake.ctx().lake
    day = D2
    assert workdays.is_workday(day)
    assert res["working_day"] and {t["table"] for t in res["tables"]} == {
        "gold/alerts", "gold/village_timeline", "ops/alert_outbox"}
    assert res["delivery"]["failed"] == 0 and res["delivery"]["sent"] == res["messages_new"] > 0

    # the alerts of the day are exactly gold's verdicts of the day
    ld = lake.pandas("gold", "fct_learning_daily", ["cadre_id", "work_date", "reminder_due", "escalation_due"],
                     filters=[("work_date", "=", day)])
    a = lake.pandas("gold", "alerts")
    cur = a[(a["status"] == "open") & (a["last_seen"] == day)]
    assert (cur["rule"] == "learning_reminder").sum() == int(ld.reminder_due.sum())
    assert (cur["rule"] == "learning_escalation").sum() == int(ld.escalation_due.sum())
    life = lake.pandas("gold", "fct_project_lifecycle")
    now = life[(life.valid_from <= day) & (life.valid_to.isna() | (life.valid_to > day))]
    assert (cur["rule"] == "project_overdue").sum() == (now.state == "已逾期").sum()
    assert (cur["rule"] == "project_warning").sum() == (now.state == "督办预警").sum()
    report = json.loads(cur[cur["rule"] == "project_report"].evidence.iloc[0])
    assert report["counts"] == now.state.value_counts().reindex(list(report["counts"]), fill_value=0).to_dict()
    vd = lake.pandas("gold", "fct_village_work_daily", ["reminder_due"], filters=[("work_date", "=", day)])
    assert (cur["rule"] == "village_reminder").sum() == int(vd.reminder_due.sum())
    dm = lake.pandas("gold", "fct_cadre_duty_month", ["cadre_id", "month", "reminder_due"])
    assert (cur["rule"] == "duty_record_reminder").sum() == int(dm.reminder_due.sum()) > 0   # planted missing 记实
    pdx = lake.pandas("gold", "fct_party_disclosure", ["reminder_due", "escalation_due"])
    assert (cur["rule"] == "disclosure_reminder").sum() == int(pdx.reminder_due.sum()) > 0
    assert (cur["rule"] == "disclosure_escalation").sum() == int(pdx.escalation_due.sum())
    ps = lake.pandas("gold", "fct_project_support", ["measures_missing", "cadre_id"])
    assert (cur["rule"] == "project_measure_missing").sum() == int((ps.measures_missing & ps.cadre_id.notna()).sum()) > 0
    tr = lake.pandas("gold", "fct_cadre_training_year", ["shortfall_warning"])
    assert (cur["rule"] == "training_shortfall").sum() == int(tr.shortfall_warning.sum()) > 0   # D2 is year end
    mq = lake.pandas("gold", "fct_member_question", ["reminder_due"])
    assert (cur["rule"] == "question_reminder").sum() == int(mq.reminder_due.sum()) > 0
    vn = lake.pandas("gold", "fct_volunteer_need", ["reminder_due"])
    assert (cur["rule"] == "volunteer_match_reminder").sum() == int(vn.reminder_due.sum()) > 0
    lt = lake.pandas("gold", "fct_unit_leadership", ["vacancy_overdue"], filters=[("snapshot_date", "=", day)])
    assert (cur["rule"] == "leadership_vacancy").sum() == int(lt.vacancy_overdue.sum()) > 0   # planted vacancies
    assert len(cur) > 0
    for r in a.itertuples():
        ev = json.loads(r.evidence)
        assert ev and ev["source"].startswith("gold/") and len(r.recipients) > 0
        if r.rule.startswith("learning"):
            assert ev["missed_dates"][0] == r.since.isoformat() and len(ev["missed_dates"]) == ev["streak"]
    esc = cur[cur["rule"] == "learning_escalation"]
    assert all(city_lake.settings.smtp.party_office in list(x) for x in esc["recipients"])
    assert a["alert_id"].is_unique

    tl = lake.pandas("gold", "village_timeline")
    vall = lake.pandas("gold", "fct_village_work_daily", ["assignment_id"])
    assert tl["event_type"].isin(["工作记实", "未记实"]).sum() == len(vall)

    ob = lake.pandas("ops", outbox.OUTBOX)
    assert ob["sent_at"].notna().all() and ob["message_id"].is_unique
    assert set(ob["message_id"]) <= set(_mails(smtp_sink))


def test_rerun_sends_nothing_new_and_a_rest_day_records_nothing(city_lake, smtp_sink, spark, tmp_path):
    from redcloud import alerts

    settings = copy_lake(city_lake, tmp_path)
    ctx = make_ctx(settings, D2, spark, "test__alerts_again")
    lake = ctx.lake
    sent = _mails(smtp_sink)
    v_alerts = lake.version("gold", "alerts")
    res2 = alerts.run(ctx)
    assert res2["messages_new"] == 0 and res2["delivery"]["pending"] == 0 and res2["alerts_written"] == 0
    assert lake.version("gold", "alerts") == v_alerts
    assert set(_mails(smtp_sink)) == set(sent)
    v_outbox = lake.version("ops", outbox.OUTBOX)
    rest = alerts.run(make_ctx(settings, D("2026-01-01"), spark, "test-rest"))
    assert rest["working_day"] is False and rest["tables"] == []
    assert lake.version("ops", outbox.OUTBOX) == v_outbox


def test_a_date_outside_the_official_calendar_fails_loudly(settings, tmp_path):
    import pytest

    from redcloud import alerts

    with pytest.raises(workdays.CalendarUnknownError):
        alerts.run(make_ctx(settings_for(tmp_path, settings), D("2027-01-04")))
