"""Outbox (``ops/alert_outbox``) and its SMTP sender.

Exactly-once per ``message_id``:

1. Messages are *enqueued* with a MERGE that only inserts unknown ``message_id`` s (ids are
   deterministic from alert, recipient and — for daily reminders — the date), so rerunning a
   logical date adds nothing.
2. :func:`deliver` sends every unsent message (``sent_at`` NULL, ``attempts`` below the limit)
   with :mod:`smtplib`, ``Message-ID: <message_id@redcloud>``, and marks it sent with a MERGE once
   the server accepted it; a refused/failed send records ``attempts`` and ``last_error`` and is
   retried by the next run (after a back-off that doubles with each failure, ``[alerts]
   retry_backoff_minutes``, up to ``max_attempts``) and when the services start (``make up``).

Crash window: messages are marked in batches (``alerts.send_batch``) after the SMTP server accepted
them. A crash after the server accepted a message and before its batch was marked re-sends at most
that batch on the next run; the Message-ID header is the same, so a receiver (or the sink's file
name) can drop the duplicate. Marking before sending would instead risk losing a message.
"""

from __future__ import annotations

import datetime as dt
import smtplib
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

import pandas as pd
import pyarrow as pa
from deltalake import DeltaTable

from redcloud.alerts.triggers import RULE_TEXT, Alert, message_id
from redcloud.lake import Lake

OUTBOX = "alert_outbox"
SCHEMA = pa.schema([
    ("message_id", pa.string()), ("alert_id", pa.string()), ("rule", pa.string()), ("level", pa.string()),
    ("recipient", pa.string()), ("recipient_name", pa.string()), ("subject", pa.string()), ("body", pa.string()),
    ("created_for_date", pa.date32()), ("created_run_id", pa.string()),
    ("sent_at", pa.timestamp("us", tz="UTC")), ("attempts", pa.int32()), ("last_error", pa.string()),
    ("app_read_at", pa.timestamp("us", tz="UTC")),      # e-mail channel: sent_at; app channel: app_read_at
    ("last_attempt_at", pa.timestamp("us", tz="UTC"))])

def _d(x) -> str:
    return x.isoformat() if hasattr(x, "isoformat") else str(x)


def _dates(xs, limit: int = 10) -> str:
    xs = [_d(x) for x in xs]
    return "、".join(xs[:limit]) + (f" 等{len(xs)}天" if len(xs) > limit else "")


def render(alert: Alert, recipient_name: str, role: str, day: dt.date) -> tuple[str, str]:
    """(subject, body) in Simplified Chinese."""
    f = alert.facts
    tag = f"【{RULE_TEXT[alert.rule]}】"
    sign = f"\n\n此消息由党建红云自流程化系统自动发送（{day.isoformat()}）。\n告警编号：{alert.alert_id}"
    if alert.rule == "learning_reminder":
        subj = f"{tag}{f['name']}同志，您{day.isoformat()}的学习问答尚未完成"
        body = (f"{f['name']}同志：\n\n您（{f['unit']}，{f['rank']}）在工作日{day.isoformat()}未完成学习问答，"
                f"目前已连续{f['streak']}个工作日未答题（自{_d(f['since'])}起：{_dates(f['missed'])}）。"
                f"请尽快登录党建APP完成学习问答。")
        n = f["escalate_after"]
        body += (f"按规定，连续{n}个工作日未完成将报送所在单位党组织负责人和市委党建办。" if f["streak"] < n
                 else f"已连续{n}个工作日以上未完成，已报送所在单位党组织负责人和市委党建办。")
    elif alert.rule == "learning_escalation":
        subj = f"{tag}{f['name']}同志已连续{f['streak']}个工作日未完成学习问答"
        body = (f"{recipient_name}：\n\n{f['unit']}{f['name']}同志（{f['rank']}）自{_d(f['since'])}起连续"
                f"{f['streak']}个工作日未完成学习问答（未答日期：{_dates(f['missed'])}），"
                f"已于{_d(f['escalated_on'])}达到督办条件。请督促其按时完成学习任务。")
    elif alert.rule == "project_warning":
        subj = f"{tag}{f['project']}距截止日期还有{f['days_to_deadline']}天"
        body = (f"{f['cadre']}同志：\n\n您负责的帮扶项目“{f['project']}”（{f['category']}）将于{_d(f['deadline'])}到期，"
                f"距今{f['days_to_deadline']}天，尚未完成。请抓紧推进并及时在党建APP更新进度。")
    elif alert.rule == "project_overdue":
        subj = f"{tag}{f['project']}已逾期{f['overdue_days']}天"
        body = (f"{recipient_name}：\n\n帮扶项目“{f['project']}”（{f['category']}，责任人{f['cadre']}）截止日期为"
                f"{_d(f['deadline'])}，至{day.isoformat()}已逾期{f['overdue_days']}天仍未完成，现予督办。")
    elif alert.rule == "project_closure":
        subj = f"{tag}{f['project']}已自动注销（{f['reason']}）"
        body = (f"{f['cadre']}同志：\n\n帮扶项目“{f['project']}”（{f['category']}，截止日期{_d(f['deadline'])}）"
                f"因{f['reason']}，已于{_d(f['closed_on'])}自动注销，不再列入督办范围。")
    elif alert.rule == "project_report":
        c, n = f["counts"], f["new_today"]
        subj = f"{tag}{day.isoformat()}全市帮扶项目情况"
        by_state = "，".join(f"{state}{n}个" for state, n in c.items())   # lifecycle order (gold's states)
        body = (f"市委党建办：\n\n截至{day.isoformat()}，全市帮扶项目共{f['projects']}个：{by_state}。"
                f"\n今日新增：督办预警{n['project_warning']}个，逾期督办{n['project_overdue']}个，"
                f"自动注销{n['project_closure']}个。")
    elif alert.rule == "village_reminder":
        subj = f"{tag}{f['name']}同志，{f['village']}已连续{f['streak']}个工作日无工作记实"
        body = (f"{f['name']}同志：\n\n您作为{f['village']}{f['role']}，自{_d(f['since'])}起已连续{f['streak']}个"
                f"工作日未提交每日工作记实（{_dates(f['missed'])}）。请及时在党建APP补充记实并签到。")
    elif alert.rule == "duty_record_reminder":
        subj = f"{tag}{f['name']}同志，{f['month']}岗位责任工作记实尚未填报"
        body = (f"{f['name']}同志：\n\n您（{f['unit']}）{f['month']}的岗位责任工作记实应于{_d(f['due_date'])}"
                f"（次月第{f['due_workday']}个工作日）前填报，至{day.isoformat()}已超过{f['workdays_overdue']}个工作日"
                f"仍未填报。请尽快在数据铁笼系统中补报当月目标任务完成情况。")
    elif alert.rule == "leadership_vacancy":
        subj = f"{tag}{f['unit']}领导班子正职已空缺{f['workdays']}个工作日"
        body = (f"{recipient_name}：\n\n{f['unit']}领导班子自{_d(f['since'])}起无正职在岗（现有班子成员{f['leaders']}人），"
                f"至{day.isoformat()}已空缺{f['workdays']}个工作日，超过{f['limit']}个工作日的配备时限。"
                f"请组织部门研究配备人选，必要时明确临时主持工作的负责同志。")
    elif alert.rule == "disclosure_reminder":
        subj = f"{tag}{f['org']}“{f['item']}”逾期未公开"
        body = (f"{recipient_name}：\n\n{f['title']}应于{_d(f['due_date'])}前在党务公开栏目公开，至{day.isoformat()}"
                f"已逾期{f['workdays_overdue']}个工作日仍未公开。请尽快按规定内容完整公开；逾期{f['escalate_after']}个工作日"
                f"仍未公开的，将报送市委党建办督办。")
    elif alert.rule == "disclosure_escalation":
        subj = f"{tag}{f['org']}“{f['item']}”逾期{f['workdays_overdue']}个工作日未公开"
        body = (f"{recipient_name}：\n\n{f['title']}的公开时限为{_d(f['due_date'])}，至{day.isoformat()}已逾期"
                f"{f['workdays_overdue']}个工作日仍未公开，现予督办。请督促该支部立即公开并说明原因。")
    elif alert.rule == "project_measure_missing":
        subj = f"{tag}{f['project']}尚未录入帮扶措施"
        body = (f"{f['cadre']}同志：\n\n您负责的帮扶项目“{f['project']}”于{_d(f['start_date'])}启动，已超过"
                f"{f['due_workdays']}个工作日仍未录入任何帮扶措施及资金来源。请在党建APP补录帮扶措施、资金渠道"
                f"（政府帮扶/社会帮扶）和金额。")
    elif alert.rule == "training_shortfall":
        subj = f"{tag}{f['name']}同志，{f['year']}年调训学时尚差{f['short']:g}学时"
        body = (f"{f['name']}同志：\n\n您{f['year']}年已完成调训{f['hours']:g}学时，距年度要求{f['required']:g}学时"
                f"尚差{f['short']:g}学时，本年度仅剩{f['left']}个工作日。请尽快参加调训或网络专题班，按时完成年度学习任务。")
    elif alert.rule == "question_reminder":
        subj = f"{tag}{f['org']}有党员提问超时未解答"
        body = (f"{recipient_name}：\n\n本支部党员于{_d(f['asked_on'])}在党建APP提出的“{f['category']}”问题，"
                f"应于{_d(f['due_date'])}前（{f['limit']}个工作日内）解答，至{day.isoformat()}已超过{f['overdue']}个工作日"
                f"仍未解答。请尽快答复；需上级解答的，请转组织部门。")
    elif alert.rule == "volunteer_match_reminder":
        subj = f"{tag}{f['title']}超时未对接"
        body = (f"{recipient_name}：\n\n“{f['title']}”于{_d(f['published_on'])}在党员志愿服务超市发布，"
                f"应在{f['limit']}个工作日内对接志愿服务队，至{day.isoformat()}已超过{f['overdue']}个工作日仍未对接。"
                f"请联系本区县党员志愿服务队认领，或调整需求后重新发布。")
    else:  # pragma: no cover - every rule has a text
        raise ValueError(alert.rule)
    return subj, body + sign


def messages(alerts: list[Alert], day: dt.date, run_id: str) -> pd.DataFrame:
    rows = []
    for a in alerts:
        for r in a.recipients:
            subj, body = render(a, r.name, r.role, day)
            rows.append(dict(message_id=message_id(a.alert_id, r.address, a.message_key), alert_id=a.alert_id,
                             rule=a.rule, level=a.level, recipient=r.address, recipient_name=r.name,
                             subject=subj, body=body, created_for_date=day, created_run_id=run_id,
                             sent_at=None, attempts=0, last_error=None, app_read_at=None,
                             last_attempt_at=None))
    return pd.DataFrame(rows, columns=SCHEMA.names).drop_duplicates("message_id")


def enqueue(lake: Lake, msgs: pd.DataFrame) -> int:
    """Insert messages whose ``message_id`` is not yet in the outbox; returns how many were new."""
    data = pa.Table.from_pandas(msgs[SCHEMA.names], schema=SCHEMA, preserve_index=False)
    return lake.merge_arrow("ops", OUTBOX, data, "message_id", insert_only=True)


def _mark(lake: Lake, results: list[tuple[str, dt.datetime | None, str | None]]) -> None:
    """Record send results: sent_at (accepted) or last_error; attempts + 1 and the attempt's time.
    Never un-sends."""
    if not results:
        return
    now = dt.datetime.now(dt.timezone.utc)
    data = pa.table({"message_id": [r[0] for r in results], "sent_at": [r[1] for r in results],
                     "last_error": [r[2] for r in results], "last_attempt_at": [now] * len(results)},
                    schema=pa.schema([("message_id", pa.string()), ("sent_at", pa.timestamp("us", tz="UTC")),
                                      ("last_error", pa.string()), ("last_attempt_at", pa.timestamp("us", tz="UTC"))]))
    (DeltaTable(lake.path("ops", OUTBOX)).merge(data, "t.message_id = s.message_id", source_alias="s", target_alias="t")
     .when_matched_update({"sent_at": "s.sent_at", "attempts": "t.attempts + 1", "last_error": "s.last_error",
                           "last_attempt_at": "s.last_attempt_at"},
                          predicate="t.sent_at is null")
     .execute())


def due(pending: pd.DataFrame, now: dt.datetime, backoff_minutes: float) -> pd.Series:
    """A failed message waits ``backoff_minutes`` x 2^(attempts - 1) after its last attempt (5, 10, 20,
    ... minutes) before the next; a message never tried is due at once."""
    if backoff_minutes <= 0 or pending.empty:
        return pd.Series(True, index=pending.index)
    last = pd.to_datetime(pending["last_attempt_at"], utc=True)
    wait = pd.to_timedelta(backoff_minutes * 2.0 ** (pending["attempts"].clip(lower=1) - 1), unit="m")
    return (pending["attempts"] == 0) | last.isna() | (last + wait <= pd.Timestamp(now))


def build_email(row, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address("党建红云", addr_spec=sender)
    msg["To"] = Address(row["recipient_name"] or "", addr_spec=row["recipient"])
    msg["Subject"] = row["subject"]
    msg["Message-ID"] = f"<{row['message_id']}@redcloud>"
    msg["Date"] = format_datetime(dt.datetime.now(dt.timezone.utc))
    msg["X-RedCloud-Alert-Id"] = row["alert_id"]
    msg["X-RedCloud-Rule"] = row["rule"]
    msg.set_content(row["body"], charset="utf-8")
    return msg


def deliver(lake: Lake, host: str, port: int, sender: str, batch: int = 50, max_attempts: int = 5,
            timeout: float = 10.0, backoff_minutes: float = 0.0, now: dt.datetime | None = None) -> dict:
    """Send every unsent outbox message that is due (below ``max_attempts`` failures and past its
    back-off, see :func:`due`); returns {"pending", "sent", "failed", "error"} (and "waiting": unsent
    messages still backing off, when any)."""
    if not lake.exists("ops", OUTBOX):
        return {"pending": 0, "sent": 0, "failed": 0, "error": None}
    pending = lake.pandas("ops", OUTBOX)
    pending = pending[pending["sent_at"].isna() & (pending["attempts"] < max_attempts)]
    ready = due(pending, now or dt.datetime.now(dt.timezone.utc), backoff_minutes)
    waiting = int((~ready).sum())
    pending = pending[ready].sort_values(["created_for_date", "message_id"]).reset_index(drop=True)
    out = {"pending": len(pending), "sent": 0, "failed": 0, "error": None}
    if waiting:
        out["waiting"] = waiting
    if pending.empty:
        return out
    try:
        smtp = smtplib.SMTP(host, port, timeout=timeout)
    except OSError as e:  # server down: record the attempt on every pending message, retry next run
        err = f"connect {host}:{port}: {e}"
        _mark(lake, [(m, None, err) for m in pending["message_id"]])
        out.update(failed=len(pending), error=err)
        return out
    done: list = []
    try:
        for _, row in pending.iterrows():
            try:
                smtp.send_message(build_email(row, sender))
                done.append((row["message_id"], dt.datetime.now(dt.timezone.utc), None))
                out["sent"] += 1
            except (smtplib.SMTPException, OSError) as e:
                done.append((row["message_id"], None, f"{type(e).__name__}: {e}"[:500]))
                out["failed"] += 1
                out["error"] = str(e)[:200]
                if isinstance(e, (smtplib.SMTPServerDisconnected, OSError)):
                    try:   # the connection is gone: reconnect once, else leave the rest for the next run
                        smtp = smtplib.SMTP(host, port, timeout=timeout)
                    except OSError:
                        break
            if len(done) >= batch:
                _mark(lake, done)
                done = []
    finally:
        _mark(lake, done)
        try:
            smtp.quit()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass
    return out


def deliver_pending(settings) -> str | None:
    """Send the lake's due, unsent messages now (the services call this once the SMTP server is up, so
    alerts of a run that found it down do not wait for the next run); None when there is no outbox."""
    lake = Lake(settings.paths.lake_root)
    if not lake.exists("ops", OUTBOX):
        return None
    a, m = settings.alerts, settings.smtp
    r = deliver(lake, m.host, m.port, m.sender, a.send_batch, a.max_attempts, m.timeout, a.retry_backoff_minutes)
    return (f"告警邮件补发：{r['sent']} 封已发送，{r['failed']} 封失败"
            + (f"，{r['waiting']} 封等待重试" if r.get("waiting") else "") + f"（待发 {r['pending']}）")
