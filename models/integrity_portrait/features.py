"""Evidence and features of the integrity portrait (诚信画像) for cadres.

Evidence rows come from 数据铁笼 (complaints, overdue power operations), web penalties (行政处罚),
the enforcement list (失信被执行人), negative news, and the cadre system's discipline records. Every
record reaches a cadre only through identity fusion (``silver/person_links`` status ``linked``).

A forecast: features count the records dated up to a cut-off; the label is a discipline record (纪律处分,
the observed outcome) within the following ``HORIZON_DAYS``. Discipline is never a feature. The planted
``integrity_issue`` truth is read only for the final report.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from models import linked
from models.cadre_evaluation.features import GRADE_CODE
from models.common import Env
from redcloud.rules.vocab import INTEGRITY_TAGS, LEADING_RANKS

NEGATIVE_WORDS = ("违反", "违规", "问责", "失职", "拖延", "调查", "通报", "处分")
TAGS = INTEGRITY_TAGS
# feature -> 中文名
FEATURES: dict[str, str] = {
    "n_penalties": "行政处罚次数",
    "n_enforcement": "失信被执行次数",
    "n_negative_news": "负面新闻数",
    "n_complaints": "群众投诉数",
    "complaint_rate": "投诉率（每件事项）",
    "overdue_rate": "权力事项超期率",
    "n_weak_grades": "基本称职及以下次数",
    "mean_grade_code": "平均考核等次",
}
FEATURE_NAMES = list(FEATURES)
EVIDENCE_COLS = ["cadre_id", "tag", "source", "record_id", "record_date", "detail"]


def _dates(s) -> pd.Series:
    return pd.to_datetime(s, errors="coerce").dt.date


def _naive(s) -> pd.Series:
    """Instants as naive timestamps (the lake's zone), comparable with calendar days."""
    t = pd.to_datetime(s, errors="coerce")
    return t.dt.tz_localize(None) if t.dt.tz is not None else t


def evidence(env: Env, day: dt.date, complaints_min: int, overdue_min: int, complaint_rate: float = 0.10,
             overdue_rate: float = 0.30) -> pd.DataFrame:
    """One row per (cadre, tag, evidence record) up to ``day``; a tag exists only with its records."""
    parts = []
    pen = linked.web(env, "penalties", "notice_id", "web_penalty", ["decision_date", "reason", "authority"])
    parts.append(pd.DataFrame({"cadre_id": pen.cadre_id, "tag": TAGS["penalty"], "source": "web/penalties",
                               "record_id": pen.notice_id.astype(str), "record_date": _dates(pen.decision_date),
                               "detail": pen.authority.fillna("") + "：" + pen.reason.fillna("")}))
    enf = linked.web(env, "enforcement", "case_no", "web_enforcement", ["publish_date", "court", "obligation"])
    parts.append(pd.DataFrame({"cadre_id": enf.cadre_id, "tag": TAGS["enforcement"], "source": "web/enforcement",
                               "record_id": enf.case_no.astype(str), "record_date": _dates(enf.publish_date),
                               "detail": enf.court.fillna("") + "：" + enf.obligation.fillna("")}))
    news = linked.web(env, "news", "news_id", "web_news", ["published_date", "title"])
    negative = news.title.fillna("").map(lambda t: any(w in t for w in NEGATIVE_WORDS)).astype(bool)
    neg = news.loc[negative.to_numpy()]  # a mask, also when there is no news at all
    parts.append(pd.DataFrame({"cadre_id": neg.cadre_id, "tag": TAGS["news"], "source": "web/news",
                               "record_id": neg.news_id.astype(str), "record_date": _dates(neg.published_date),
                               "detail": neg.title.fillna("")}))
    cp = linked.ironcage(env, "complaints", ["complaint_id", "received_at", "category", "op_id"])
    parts.append(pd.DataFrame({"cadre_id": cp.cadre_id, "tag": TAGS["complaints"], "source": "ironcage/complaints",
                               "record_id": cp.complaint_id.astype(str), "record_date": _dates(cp.received_at),
                               "detail": cp.category.fillna("") + "（事项 " + cp.op_id.fillna("-") + "）"}))
    po = linked.ironcage(env, "power_operations", ["op_id", "received_at", "deadline", "completed_at", "item_name"])
    done, deadline = pd.to_datetime(po.completed_at), pd.to_datetime(po.deadline)
    over = po[(done.isna() & (deadline.dt.date < day)) | (done > deadline)]
    parts.append(pd.DataFrame({"cadre_id": over.cadre_id, "tag": TAGS["overdue"], "source": "ironcage/power_operations",
                               "record_id": over.op_id.astype(str), "record_date": _dates(over.deadline),
                               "detail": over.item_name.fillna("") + " 超过办理时限"}))
    disc = env.read("silver", "cadre_discipline")
    if disc is not None and len(disc):
        disc = disc[~disc.is_deleted.fillna(False).astype(bool)]
        parts.append(pd.DataFrame({"cadre_id": disc.cadre_id, "tag": TAGS["discipline"], "source": "cadre/cadre_discipline",
                                   "record_id": disc.discipline_id.astype(str), "record_date": _dates(disc.action_date),
                                   "detail": disc.action_type.fillna("") + "：" + disc.reason.fillna("")}))
    ev = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else \
        pd.DataFrame(columns=EVIDENCE_COLS)
    ev = ev[ev.record_date.notna() & (ev.record_date <= day)].copy()
    ev["cadre_id"] = ev.cadre_id.astype("int64")
    # volume tags need enough records and a rate well above the typical one (per operation handled):
    # some complaints and overdue items are normal for a cadre who handles many operations
    items = po[_dates(po.received_at) <= day].groupby("cadre_id").op_id.nunique() if len(po) else pd.Series(dtype=float)
    items.index = items.index.astype("int64")
    n = ev.groupby(["cadre_id", "tag"]).record_id.transform("size")
    rate = n / ev.cadre_id.map(items).where(lambda x: x > 0)
    weak_c = (ev.tag == TAGS["complaints"]) & ((n < complaints_min) | ~(rate >= complaint_rate))
    weak_o = (ev.tag == TAGS["overdue"]) & ((n < overdue_min) | ~(rate >= overdue_rate))
    ev = ev[~weak_c & ~weak_o]
    return ev[EVIDENCE_COLS].sort_values(["cadre_id", "tag", "record_date", "record_id"]).reset_index(drop=True)


HORIZON_DAYS = 365   # the forecast window: a discipline record within the year after the cut-off


def _records(env: Env) -> dict[str, pd.DataFrame]:
    """Every dated record the features count, read once (cut-offs filter them by date)."""
    cadres = env.read("silver", "cadres", ["cadre_id", "rank", "unit_org_id", "is_deleted"])
    cadres = cadres[~cadres.is_deleted.fillna(False).astype(bool)].drop(columns="is_deleted")
    cadres = cadres.astype({"cadre_id": "int64"})
    cadres["is_leading"] = cadres["rank"].isin(LEADING_RANKS)
    pen = linked.web(env, "penalties", "notice_id", "web_penalty", ["decision_date"])
    enf = linked.web(env, "enforcement", "case_no", "web_enforcement", ["publish_date"])
    news = linked.web(env, "news", "news_id", "web_news", ["published_date", "title"])
    negative = news.title.fillna("").map(lambda t: any(w in t for w in NEGATIVE_WORDS)).astype(bool)
    neg = news.loc[negative.to_numpy()]  # a mask, also when there is no news at all
    cp = linked.ironcage(env, "complaints", ["complaint_id", "received_at"])
    po = linked.ironcage(env, "power_operations", ["op_id", "received_at", "deadline", "completed_at"])
    a = env.read("silver", "cadre_assessments", ["cadre_id", "assess_year", "grade", "is_deleted"])
    a = a[~a.is_deleted.fillna(False).astype(bool)]
    disc = env.read("silver", "cadre_discipline", ["cadre_id", "action_date", "is_deleted"])
    disc = disc[~disc.is_deleted.fillna(False).astype(bool)]

    def dated(df, key, col):
        if df is None or df.empty:
            return pd.DataFrame({"cadre_id": pd.Series(dtype="int64"), key: pd.Series(dtype=object),
                                 "date": pd.Series(dtype=object)})
        return pd.DataFrame({"cadre_id": df.cadre_id.astype("int64"), key: df[key], "date": _dates(df[col])})

    po = po.assign(date=_dates(po.received_at), done=_naive(po.completed_at), due=_naive(po.deadline)) if len(po) else po
    return {"cadres": cadres, "penalties": dated(pen, "notice_id", "decision_date"),
            "enforcement": dated(enf, "case_no", "publish_date"), "news": dated(neg, "news_id", "published_date"),
            "complaints": dated(cp, "complaint_id", "received_at"), "operations": po,
            "assessments": a.assign(code=a.grade.map(GRADE_CODE), date=[dt.date(int(y), 12, 28) for y in a.assess_year]),
            "discipline": pd.DataFrame({"cadre_id": disc.cadre_id.astype("int64"), "date": _dates(disc.action_date)})}


def _at(rec: dict[str, pd.DataFrame], day: dt.date) -> pd.DataFrame:
    """Every cadre's features from the records dated on or before ``day`` (nothing later is seen)."""
    f = rec["cadres"].set_index("cadre_id")

    def count(name, key):
        d = rec[name]
        return d[d.date <= day].groupby("cadre_id")[key].nunique()

    f["n_penalties"] = count("penalties", "notice_id")
    f["n_enforcement"] = count("enforcement", "case_no")
    f["n_negative_news"] = count("news", "news_id")
    f["n_complaints"] = count("complaints", "complaint_id")
    po = rec["operations"]
    po = po[po.date <= day] if len(po) else po
    if len(po):
        done_by = po.done < pd.Timestamp(day) + pd.Timedelta(days=1)   # completed on or before the day
        over = (~done_by & (po.due < pd.Timestamp(day))) | (done_by & (po.done > po.due))
        g = po.assign(over=over.astype(float)).groupby("cadre_id").agg(items=("op_id", "nunique"), over=("over", "mean"))
        f["items"], f["overdue_rate"] = g["items"], g["over"]
    else:
        f["items"], f["overdue_rate"] = np.nan, np.nan
    f["complaint_rate"] = f.n_complaints.fillna(0) / f["items"].where(f["items"] > 0)
    a = rec["assessments"]
    a = a[a.date <= day]
    g = a.groupby("cadre_id").agg(n_weak_grades=("code", lambda s: float((s <= 1).sum())), mean_grade_code=("code", "mean"))
    f = f.join(g)
    for c in ("n_penalties", "n_enforcement", "n_negative_news", "n_complaints", "n_weak_grades"):
        f[c] = f[c].fillna(0.0)
    d = rec["discipline"]
    f["disciplined_before"] = f.index.isin(d[d.date <= day].cadre_id)
    for c in FEATURE_NAMES:
        f[c] = f[c].astype("float64")
    return f.reset_index()[["cadre_id", "rank", "unit_org_id", "is_leading", *FEATURE_NAMES, "disciplined_before"]]


def build(env: Env, day: dt.date) -> pd.DataFrame:
    """cadre_id, rank, unit_org_id, is_leading, the features as of ``day`` and ``disciplined_before``
    (a discipline record on or before ``day``: shown as evidence, not forecast)."""
    return _at(_records(env), day)


def first_record_day(rec: dict[str, pd.DataFrame]) -> dt.date | None:
    days = [d.date.min() for k, d in rec.items() if k in ("complaints", "operations", "penalties") and len(d)]
    days = [x for x in days if pd.notna(x)]
    return min(days) if days else None


def panel(env: Env, cutoffs: list[dt.date], rec: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per cadre and cut-off, for cadres without a discipline record up to the cut-off: features
    as of the cut-off and ``label`` = a discipline record within ``HORIZON_DAYS`` after it (a forecast:
    the label is always later than every record the features count)."""
    rec = _records(env) if rec is None else rec
    d = rec["discipline"]
    out = []
    for c in cutoffs:
        f = _at(rec, c)
        f = f[~f.disciplined_before].drop(columns="disciplined_before")
        later = d[(d.date > c) & (d.date <= c + dt.timedelta(days=HORIZON_DAYS))].cadre_id
        out.append(f.assign(cutoff=c, label=f.cadre_id.isin(later).astype(int)))
    return pd.concat(out, ignore_index=True)
