"""自流程化 stage: reminders, 督办预警, escalations, 自动注销 and 信息报送 from gold, for one logical date.

``run(ctx)``:

1. ``ctx.day`` must be an official working day (China's calendar with 调休); a date outside the
   calendar's known years raises :class:`redcloud.workdays.CalendarUnknownError`. On a rest day the
   stage records nothing and sends nothing (``working_day: False`` in its result).
2. The alerts of the day (:mod:`redcloud.alerts.triggers`) are read off the verdicts gold computed
   from the rules (``gold/fct_learning_daily``, ``gold/fct_project_lifecycle``,
   ``gold/fct_village_work_daily``): no rule is evaluated again here.
3. ``gold/alerts`` is upserted (MERGE by ``alert_id``): new alerts open, seen ones get
   ``last_seen``, open ones whose condition no longer holds are resolved on the day.
4. ``gold/village_timeline`` (驻村工作时间轴) is rebuilt as of the day.
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
from redcloud.alerts import app_channel, outbox, triggers
from redcloud.alerts.triggers import Alert, Recipient
from redcloud.context import RunContext
from redcloud.lake import Lake

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


def _on_day(lake: Lake, table: str, columns: list[str], key: str, day: dt.date) -> pd.DataFrame:
    """Rows of a daily streak fact for the keys with ``reminder_due`` on ``day``, from the earliest of
    their streak starts up to ``day`` (the evidence of each streak)."""
    today = lake.pandas("gold", table, [key, "reminder_due", "miss_streak_start"],
                        filters=[("work_date", "=", day), ("reminder_due", "=", True)])
    if today.empty:
        return pd.DataFrame(columns=columns)
    ids = sorted(int(x) for x in today[key].unique())
    lo = min(today["miss_streak_start"])
    return lake.pandas("gold", table, columns, filters=[(key, "in", ids), ("work_date", ">=", lo),
                                                        ("work_date", "<=", day)])


# the trigger families of :func:`evaluate`, each read from its gold table(s)
KINDS = ("learning", "projects", "village", "duty", "leadership", "disclosures", "support", "training", "questions",
         "volunteer")


def load_inputs(lake: Lake, day: dt.date, head_lookback_days: int, kinds: set[str] | None = None) -> dict:
    """Everything the triggers read, as small pandas frames (rows up to ``day``); ``kinds`` (default:
    all of :data:`KINDS`): only these trigger families' inputs (the others are None)."""
    unknown = sorted(set(kinds or ()) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown alert kind(s) {', '.join(unknown)}; expected some of {', '.join(KINDS)}")

    def want(kind: str, table: str) -> bool:
        return (kinds is None or kind in kinds) and lake.exists("gold", table)

    inp: dict = {k: None for k in KINDS}
    inp["orgs"] = lake.pandas("silver", "organizations", ["org_id", "org_name", "parent_org_id", "org_level"],
                              alive=True)
    inp["cadres"] = lake.pandas("silver", "cadres", ["cadre_id", "cadre_name", "unit_org_id", "position", "rank"],
                                alive=True)
    inp["cadres"] = inp["cadres"].merge(
        inp["orgs"][["org_id", "org_name"]].rename(columns={"org_id": "unit_org_id", "org_name": "unit_name"}),
        on="unit_org_id", how="left")
    inp["meetings"] = lake.pandas("silver", "meetings", ["org_id", "meeting_date", "host_member_id"], alive=True,
                                  filters=[("meeting_date", "<=", day),
                                           ("meeting_date", ">", day - dt.timedelta(days=head_lookback_days))])
    inp["members"] = lake.pandas("silver", "members", ["member_id", "member_name"], alive=True)
    if want("learning", "fct_learning_daily"):
        inp["learning"] = _on_day(lake, "fct_learning_daily", [
            "cadre_id", "member_id", "work_date", "rank", "miss_streak", "miss_streak_start", "reminder_due",
            "escalation_due", "escalated_on"], "cadre_id", day)
    if want("projects", "fct_project_lifecycle"):
        states = lake.pandas("gold", "fct_project_lifecycle", ["project_id", "state", "valid_from", "valid_to"],
                             filters=[("valid_from", "<=", day)])
        states = states[states["valid_to"].isna() | (states["valid_to"] > day)]
        attrs = lake.pandas("gold", "fct_project_status", [
            "project_id", "project_name", "village_org_id", "cadre_id", "category", "start_date", "deadline"])
        inp["projects"] = (states.rename(columns={"valid_from": "state_since"}).drop(columns=["valid_to"])
                           .merge(attrs, on="project_id").sort_values("project_id").reset_index(drop=True))
    if want("village", "fct_village_work_daily"):
        inp["village"] = _on_day(lake, "fct_village_work_daily", [
            "assignment_id", "cadre_id", "village_org_id", "role", "work_date", "days_without_record",
            "miss_streak_start", "reminder_due"], "assignment_id", day)
        inp["village_daily"] = lake.pandas("gold", "fct_village_work_daily", [
            "assignment_id", "cadre_id", "village_org_id", "role", "work_date", "is_makeup_workday", "has_record",
            "record_count", "photo_count", "signed_in", "record_ids", "days_without_record", "reminder_due"],
            filters=[("work_date", "<=", day)])
        inp["assignments"] = lake.pandas("silver", "village_assignments", [
            "assignment_id", "cadre_id", "village_org_id", "role", "start_date", "end_date"], alive=True)
    if want("duty", "fct_cadre_duty_month"):
        inp["duty"] = lake.pandas("gold", "fct_cadre_duty_month", [
            "cadre_id", "month", "unit_org_id", "due_date", "workdays_overdue", "reminder_due"],
            filters=[("reminder_due", "=", True)])
    if want("leadership", "fct_unit_leadership"):
        inp["leadership"] = lake.pandas("gold", "fct_unit_leadership", [
            "unit_org_id", "chief_vacant_since", "vacancy_workdays", "leaders", "vacancy_overdue"],
            filters=[("snapshot_date", "=", day), ("vacancy_overdue", "=", True)])
    if want("disclosures", "fct_party_disclosure"):
        inp["disclosures"] = lake.pandas("gold", "fct_party_disclosure", [
            "disclosure_id", "org_id", "item_type", "title", "event_date", "due_date", "workdays_overdue",
            "reminder_due", "escalation_due"], filters=[("reminder_due", "=", True)])
    if want("support", "fct_project_support"):
        inp["support"] = lake.pandas("gold", "fct_project_support", [
            "project_id", "project_name", "cadre_id", "village_org_id", "start_date", "measure_due_date",
            "workdays_without_measure", "measures_missing"], filters=[("measures_missing", "=", True)])
    if want("training", "fct_cadre_training_year"):
        inp["training"] = lake.pandas("gold", "fct_cadre_training_year", [
            "cadre_id", "year", "hours", "hours_required", "hours_short", "remaining_workdays", "warning_from",
            "shortfall_warning"], filters=[("shortfall_warning", "=", True)])
    if want("questions", "fct_member_question"):
        inp["questions"] = lake.pandas("gold", "fct_member_question", [
            "question_id", "org_id", "category", "asked_on", "due_date", "workdays_overdue", "reminder_due"],
            filters=[("reminder_due", "=", True)])
    if want("volunteer", "fct_volunteer_need"):
        inp["volunteer"] = lake.pandas("gold", "fct_volunteer_need", [
            "need_id", "org_id", "title", "published_on", "match_due_date", "workdays_overdue", "reminder_due"],
            filters=[("reminder_due", "=", True)])
    return inp


def evaluate(ctx: RunContext, inp: dict) -> tuple[list[Alert], set[str], pd.DataFrame | None]:
    """(alerts holding on the day, rules evaluated, village timeline) from :func:`load_inputs`."""
    day, st = ctx.day, ctx.settings
    cfg, dom = st.alerts, st.alerts.mail_domain
    office = Recipient(st.smtp.party_office, "市委党建办", "party_office")
    heads = triggers.org_heads(inp["meetings"], inp["members"], inp["orgs"], day, cfg.head_lookback_days)
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
        cadre_heads = {cid: triggers.head_recipient(unit_of[cid], member_of.get(cid), heads, inp["orgs"], dom)
                       for cid in ld["cadre_id"].astype(int).unique() if cid in unit_of}
        alerts += triggers.learning_alerts(ld, day, ctx.rules.learning_escalate_after, cadres, cadre_heads, office,
                                           dom)
        evaluated |= {"learning_reminder", "learning_escalation"}
    if inp["projects"] is not None:
        pr = inp["projects"]
        vheads = {int(v): triggers.head_recipient(int(v), None, heads, inp["orgs"], dom)
                  for v in pr["village_org_id"].unique()}
        alerts += triggers.project_alerts(pr, day, cfg.closure_lookback_days, names, vheads, office, dom,
                                          cfg.project_report)
        evaluated |= {"project_warning", "project_overdue", "project_closure", "project_report"}
    if inp["village"] is not None:
        alerts += triggers.village_alerts(inp["village"], day, names, org_names, dom)
        timeline = triggers.village_timeline(inp["village_daily"], inp["assignments"], day, names, org_names)
        evaluated.add("village_reminder")
    if inp.get("duty") is not None:
        alerts += triggers.duty_alerts(inp["duty"], names, org_names, ctx.rules.duty_record_due_workday, dom)
        evaluated.add("duty_record_reminder")
    if inp.get("leadership") is not None:
        alerts += triggers.leadership_alerts(inp["leadership"], org_names, office, ctx.rules.leadership_vacancy_workdays)
        evaluated.add("leadership_vacancy")
    if inp.get("disclosures") is not None:
        dsc = inp["disclosures"]
        dheads = {int(o): triggers.head_recipient(int(o), None, heads, inp["orgs"], dom) for o in dsc["org_id"].unique()}
        alerts += triggers.disclosure_alerts(dsc, dheads, office, org_names, ctx.rules.disclosure_escalate_after)
        evaluated |= {"disclosure_reminder", "disclosure_escalation"}
    if inp.get("support") is not None:
        alerts += triggers.measure_alerts(inp["support"], names, dom, ctx.rules.project_measure_workdays)
        evaluated.add("project_measure_missing")
    if inp.get("training") is not None:
        alerts += triggers.training_alerts(inp["training"], names, dom)
        evaluated.add("training_shortfall")
    if inp.get("questions") is not None:
        qs = inp["questions"]
        qheads = {int(o): triggers.head_recipient(int(o), None, heads, inp["orgs"], dom) for o in qs["org_id"].unique()}
        alerts += triggers.question_alerts(qs, qheads, org_names, ctx.rules.question_answer_workdays)
        evaluated.add("question_reminder")
    if inp.get("volunteer") is not None:
        vn = inp["volunteer"]
        vheads2 = {int(o): triggers.head_recipient(int(o), None, heads, inp["orgs"], dom) for o in vn["org_id"].unique()}
        alerts += triggers.volunteer_alerts(vn, vheads2, ctx.rules.volunteer_match_workdays)
        evaluated.add("volunteer_match_reminder")
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
        row = dict(alert_id=aid, rule=a.rule, rule_name=triggers.RULE_TEXT[a.rule], level=a.level,
                        subject_type=a.subject_type, subject_id=a.subject_id, subject_name=a.subject_name,
                        recipients=[r.address for r in a.recipients], since=a.since,
                        evidence=triggers.evidence_json(a.evidence), status="open",
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


def run(ctx: RunContext, kinds: set[str] | None = None) -> dict:
    """The stage (no Spark: gold is small and read/written with delta-rs); ``kinds``: only these
    trigger families (:data:`KINDS`; the micro-batch sends the day's 学习问答 reminders with
    ``{"learning"}``). Open alerts of a family not evaluated are left as they are."""
    t0 = time.perf_counter()
    day, run_id, lake, st = ctx.day, ctx.run_id, ctx.lake, ctx.settings
    if not workdays.is_workday(day):   # raises CalendarUnknownError outside the known years
        note = f"{day.isoformat()} 非工作日（官方日历）：不计算、不记录、不发送"
        ctx.progress.note(note)
        return {"tables": [], "working_day": False, "note": note}
    inp = load_inputs(lake, day, st.alerts.head_lookback_days, kinds)
    alerts, evaluated, timeline = evaluate(ctx, inp)

    existing = lake.pandas("gold", "alerts") if lake.exists("gold", "alerts") else None
    if existing is not None:
        existing["recipients"] = existing["recipients"].map(list)
    rows = upsert_rows(existing, alerts, evaluated, day, run_id)
    lake.merge_arrow("gold", "alerts", to_arrow(rows, ALERTS_SCHEMA), "alert_id")
    tables = [{"table": "gold/alerts", "rows": lake.count("gold", "alerts")}]
    if timeline is not None:
        timeline["logical_date"] = day
        lake.overwrite_arrow("gold", "village_timeline", to_arrow(timeline, TIMELINE_SCHEMA),
                             "驻村工作时间轴: one row per cadre, assignment and event "
                             "(see redcloud.alerts.triggers.village_timeline)")
        tables.append({"table": "gold/village_timeline", "rows": len(timeline)})

    msgs = outbox.messages(alerts, day, run_id)
    new = outbox.enqueue(lake, msgs)
    read_in_app = app_channel.sync(lake, app_channel.acks_path(st), outbox.OUTBOX)
    tables.append({"table": "ops/alert_outbox", "rows": lake.count("ops", outbox.OUTBOX)})
    for t in tables:
        ctx.progress.table(t["table"], t["rows"])
    delivery = None
    if st.alerts.deliver:
        delivery = outbox.deliver(lake, st.smtp.host, st.smtp.port, st.smtp.sender, st.alerts.send_batch,
                                  st.alerts.max_attempts, st.smtp.timeout, st.alerts.retry_backoff_minutes)
        ctx.progress.note(f"outbox: {new} new messages; delivery {delivery}")
    by_rule = Counter(a.rule for a in alerts)
    return {"tables": tables, "working_day": True, "alerts_active": dict(sorted(by_rule.items())),
            "alerts_written": len(rows), "resolved": int((rows["status"] == "resolved").sum()) if len(rows) else 0,
            "messages": len(msgs), "messages_new": new, "delivery": delivery, "read_in_app": read_in_app,
            "seconds": round(time.perf_counter() - t0, 1)}


def to_arrow(df: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pandas(df[[f.name for f in schema]], schema=schema, preserve_index=False)


__all__ = ["run", "load_inputs", "evaluate", "upsert_rows", "ALERTS_SCHEMA", "TIMELINE_SCHEMA"]
