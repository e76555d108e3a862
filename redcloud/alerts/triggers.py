"""Which 自流程化 alerts fire on a logical date, from the verdicts gold computed (pure functions, no IO).

Gold decides every rule (:mod:`redcloud.rules`, ``[rules]``): who is obligated to answer 学习问答,
when a miss becomes a reminder and an escalation, when a 帮扶 project enters 督办预警, 已逾期 or
逾期注销, when a 驻村 assignment needs a reminder. This module only reads those columns and turns
them into :class:`Alert` objects with recipients and evidence; the stage (:mod:`redcloud.alerts`)
writes ``gold/alerts`` rows and outbox messages.

Alerts:

- ``learning_reminder`` (reminder): ``fct_learning_daily.reminder_due`` on the day. One alert per
  miss streak (``since`` = ``miss_streak_start``); the person gets one message per missed working day.
- ``learning_escalation`` (escalation): ``escalation_due`` on the day; sent once per streak to the
  head of the cadre's unit party organisation and to 市委党建办.
- ``project_warning`` (warning, 督办预警) / ``project_overdue`` (escalation, 已逾期): the project's
  lifecycle state on the day (``fct_project_lifecycle``), ``since`` = the day the state began.
- ``project_closure`` (closure, 自动注销): the project entered 已完成 or 逾期注销 at most
  ``closure_lookback_days`` ago; announced once.
- ``project_report`` (report, 信息报送): the day's count of projects per lifecycle state, to 市委党建办.
- ``village_reminder`` (reminder): ``fct_village_work_daily.reminder_due`` on the day; one alert
  (and one message) per streak.
- ``duty_record_reminder`` (reminder, 四位一体): ``fct_cadre_duty_month.reminder_due``: a month's
  岗位责任工作记实 missing past its due working day; one alert per cadre and month (``since`` = the
  due date), to the cadre, until the record arrives.
- ``leadership_vacancy`` (warning, 班子): ``fct_unit_leadership.vacancy_overdue`` on the logical date:
  a unit's 正职 post vacant for more than ``[rules] leadership_vacancy_workdays`` working days; one
  alert per vacancy (``since`` = the day it began), to 市委党建办.
- ``disclosure_reminder`` (reminder) / ``disclosure_escalation`` (escalation), 党务公开:
  ``fct_party_disclosure.reminder_due`` / ``escalation_due``: an item not published past its 时限;
  the reminder goes to the branch's head (书记), the escalation also to 市委党建办; one each per item.
- ``project_measure_missing`` (warning): ``fct_project_support.measures_missing``: a running 帮扶
  project with no 帮扶措施 past its due working day; once per project, to the responsible cadre.
- ``training_shortfall`` (warning, 干部调训): ``fct_cadre_training_year.shortfall_warning``: a cadre
  short of the year's 学时 in its last working days; once per cadre and year (``since`` = the first
  day of the warning window), to the cadre.
- ``question_reminder`` (reminder, 解决疑难问题): ``fct_member_question.reminder_due``: a member's
  question open past its 时限; once per question, to the branch's head.
- ``volunteer_match_reminder`` (reminder, 志愿服务超市): ``fct_volunteer_need.reminder_due``: a
  published need unmatched past its 时限; once per need, to the publishing branch's head.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

import pandas as pd

from redcloud.rules.vocab import (
    ALERT_LEVELS,
    ALERT_RULES,
    COMPLETED,
    DEADLINE_WARNING,
    EXPIRED,
    OVERDUE,
    PROJECT_STATES,
)

RULE_TEXT = ALERT_RULES
LEVEL_TEXT = ALERT_LEVELS
CLOSURE_REASON = {COMPLETED: COMPLETED, EXPIRED: "逾期未完成"}   # why a project left the 督办 list


@dataclass(frozen=True)
class Recipient:
    address: str
    name: str
    role: str   # self | org_head | party_office


@dataclass
class Alert:
    rule: str
    level: str              # reminder | warning | escalation | closure | report
    subject_type: str       # cadre | project | assignment | city
    subject_id: str
    subject_name: str
    since: dt.date          # the day the condition started
    recipients: list[Recipient]
    evidence: dict
    message_key: str = ""   # "" = one message per alert and recipient; a date = one per that date
    facts: dict = field(default_factory=dict)   # what the message text needs

    @property
    def alert_id(self) -> str:
        return alert_id(self.rule, self.subject_type, self.subject_id, self.since)


def alert_id(rule: str, subject_type: str, subject_id: str, since: dt.date) -> str:
    raw = f"{rule}|{subject_type}:{subject_id}|{since.isoformat()}"
    return "al-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def message_id(alert_id_: str, recipient: str, key: str = "") -> str:
    raw = f"{alert_id_}|{recipient}|{key}"
    return "msg-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def evidence_json(ev: dict) -> str:
    def conv(o):
        if isinstance(o, (dt.date, dt.datetime)):
            return o.isoformat()
        if hasattr(o, "item"):
            return o.item()
        raise TypeError(type(o))
    return json.dumps(ev, ensure_ascii=False, sort_keys=True, default=conv)


# ---------------------------------------------------------------------------------------------
# 学习问答
# ---------------------------------------------------------------------------------------------

def learning_alerts(rows: pd.DataFrame, day: dt.date, escalate_after: int, cadres: pd.DataFrame,
                    heads: dict[int, Recipient], party_office: Recipient, domain: str) -> list[Alert]:
    """Alerts from ``gold/fct_learning_daily`` rows of the cadres with ``reminder_due`` on ``day``:
    each cadre's rows from its ``miss_streak_start`` to ``day`` (columns cadre_id, member_id,
    work_date, rank, miss_streak, miss_streak_start, reminder_due, escalation_due, escalated_on).
    ``cadres``: cadre_id, cadre_name, unit_org_id, unit_name, position; ``heads``: cadre_id -> head
    of the cadre's unit party organisation. ``escalate_after`` only words the message."""
    out: list[Alert] = []
    if rows.empty:
        return out
    today = rows[(rows["work_date"] == day) & rows["reminder_due"].astype(bool)]
    info = cadres.set_index("cadre_id")
    for row in today.itertuples(index=False):
        cid = int(row.cadre_id)
        since = row.miss_streak_start
        missed = sorted(d for d in rows.loc[rows["cadre_id"] == cid, "work_date"] if since <= d <= day)
        c = info.loc[cid] if cid in info.index else None
        name = str(c["cadre_name"]) if c is not None else f"干部{cid}"
        unit = str(c["unit_name"]) if c is not None else ""
        streak = int(row.miss_streak)
        ev = {"missed_dates": missed, "streak": streak, "rank": row.rank, "member_id": int(row.member_id),
              "source": "gold/fct_learning_daily"}
        facts = {"name": name, "unit": unit, "rank": row.rank, "streak": streak, "since": since, "missed": missed,
                 "escalate_after": escalate_after}
        me = cadre_recipient(cid, name, domain)
        out.append(Alert("learning_reminder", "reminder", "cadre", str(cid), name, since, [me], ev,
                         message_key=day.isoformat(), facts=facts))
        if bool(row.escalation_due):
            rcpt = [r for r in (heads.get(cid), party_office) if r is not None]
            out.append(Alert("learning_escalation", "escalation", "cadre", str(cid), name, since, rcpt,
                             {**ev, "escalated_on": row.escalated_on, "escalate_after": escalate_after},
                             facts={**facts, "escalated_on": row.escalated_on}))
    return out


# ---------------------------------------------------------------------------------------------
# recipients
# ---------------------------------------------------------------------------------------------

def cadre_recipient(cadre_id: int, name: str, domain: str) -> Recipient:
    return Recipient(f"cadre-{cadre_id}@{domain}", name, "self")


def org_heads(meetings: pd.DataFrame, members: pd.DataFrame, orgs: pd.DataFrame, day: dt.date,
              lookback_days: int = 365) -> pd.DataFrame:
    """Head (书记) of each party organisation: the member who hosted most of its meetings in the
    ``lookback_days`` before ``day`` (ties: lowest member_id) — the sources have no secretary
    field, and meetings are hosted by the branch secretary. Columns: org_id, head_member_id,
    head_name, meetings_hosted."""
    m = meetings[(meetings["meeting_date"] <= day)
                 & (meetings["meeting_date"] > day - dt.timedelta(days=lookback_days))
                 & meetings["host_member_id"].notna()]
    if m.empty:
        return pd.DataFrame(columns=["org_id", "head_member_id", "head_name", "meetings_hosted"])
    cnt = (m.groupby(["org_id", "host_member_id"]).size().rename("meetings_hosted").reset_index()
           .sort_values(["org_id", "meetings_hosted", "host_member_id"], ascending=[True, False, True])
           .drop_duplicates("org_id"))
    cnt = cnt.rename(columns={"host_member_id": "head_member_id"})
    cnt["head_member_id"] = cnt["head_member_id"].astype("int64")
    names = members[["member_id", "member_name"]].rename(columns={"member_id": "head_member_id",
                                                                  "member_name": "head_name"})
    return cnt.merge(names, on="head_member_id", how="left")[["org_id", "head_member_id", "head_name",
                                                              "meetings_hosted"]]


def head_recipient(org_id: int, exclude_member: int | None, heads: pd.DataFrame, orgs: pd.DataFrame,
                   domain: str) -> Recipient | None:
    """The head of ``org_id``'s party organisation; when that is the person themself (or unknown),
    the head of the parent organisation, up the tree; at the top, the organisation's mailbox."""
    h = heads.set_index("org_id")
    o = orgs.set_index("org_id")
    cur = org_id
    for _ in range(8):
        if cur in h.index:
            r = h.loc[cur]
            if int(r["head_member_id"]) != (exclude_member or -1):
                nm = r["head_name"] if isinstance(r["head_name"], str) else f"党员{int(r['head_member_id'])}"
                org_name = o.loc[cur, "org_name"] if cur in o.index else ""
                return Recipient(f"member-{int(r['head_member_id'])}@{domain}", f"{org_name}书记{nm}", "org_head")
        parent = o.loc[cur, "parent_org_id"] if cur in o.index else None
        if parent is None or pd.isna(parent):
            break
        cur = int(parent)
    if org_id in o.index:
        parent = o.loc[org_id, "parent_org_id"]
        target = int(parent) if parent is not None and not pd.isna(parent) else org_id
        return Recipient(f"org-{target}@{domain}", f"{o.loc[target, 'org_name']}负责人", "org_head")
    return None


# ---------------------------------------------------------------------------------------------
# 精准帮扶 projects
# ---------------------------------------------------------------------------------------------

def project_alerts(projects: pd.DataFrame, day: dt.date, closure_lookback_days: int, cadre_names: dict[int, str],
                   village_heads: dict[int, Recipient], party_office: Recipient, domain: str,
                   report: bool = True) -> list[Alert]:
    """Alerts from each 帮扶 project's lifecycle state on ``day`` (``gold/fct_project_lifecycle``, the
    row with valid_from <= day < valid_to), joined to its attributes (``gold/fct_project_status``):
    project_id, project_name, village_org_id, cadre_id, category, start_date, deadline, state,
    state_since."""
    out: list[Alert] = []
    counts = {s: 0 for s in PROJECT_STATES}
    new_today = {"project_warning": 0, "project_overdue": 0, "project_closure": 0}
    overdue_list = []
    for r in projects.itertuples(index=False):
        counts[r.state] += 1
        cid = int(r.cadre_id) if not pd.isna(r.cadre_id) else None
        cname = cadre_names.get(cid, f"干部{cid}") if cid is not None else "未指定"
        resp = [cadre_recipient(cid, cname, domain)] if cid is not None else []
        since = r.state_since
        base_ev = {"project_id": int(r.project_id), "deadline": r.deadline, "start_date": r.start_date,
                   "state": r.state, "state_since": since, "village_org_id": int(r.village_org_id),
                   "cadre_id": cid, "category": r.category, "source": "gold/fct_project_lifecycle"}
        facts = {"project": r.project_name, "cadre": cname, "deadline": r.deadline, "category": r.category}
        pid = str(int(r.project_id))
        if r.state == OVERDUE:
            overdue_days = (day - r.deadline).days
            overdue_list.append(int(r.project_id))
            rcpt = resp + [x for x in (village_heads.get(int(r.village_org_id)), party_office) if x]
            out.append(Alert("project_overdue", "escalation", "project", pid, r.project_name, since, rcpt,
                             {**base_ev, "overdue_days": overdue_days}, facts={**facts, "overdue_days": overdue_days}))
            new_today["project_overdue"] += since == day
        elif r.state == DEADLINE_WARNING:
            to_dl = (r.deadline - day).days
            out.append(Alert("project_warning", "warning", "project", pid, r.project_name, since, resp,
                             {**base_ev, "days_to_deadline": to_dl}, facts={**facts, "days_to_deadline": to_dl}))
            new_today["project_warning"] += since == day
        elif r.state in CLOSURE_REASON and (day - since).days <= closure_lookback_days:
            reason = CLOSURE_REASON[r.state]
            out.append(Alert("project_closure", "closure", "project", pid, r.project_name, since, resp,
                             {**base_ev, "closed_on": since, "reason": reason},
                             facts={**facts, "closed_on": since, "reason": reason}))
            new_today["project_closure"] += since == day
    if report:
        out.append(Alert("project_report", "report", "city", "all", "全市帮扶项目", day, [party_office],
                         {"counts": counts, "new_today": new_today, "overdue_project_ids": sorted(overdue_list),
                          "projects": int(len(projects)), "source": "gold/fct_project_lifecycle"},
                         facts={"counts": counts, "new_today": new_today, "projects": int(len(projects))}))
    return out


# ---------------------------------------------------------------------------------------------
# 驻村
# ---------------------------------------------------------------------------------------------

def village_alerts(rows: pd.DataFrame, day: dt.date, cadre_names: dict[int, str], village_names: dict[int, str],
                   domain: str) -> list[Alert]:
    """From ``gold/fct_village_work_daily`` rows of the assignments with ``reminder_due`` on ``day``
    (each from its ``miss_streak_start`` to ``day``): one reminder per streak."""
    out: list[Alert] = []
    if rows.empty:
        return out
    today = rows[(rows["work_date"] == day) & rows["reminder_due"].astype(bool)]
    for r in today.itertuples(index=False):
        aid, cid = int(r.assignment_id), int(r.cadre_id)
        since = r.miss_streak_start
        missed = sorted(d for d in rows.loc[rows["assignment_id"] == aid, "work_date"] if since <= d <= day)
        name = cadre_names.get(cid, f"干部{cid}")
        village = village_names.get(int(r.village_org_id), str(r.village_org_id))
        streak = int(r.days_without_record)
        ev = {"assignment_id": aid, "cadre_id": cid, "village_org_id": int(r.village_org_id),
              "missed_dates": missed, "streak": streak, "source": "gold/fct_village_work_daily"}
        out.append(Alert("village_reminder", "reminder", "assignment", str(aid), f"{name}（{village}）",
                         since, [cadre_recipient(cid, name, domain)], ev,
                         facts={"name": name, "village": village, "streak": streak, "since": since,
                                "missed": missed, "role": r.role}))
    return out


def duty_alerts(rows: pd.DataFrame, cadre_names: dict[int, str], unit_names: dict[int, str], due_workday: int,
                domain: str) -> list[Alert]:
    """From ``gold/fct_cadre_duty_month`` rows with ``reminder_due`` (columns cadre_id, month, unit_org_id,
    due_date, workdays_overdue): one reminder per cadre and month. ``due_workday`` only words the message."""
    out: list[Alert] = []
    for r in rows.sort_values(["cadre_id", "month"]).itertuples(index=False):
        cid = int(r.cadre_id)
        name = cadre_names.get(cid, f"干部{cid}")
        unit = unit_names.get(int(r.unit_org_id), "") if not pd.isna(r.unit_org_id) else ""
        month = f"{r.month.year}年{r.month.month}月"
        ev = {"cadre_id": cid, "month": r.month, "due_date": r.due_date, "workdays_overdue": int(r.workdays_overdue),
              "source": "gold/fct_cadre_duty_month"}
        out.append(Alert("duty_record_reminder", "reminder", "cadre", str(cid),
                         f"{name}（{month}）", r.due_date, [cadre_recipient(cid, name, domain)], ev,
                         facts={"name": name, "unit": unit, "month": month, "due_date": r.due_date,
                                "workdays_overdue": int(r.workdays_overdue), "due_workday": due_workday}))
    return out


def leadership_alerts(rows: pd.DataFrame, org_names: dict[int, str], party_office: Recipient,
                      vacancy_days: int) -> list[Alert]:
    """From ``gold/fct_unit_leadership`` rows of the logical date with ``vacancy_overdue`` (columns
    unit_org_id, chief_vacant_since, vacancy_workdays, leaders): one warning per vacancy."""
    out: list[Alert] = []
    for r in rows.sort_values("unit_org_id").itertuples(index=False):
        uid = int(r.unit_org_id)
        unit = org_names.get(uid, f"单位{uid}")
        ev = {"unit_org_id": uid, "chief_vacant_since": r.chief_vacant_since, "vacancy_workdays": int(r.vacancy_workdays),
              "leaders": int(r.leaders), "source": "gold/fct_unit_leadership"}
        out.append(Alert("leadership_vacancy", "warning", "org", str(uid), unit, r.chief_vacant_since, [party_office],
                         ev, facts={"unit": unit, "since": r.chief_vacant_since, "workdays": int(r.vacancy_workdays),
                                    "leaders": int(r.leaders), "limit": vacancy_days}))
    return out


def disclosure_alerts(rows: pd.DataFrame, heads: dict[int, Recipient], party_office: Recipient,
                      org_names: dict[int, str], escalate_after: int) -> list[Alert]:
    """From ``gold/fct_party_disclosure`` rows with ``reminder_due`` (columns disclosure_id, org_id,
    item_type, title, event_date, due_date, workdays_overdue, escalation_due)."""
    out: list[Alert] = []
    for r in rows.sort_values("disclosure_id").itertuples(index=False):
        org = int(r.org_id)
        head = heads.get(org)
        ev = {"disclosure_id": int(r.disclosure_id), "org_id": org, "item_type": r.item_type,
              "event_date": r.event_date, "due_date": r.due_date, "workdays_overdue": int(r.workdays_overdue),
              "source": "gold/fct_party_disclosure"}
        facts = {"org": org_names.get(org, f"组织{org}"), "item": r.item_type, "title": r.title, "due_date": r.due_date,
                 "workdays_overdue": int(r.workdays_overdue), "escalate_after": escalate_after}
        sid = str(int(r.disclosure_id))
        out.append(Alert("disclosure_reminder", "reminder", "disclosure", sid, r.title, r.due_date,
                         [x for x in (head,) if x], ev, facts=facts))
        if bool(r.escalation_due):
            out.append(Alert("disclosure_escalation", "escalation", "disclosure", sid, r.title, r.due_date,
                             [x for x in (head, party_office) if x], ev, facts=facts))
    return out


def measure_alerts(rows: pd.DataFrame, cadre_names: dict[int, str], domain: str, due_workdays: int) -> list[Alert]:
    """From ``gold/fct_project_support`` rows with ``measures_missing`` (columns project_id, project_name,
    cadre_id, village_org_id, start_date, measure_due_date, workdays_without_measure)."""
    out: list[Alert] = []
    for r in rows.sort_values("project_id").itertuples(index=False):
        cid = int(r.cadre_id) if not pd.isna(r.cadre_id) else None
        name = cadre_names.get(cid, f"干部{cid}") if cid is not None else "未指定"
        ev = {"project_id": int(r.project_id), "start_date": r.start_date, "measure_due_date": r.measure_due_date,
              "workdays_without_measure": int(r.workdays_without_measure), "cadre_id": cid,
              "source": "gold/fct_project_support"}
        out.append(Alert("project_measure_missing", "warning", "project", str(int(r.project_id)), r.project_name,
                         r.measure_due_date, [cadre_recipient(cid, name, domain)] if cid is not None else [], ev,
                         facts={"project": r.project_name, "cadre": name, "start_date": r.start_date,
                                "due_workdays": due_workdays}))
    return [a for a in out if a.recipients]


def training_alerts(rows: pd.DataFrame, cadre_names: dict[int, str], domain: str) -> list[Alert]:
    """From ``gold/fct_cadre_training_year`` rows with ``shortfall_warning`` (columns cadre_id, year, hours,
    hours_required, hours_short, remaining_workdays, warning_from)."""
    out: list[Alert] = []
    for r in rows.sort_values(["cadre_id", "year"]).itertuples(index=False):
        cid = int(r.cadre_id)
        name = cadre_names.get(cid, f"干部{cid}")
        ev = {"cadre_id": cid, "year": int(r.year), "hours": float(r.hours), "hours_required": float(r.hours_required),
              "remaining_workdays": int(r.remaining_workdays), "source": "gold/fct_cadre_training_year"}
        out.append(Alert("training_shortfall", "warning", "cadre", str(cid), f"{name}（{int(r.year)}年调训）",
                         r.warning_from, [cadre_recipient(cid, name, domain)], ev,
                         facts={"name": name, "year": int(r.year), "hours": float(r.hours),
                                "required": float(r.hours_required), "short": float(r.hours_short),
                                "left": int(r.remaining_workdays)}))
    return out


def question_alerts(rows: pd.DataFrame, heads: dict[int, Recipient], org_names: dict[int, str],
                    answer_workdays: int) -> list[Alert]:
    """From ``gold/fct_member_question`` rows with ``reminder_due`` (columns question_id, org_id, category,
    asked_on, due_date, workdays_overdue)."""
    out: list[Alert] = []
    for r in rows.sort_values("question_id").itertuples(index=False):
        org = int(r.org_id)
        head = heads.get(org)
        if head is None:
            continue
        ev = {"question_id": int(r.question_id), "org_id": org, "category": r.category, "asked_on": r.asked_on,
              "due_date": r.due_date, "workdays_overdue": int(r.workdays_overdue), "source": "gold/fct_member_question"}
        out.append(Alert("question_reminder", "reminder", "question", str(int(r.question_id)),
                         f"{org_names.get(org, '')}党员提问（{r.category}）", r.due_date, [head], ev,
                         facts={"org": org_names.get(org, f"组织{org}"), "category": r.category, "asked_on": r.asked_on,
                                "due_date": r.due_date, "overdue": int(r.workdays_overdue), "limit": answer_workdays}))
    return out


def volunteer_alerts(rows: pd.DataFrame, heads: dict[int, Recipient], match_workdays: int) -> list[Alert]:
    """From ``gold/fct_volunteer_need`` rows with ``reminder_due`` (columns need_id, org_id, title,
    published_on, match_due_date, workdays_overdue)."""
    out: list[Alert] = []
    for r in rows.sort_values("need_id").itertuples(index=False):
        head = heads.get(int(r.org_id))
        if head is None:
            continue
        ev = {"need_id": int(r.need_id), "org_id": int(r.org_id), "published_on": r.published_on,
              "match_due_date": r.match_due_date, "workdays_overdue": int(r.workdays_overdue),
              "source": "gold/fct_volunteer_need"}
        out.append(Alert("volunteer_match_reminder", "reminder", "volunteer_need", str(int(r.need_id)), r.title,
                         r.match_due_date, [head], ev,
                         facts={"title": r.title, "published_on": r.published_on, "overdue": int(r.workdays_overdue),
                                "limit": match_workdays}))
    return out


def village_timeline(daily: pd.DataFrame, assignments: pd.DataFrame, day: dt.date,
                     cadre_names: dict[int, str], village_names: dict[int, str]) -> pd.DataFrame:
    """驻村工作时间轴: one row per cadre, assignment and event up to ``day``: 派驻开始, each working
    day's 工作记实 (or 未记实), 提醒 on the day a miss streak first has ``reminder_due``, 派驻结束.

    Columns: cadre_id, cadre_name, assignment_id, village_org_id, village_name, role, event_date,
    event_seq, event_type, detail, record_ids, photo_count, signed_in, days_without_record."""
    rows = []
    d = daily[daily["work_date"] <= day]
    for a in assignments.itertuples(index=False):
        if a.start_date is None or a.start_date > day:
            continue
        cid, vid = int(a.cadre_id), int(a.village_org_id)
        base = dict(cadre_id=cid, cadre_name=cadre_names.get(cid, f"干部{cid}"), assignment_id=int(a.assignment_id),
                    village_org_id=vid, village_name=village_names.get(vid, str(vid)), role=a.role)
        rows.append({**base, "event_date": a.start_date, "event_seq": 0, "event_type": "派驻开始",
                     "detail": f"{base['cadre_name']}以{a.role}身份派驻{base['village_name']}", "record_ids": [],
                     "photo_count": 0, "signed_in": False, "days_without_record": 0})
        ad = d[d["assignment_id"] == a.assignment_id].sort_values("work_date")
        due_before = False
        for r in ad.itertuples(index=False):
            ids = [int(x) for x in (r.record_ids if r.record_ids is not None else [])]
            if r.has_record:
                sign = "已签到" if r.signed_in else "未签到"
                detail = f"提交每日工作记实{int(r.record_count)}条，照片{int(r.photo_count)}张，{sign}"
                et = "工作记实"
            else:
                detail = f"工作日无工作记实（连续{int(r.days_without_record)}个工作日）"
                et = "未记实"
            if r.is_makeup_workday:
                detail += "（调休工作日）"
            rows.append({**base, "event_date": r.work_date, "event_seq": 1, "event_type": et, "detail": detail,
                         "record_ids": ids, "photo_count": int(r.photo_count), "signed_in": bool(r.signed_in),
                         "days_without_record": int(r.days_without_record)})
            due = bool(r.reminder_due)
            if due and not due_before:   # the day the streak became a reminder
                n = int(r.days_without_record)
                rows.append({**base, "event_date": r.work_date, "event_seq": 2, "event_type": "提醒",
                             "detail": f"连续{n}个工作日无工作记实，已向本人发送提醒", "record_ids": [],
                             "photo_count": 0, "signed_in": False, "days_without_record": n})
            due_before = due
        if a.end_date is not None and not pd.isna(a.end_date) and a.end_date <= day:
            rows.append({**base, "event_date": a.end_date, "event_seq": 3, "event_type": "派驻结束",
                         "detail": f"{base['cadre_name']}结束在{base['village_name']}的驻村工作", "record_ids": [],
                         "photo_count": 0, "signed_in": False, "days_without_record": 0})
    cols = ["cadre_id", "cadre_name", "assignment_id", "village_org_id", "village_name", "role", "event_date",
            "event_seq", "event_type", "detail", "record_ids", "photo_count", "signed_in", "days_without_record"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["cadre_id", "assignment_id", "event_date", "event_seq"], kind="stable").reset_index(drop=True)
