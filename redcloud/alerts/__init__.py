"""自流程化 stage: reminders, 督办预警, escalations, 自动注销 and 信息报送 from gold, for one logical date.

``run(spark, day, run_id)``:

1. ``day`` must be an official working day (China's calendar with 调休); a date outside the
   calendar's known years raises :class:`redcloud.workdays.CalendarUnknownError`. On a rest day the
   stage records nothing and sends nothing (``working_day: False`` in its result).
2. Rules (:mod:`redcloud.alerts.rules`) run over ``gold/fct_learning_daily``,
   ``gold/fct_project_status`` and ``gold/fct_village_work_daily`` as of ``day``.
3. ``gold/alerts`` is upserted (MERGE by ``alert_id``): new alerts open, seen ones get
   ``last_seen``, open ones whose condition no longer holds are resolved on ``day``.
4. ``gold/village_timeline`` (驻村工作时间轴) is rebuilt as of ``day``.
5. Messages are enqueued in ``ops/alert_outbox`` (insert-only MERGE by deterministic
   ``message_id``) and delivered over SMTP (:mod:`redcloud.alerts.outbox`).

Rerunning a logical date changes nothing and sends nothing new.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pandas as pd
import pyarrow as pa

from redcloud import workdays
from redcloud.alerts import io, outbox, rules
from redcloud.alerts.rules import Alert, Recipient
from redcloud.config import get_settings

ALERTS_SCHEMA = pa.schema([
    ("alert_id", pa.string()), ("rule", pa.string()), ("rule_name", pa.string()), ("level", pa.string()),
    ("subject_type", pa.string()), ("subject_id", pa.string()), ("subject_name", pa.string()),
    ("recipients", pa.list_(pa.string())), ("since", pa.date32()), ("evidence", pa.string()),
    ("status", pa.string()), ("first_seen", pa.date32()), ("last_seen", pa.date32()), ("resolved_on", pa.date32()),
    ("logical_date", pa.date32()), ("run_id", pa.string())])
TIMELINE_SCHEMA = pa.schema([
    ("cadre_id", pa.int64()), ("cadre_name", pa.string()), ("assignment_id", pa.int64()),
    ("village_org_id", pa.int64()), ("village_name", pa.string()), ("role", pa.string()),
    ("event_date", pa.date32()), ("event_seq", pa.int32()), ("event_type", pa.string()), ("detail", pa.string()),
    ("record_ids", pa.list_(pa.int64())), ("photo_count", pa.int64()), ("signed_in", pa.bool_()),
    ("days_without_record", pa.int32()), ("logical_date", pa.date32())])


def load_inputs(day: dt.date, min_level: str) -> dict:
    """Everything the rules read, as small pandas frames (rows up to ``day``)."""
    inp: dict = {}
    inp["orgs"] = io.read("silver", "organizations", ["org_id", "org_name", "parent_org_id", "org_level"], alive=True)
    inp["cadres"] = io.read("silver", "cadres", ["cadre_id", "cadre_name", "unit_org_id", "position", "rank"],
                            alive=True)
    inp["cadres"] = inp["cadres"].merge(
        inp["orgs"][["org_id", "org_name"]].rename(columns={"org_id": "unit_org_id", "org_name": "unit_name"}),
        on="unit_org_id", how="left")
    lookback = get_settings().alerts.head_lookback_days
    inp["meetings"] = io.read("silver", "meetings", ["org_id", "meeting_date", "host_member_id"], alive=True,
                              filters=[("meeting_date", "<=", day),
                                       ("meeting_date", ">", day - dt.timedelta(days=lookback))])
    inp["members"] = io.read("silver", "members", ["member_id", "member_name"], alive=True)
    inp["learning"] = None
    if io.exists("gold", "fct_learning_daily"):
        today = io.read("gold", "fct_learning_daily", ["cadre_id", "rank", "answered"],
                        filters=[("work_date", "=", day)])
        due = today[~today["answered"] & today["rank"].map(lambda r: rules.is_obligated(r, min_level))]
        ids = sorted(int(x) for x in due["cadre_id"].unique())
        cols = ["cadre_id", "member_id", "work_date", "answered", "rank", "miss_streak"]
        inp["learning"] = (io.read("gold", "fct_learning_daily", cols,
                                   filters=[("cadre_id", "in", ids), ("work_date", "<=", day)])
                           if ids else pd.DataFrame(columns=cols))
    inp["projects"] = None
    if io.exists("gold", "fct_project_status"):
        inp["projects"] = io.read("gold", "fct_project_status", [
            "project_id", "project_name", "village_org_id", "cadre_id", "category", "start_date", "deadline",
            "completed_date"])
    inp["village"] = None
    if io.exists("gold", "fct_village_work_daily"):
        inp["village"] = io.read("gold", "fct_village_work_daily", [
            "assignment_id", "cadre_id", "village_org_id", "role", "work_date", "is_makeup_workday", "has_record",
            "record_count", "photo_count", "signed_in", "record_ids", "days_without_record"],
            filters=[("work_date", "<=", day)])
        inp["assignments"] = io.read("silver", "village_assignments", [
            "assignment_id", "cadre_id", "village_org_id", "role", "start_date", "end_date"], alive=True)
    return inp


def evaluate(inp: dict, day: dt.date) -> tuple[list[Alert], set[str], pd.DataFrame | None]:
    """(alerts holding on ``day``, rules evaluated, village timeline) from :func:`load_inputs`."""
    st = get_settings()
    cfg, dom = st.alerts, st.alerts.mail_domain
    office = Recipient(st.smtp.party_office, "市委党建办", "party_office")
    heads = rules.org_heads(inp["meetings"], inp["members"], inp["orgs"], day, cfg.head_lookback_days)
    cadres = inp["cadres"]
    names = dict(zip(cadres["cadre_id"].astype(int), cadres["cadre_name"]))
    org_names = dict(zip(inp["orgs"]["org_id"].astype(int), inp["orgs"]["org_name"]))
    alerts: list[Alert] = []
    evaluated: set[str] = set()
    timeline = None
    if inp["learning"] is not None:
        ld = inp["learning"]
        member_of = dict(zip(ld["cadre_id"].astype(int), ld["member_id"].astype(int)))
        unit_of = dict(zip(cadres["cadre_id"].astype(int), cadres["unit_org_id"].astype(int)))
        cadre_heads = {cid: rules.head_recipient(unit_of[cid], member_of.get(cid), heads, inp["orgs"], dom)
                       for cid in ld["cadre_id"].astype(int).unique() if cid in unit_of}
        alerts += rules.learning_alerts(ld, day, cfg.learning_min_level, cfg.learning_escalate_after, cadres,
                                        cadre_heads, office, dom)
        evaluated |= {"learning_reminder", "learning_escalation"}
    if inp["projects"] is not None:
        pr = inp["projects"]
        vheads = {int(v): rules.head_recipient(int(v), None, heads, inp["orgs"], dom)
                  for v in pr["village_org_id"].unique()}
        alerts += rules.project_alerts(pr, day, cfg.project_warning_days, cfg.project_expire_after_days,
                                       cfg.closure_lookback_days, names, vheads, office, dom, cfg.project_report)
        evaluated |= {"project_warning", "project_overdue", "project_closure", "project_report"}
    if inp["village"] is not None:
        alerts += rules.village_alerts(inp["village"], day, cfg.village_reminder_after, names, org_names, dom)
        timeline = rules.village_timeline(inp["village"], inp["assignments"], day, cfg.village_reminder_after,
                                          names, org_names)
        evaluated.add("village_reminder")
    return alerts, evaluated, timeline


def _same(a, b) -> bool:
    if isinstance(a, list) or isinstance(b, list) or hasattr(b, "tolist"):
        return list(a if a is not None else []) == list(b if b is not None else [])
    if a is None or (not isinstance(a, str) and pd.isna(a)):
        return b is None or (not isinstance(b, str) and pd.isna(b))
    return a == b


def upsert_rows(existing: pd.DataFrame | None, alerts: list[Alert], evaluated: set[str], day: dt.date,
                run_id: str) -> pd.DataFrame:
    """The ``gold/alerts`` rows to MERGE for ``day``: new and still-holding alerts, and open alerts
    of an evaluated rule that no longer hold (resolved on ``day``). A rerun of an older date never
    moves an alert seen on a later date backwards."""
    prev = {} if existing is None or existing.empty else {r["alert_id"]: r for r in existing.to_dict("records")}
    out = []
    active = set()
    for a in alerts:
        aid = a.alert_id
        if aid in active:
            continue
        active.add(aid)
        e = prev.get(aid)
        if e is not None and e["last_seen"] > day:
            continue
        row = dict(alert_id=aid, rule=a.rule, rule_name=rules.RULE_TEXT[a.rule], level=a.level,
                        subject_type=a.subject_type, subject_id=a.subject_id, subject_name=a.subject_name,
                        recipients=[r.address for r in a.recipients], since=a.since,
                        evidence=rules.evidence_json(a.evidence), status="open",
                        first_seen=min(e["first_seen"], day) if e is not None else day, last_seen=day,
                        resolved_on=None, logical_date=day, run_id=run_id)
        if e is not None and all(_same(row[k], e[k]) for k in row if k != "run_id"):
            continue   # unchanged (a rerun of the same date): nothing to write
        out.append(row)
    for aid, e in prev.items():
        if (aid not in active and e["status"] == "open" and e["rule"] in evaluated
                and e["first_seen"] <= day and e["last_seen"] <= day):
            out.append({**e, "status": "resolved", "resolved_on": day, "logical_date": day, "run_id": run_id})
    return pd.DataFrame(out, columns=ALERTS_SCHEMA.names)


def run(spark, day: dt.date, run_id: str) -> dict:
    """The stage (``spark`` is not needed: gold is small and read/written with delta-rs)."""
    t0 = time.perf_counter()
    st = get_settings()
    if not workdays.is_workday(day):   # raises CalendarUnknownError outside the known years
        return {"tables": [], "working_day": False,
                "note": f"{day.isoformat()} 非工作日（官方日历）：不计算、不记录、不发送"}
    inp = load_inputs(day, st.alerts.learning_min_level)
    alerts, evaluated, timeline = evaluate(inp, day)

    existing = io.read("gold", "alerts") if io.exists("gold", "alerts") else None
    if existing is not None:
        existing["recipients"] = existing["recipients"].map(list)
    rows = upsert_rows(existing, alerts, evaluated, day, run_id)
    io.upsert("gold", "alerts", rows, ALERTS_SCHEMA, "alert_id")
    tables = [{"table": "gold/alerts", "rows": io.count("gold", "alerts")}]
    if timeline is not None:
        timeline["logical_date"] = day
        io.overwrite("gold", "village_timeline", timeline, TIMELINE_SCHEMA,
                     "驻村工作时间轴: one row per cadre, assignment and event (see redcloud.alerts.rules.village_timeline)")
        tables.append({"table": "gold/village_timeline", "rows": len(timeline)})

    msgs = outbox.messages(alerts, day, run_id)
    new = outbox.enqueue(msgs)
    tables.append({"table": "ops/alert_outbox", "rows": io.count("ops", outbox.OUTBOX)})
    delivery = None
    if st.alerts.deliver:
        delivery = outbox.deliver(st.smtp.host, st.smtp.port, st.smtp.sender, st.alerts.send_batch,
                                  st.alerts.max_attempts, st.smtp.timeout)
    by_rule = Counter(a.rule for a in alerts)
    return {"tables": tables, "working_day": True, "alerts_active": dict(sorted(by_rule.items())),
            "alerts_written": len(rows), "resolved": int((rows["status"] == "resolved").sum()) if len(rows) else 0,
            "messages": len(msgs), "messages_new": new, "delivery": delivery,
            "seconds": round(time.perf_counter() - t0, 1)}


__all__ = ["run", "load_inputs", "evaluate", "upsert_rows", "ALERTS_SCHEMA", "TIMELINE_SCHEMA"]
