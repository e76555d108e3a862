"""自流程化 rules as pure functions over small pandas frames (gold is small; no IO here).

Each rule returns :class:`Alert` objects describing a condition that holds on the logical date
``day``; the stage (:mod:`redcloud.alerts`) turns them into ``gold/alerts`` rows and outbox
messages. Working days are China's official calendar with 调休 (:mod:`redcloud.workdays`); a date
outside the calendar's known years raises :class:`redcloud.workdays.CalendarUnknownError`.

Rules:

- ``learning_reminder`` (reminder): an obligated cadre (县处级 and above; 科级 too when configured)
  missed 学习问答 on the working day ``day``. One alert per miss streak (``since`` = first missed
  working day); the person gets one reminder message per missed working day.
- ``learning_escalation`` (escalation): the miss streak reached ``escalate_after`` consecutive
  working days (default 5). Sent once per streak to the head of the cadre's unit party
  organisation and to 市委党建办. An answer resets the streak (a new streak is a new alert).
- ``project_warning`` (warning, 督办预警): an open 帮扶 project due within ``warn_days`` days.
- ``project_overdue`` (escalation): an open project past its deadline (until it is closed).
- ``project_closure`` (closure, 自动注销): a project completed, or expired ``expire_after_days``
  after its deadline without completion; announced once, within ``closure_lookback_days``.
- ``project_report`` (report, 信息报送): the day's summary of all 帮扶 projects, to 市委党建办.
- ``village_reminder`` (reminder): a 驻村 assignment without a 每日工作记实 for
  ``village_after`` consecutive working days; one alert (and one message) per streak.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field

import pandas as pd

from redcloud import workdays

# cadre levels from low to high; a rank is "<level>正职"/"<level>副职"
LEVELS = ("乡科级", "县处级", "厅局级", "省部级")
LEVEL_ALIASES = {"科级": "乡科级", "乡科级": "乡科级", "处级": "县处级", "县处级": "县处级",
                 "厅级": "厅局级", "厅局级": "厅局级", "省部级": "省部级"}

RULE_TEXT = {
    "learning_reminder": "学习问答未完成提醒",
    "learning_escalation": "学习问答连续未完成督办",
    "project_warning": "帮扶项目督办预警",
    "project_overdue": "帮扶项目逾期督办",
    "project_closure": "帮扶项目自动注销",
    "project_report": "帮扶项目信息报送",
    "village_reminder": "驻村每日工作记实提醒",
}
LEVEL_TEXT = {"reminder": "提醒", "warning": "预警", "escalation": "督办", "closure": "注销", "report": "报送"}


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
# levels
# ---------------------------------------------------------------------------------------------

def rank_level(rank: str | None) -> str | None:
    if not rank:
        return None
    for lv in LEVELS:
        if rank.startswith(lv):
            return lv
    return None


def is_obligated(rank: str | None, min_level: str) -> bool:
    """学习问答 obligation: the rank's level is ``min_level`` or above (县处级 by default)."""
    lv = rank_level(rank)
    if min_level not in LEVEL_ALIASES:
        raise ValueError(f"alerts.learning_min_level {min_level!r}: expected one of {sorted(LEVEL_ALIASES)}")
    return lv is not None and LEVELS.index(lv) >= LEVELS.index(LEVEL_ALIASES[min_level])


# ---------------------------------------------------------------------------------------------
# 学习问答
# ---------------------------------------------------------------------------------------------

def learning_days(start: dt.date, day: dt.date, answered_on: set[dt.date] | frozenset) -> pd.DataFrame:
    """Hand-built obligation rows (work_date, answered) for every official working day in
    [start, day]; raises CalendarUnknownError outside the calendar's known years."""
    workdays.is_workday(day)  # fail loudly even when start > day
    days = workdays.workdays_between(start, day)
    return pd.DataFrame({"work_date": list(days), "answered": [d in answered_on for d in days]})


def trailing_misses(rows: pd.DataFrame, day: dt.date) -> list[dt.date] | None:
    """The current miss streak on ``day``: working days without an answer, consecutive and ending
    on ``day``, oldest first. ``rows`` hold one row per working day of the obligation
    (work_date, answered) — weekends and holidays are simply not rows, 调休 days are.
    None when ``day`` is not a row (not a working day of the obligation)."""
    workdays.is_workday(day)
    r = rows[rows["work_date"] <= day].sort_values("work_date")
    if r.empty or r["work_date"].iloc[-1] != day:
        return None
    answered = r["answered"].to_numpy()
    dates = r["work_date"].tolist()
    n = 0
    while n < len(answered) and not answered[len(answered) - 1 - n]:
        n += 1
    return dates[len(dates) - n:]


def learning_state(rows: pd.DataFrame, day: dt.date, escalate_after: int = 5) -> dict:
    """{"streak", "missed", "reminder", "escalation", "since", "escalated_on"} on ``day``."""
    missed = trailing_misses(rows, day) or []
    n = len(missed)
    return {"streak": n, "missed": missed, "reminder": n >= 1, "escalation": n >= escalate_after,
            "since": missed[0] if missed else None,
            "escalated_on": missed[escalate_after - 1] if n >= escalate_after else None}


def learning_alerts(daily: pd.DataFrame, day: dt.date, min_level: str, escalate_after: int,
                    cadres: pd.DataFrame, heads: dict[int, Recipient], party_office: Recipient,
                    domain: str) -> list[Alert]:
    """Alerts from ``gold/fct_learning_daily`` rows (cadre_id, member_id, work_date, answered,
    rank; up to ``day``). ``cadres``: cadre_id, cadre_name, unit_org_id, unit_name, position;
    ``heads``: cadre_id -> head of the cadre's unit party organisation."""
    out: list[Alert] = []
    if daily.empty:
        return out
    today = daily[daily["work_date"] == day]
    info = cadres.set_index("cadre_id")
    for row in today.itertuples(index=False):
        if not is_obligated(row.rank, min_level):
            continue
        rows = daily[daily["cadre_id"] == row.cadre_id][["work_date", "answered"]]
        st = learning_state(rows, day, escalate_after)
        if not st["reminder"]:
            continue
        cid = int(row.cadre_id)
        c = info.loc[cid] if cid in info.index else None
        name = str(c["cadre_name"]) if c is not None else f"干部{cid}"
        unit = str(c["unit_name"]) if c is not None else ""
        ev = {"missed_dates": st["missed"], "streak": st["streak"], "rank": row.rank,
              "member_id": int(row.member_id), "source": "gold/fct_learning_daily"}
        facts = {"name": name, "unit": unit, "rank": row.rank, "streak": st["streak"],
                 "since": st["since"], "missed": st["missed"], "escalate_after": escalate_after}
        me = cadre_recipient(cid, name, domain)
        out.append(Alert("learning_reminder", "reminder", "cadre", str(cid), name, st["since"], [me], ev,
                         message_key=day.isoformat(), facts=facts))
        if st["escalation"]:
            rcpt = [r for r in (heads.get(cid), party_office) if r is not None]
            out.append(Alert("learning_escalation", "escalation", "cadre", str(cid), name, st["since"], rcpt,
                             {**ev, "escalated_on": st["escalated_on"], "escalate_after": escalate_after},
                             facts={**facts, "escalated_on": st["escalated_on"]}))
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

def project_alerts(projects: pd.DataFrame, day: dt.date, warn_days: int, expire_after_days: int,
                   closure_lookback_days: int, cadre_names: dict[int, str], village_heads: dict[int, Recipient],
                   party_office: Recipient, domain: str, report: bool = True) -> list[Alert]:
    """Alerts from ``gold/fct_project_status`` rows, re-evaluated as of ``day`` from start_date,
    deadline and completed_date (so any logical date up to the gold date gives the same answer).

    - 督办预警: open, 0 <= deadline - day <= warn_days (since = deadline - warn_days, or start);
    - 逾期督办: open and past the deadline, not yet expired (since = deadline + 1);
    - 自动注销: completed (closed on completed_date) or expired (closed on deadline +
      expire_after_days); announced while the closing date is within closure_lookback_days;
    - 信息报送: one summary per day to 市委党建办 (counts by status, new items today).
    """
    out: list[Alert] = []
    p = projects[projects["start_date"] <= day].copy()
    counts = {"进行中": 0, "督办预警": 0, "已逾期": 0, "已完成": 0, "逾期注销": 0}
    new_today = {"project_warning": 0, "project_overdue": 0, "project_closure": 0}
    overdue_list = []
    for r in p.itertuples(index=False):
        cid = int(r.cadre_id) if not pd.isna(r.cadre_id) else None
        cname = cadre_names.get(cid, f"干部{cid}") if cid is not None else "未指定"
        resp = [cadre_recipient(cid, cname, domain)] if cid is not None else []
        done = r.completed_date is not None and not pd.isna(r.completed_date) and r.completed_date <= day
        to_dl = (r.deadline - day).days
        expired_on = r.deadline + dt.timedelta(days=expire_after_days)
        base_ev = {"project_id": int(r.project_id), "deadline": r.deadline, "start_date": r.start_date,
                   "completed_date": r.completed_date if done else None, "village_org_id": int(r.village_org_id),
                   "cadre_id": cid, "category": r.category, "source": "gold/fct_project_status"}
        facts = {"project": r.project_name, "cadre": cname, "deadline": r.deadline, "category": r.category}
        pid = str(int(r.project_id))
        if done:
            counts["已完成"] += 1
            close_on, reason = r.completed_date, "已完成"
        elif day >= expired_on:
            counts["逾期注销"] += 1
            close_on, reason = expired_on, "逾期未完成"
        else:
            close_on = None
            if to_dl < 0:
                counts["已逾期"] += 1
                since = r.deadline + dt.timedelta(days=1)
                overdue_list.append(int(r.project_id))
                rcpt = resp + [x for x in (village_heads.get(int(r.village_org_id)), party_office) if x]
                out.append(Alert("project_overdue", "escalation", "project", pid, r.project_name, since, rcpt,
                                 {**base_ev, "overdue_days": -to_dl},
                                 facts={**facts, "overdue_days": -to_dl}))
                new_today["project_overdue"] += since == day
            elif to_dl <= warn_days:
                counts["督办预警"] += 1
                since = max(r.deadline - dt.timedelta(days=warn_days), r.start_date)
                out.append(Alert("project_warning", "warning", "project", pid, r.project_name, since, resp,
                                 {**base_ev, "days_to_deadline": to_dl, "warn_days": warn_days},
                                 facts={**facts, "days_to_deadline": to_dl}))
                new_today["project_warning"] += since == day
            else:
                counts["进行中"] += 1
        if close_on is not None and (day - close_on).days <= closure_lookback_days:
            out.append(Alert("project_closure", "closure", "project", pid, r.project_name, close_on, resp,
                             {**base_ev, "closed_on": close_on, "reason": reason},
                             facts={**facts, "closed_on": close_on, "reason": reason}))
            new_today["project_closure"] += close_on == day
    if report:
        out.append(Alert("project_report", "report", "city", "all", "全市帮扶项目", day, [party_office],
                         {"counts": counts, "new_today": new_today, "overdue_project_ids": sorted(overdue_list),
                          "projects": int(len(p)), "source": "gold/fct_project_status"},
                         facts={"counts": counts, "new_today": new_today, "projects": int(len(p))}))
    return out


# ---------------------------------------------------------------------------------------------
# 驻村
# ---------------------------------------------------------------------------------------------

def village_streak(rows: pd.DataFrame, day: dt.date) -> list[dt.date] | None:
    """Working days without a 每日工作记实, consecutive and ending on ``day`` (rows: work_date,
    has_record for one assignment)."""
    return trailing_misses(rows.rename(columns={"has_record": "answered"}), day)


def village_alerts(daily: pd.DataFrame, day: dt.date, after: int, cadre_names: dict[int, str],
                   village_names: dict[int, str], domain: str) -> list[Alert]:
    """From ``gold/fct_village_work_daily`` rows up to ``day``: a reminder once an assignment has
    gone ``after`` consecutive working days without a record (one alert per streak)."""
    out: list[Alert] = []
    if daily.empty:
        return out
    for aid in daily.loc[daily["work_date"] == day, "assignment_id"].unique():
        rows = daily[daily["assignment_id"] == aid]
        missed = village_streak(rows[["work_date", "has_record"]], day) or []
        if len(missed) < after:
            continue
        r = rows.iloc[0]
        cid = int(r["cadre_id"])
        name = cadre_names.get(cid, f"干部{cid}")
        village = village_names.get(int(r["village_org_id"]), str(r["village_org_id"]))
        ev = {"assignment_id": int(aid), "cadre_id": cid, "village_org_id": int(r["village_org_id"]),
              "missed_dates": missed, "streak": len(missed), "source": "gold/fct_village_work_daily"}
        out.append(Alert("village_reminder", "reminder", "assignment", str(int(aid)), f"{name}（{village}）",
                         missed[0], [cadre_recipient(cid, name, domain)], ev,
                         facts={"name": name, "village": village, "streak": len(missed), "since": missed[0],
                                "missed": missed, "role": r["role"]}))
    return out


def village_timeline(daily: pd.DataFrame, assignments: pd.DataFrame, day: dt.date, after: int,
                     cadre_names: dict[int, str], village_names: dict[int, str]) -> pd.DataFrame:
    """驻村工作时间轴: one row per cadre, assignment and event up to ``day``: 派驻开始, each working
    day's 工作记实 (or 未记实), 提醒 on the day a miss streak reaches ``after``, 派驻结束.

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
            if int(r.days_without_record) == after:
                rows.append({**base, "event_date": r.work_date, "event_seq": 2, "event_type": "提醒",
                             "detail": f"连续{after}个工作日无工作记实，已向本人发送提醒", "record_ids": [],
                             "photo_count": 0, "signed_in": False, "days_without_record": int(r.days_without_record)})
        if a.end_date is not None and not pd.isna(a.end_date) and a.end_date <= day:
            rows.append({**base, "event_date": a.end_date, "event_seq": 3, "event_type": "派驻结束",
                         "detail": f"{base['cadre_name']}结束在{base['village_name']}的驻村工作", "record_ids": [],
                         "photo_count": 0, "signed_in": False, "days_without_record": 0})
    cols = ["cadre_id", "cadre_name", "assignment_id", "village_org_id", "village_name", "role", "event_date",
            "event_seq", "event_type", "detail", "record_ids", "photo_count", "signed_in", "days_without_record"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["cadre_id", "assignment_id", "event_date", "event_seq"], kind="stable").reset_index(drop=True)
