"""Batch scoring of the integrity portrait from ``models:/<name>@champion``: risk, tags, evidence, gate."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from models import common
from models.integrity_portrait import features

KEY = "integrity_portrait"
TABLE = "score_integrity_portrait"
EVIDENCE_TABLE = "integrity_evidence"
SCHEMA = ("cadre_id long, as_of_date date, rank string, unit_org_id long, is_leading boolean, risk_score double, "
          "risk_probability double, risk_level string, tags array<string>, n_evidence int, flag_gate boolean, "
          "flag_threshold double, top_factors string, model_name string, model_version string, scored_at timestamp")
EVIDENCE_SCHEMA = ("cadre_id long, tag string, source string, record_id string, record_date date, detail string, "
                   "as_of_date date")


def level(p: float, threshold: float) -> str:
    return "高" if p >= threshold else ("中" if p >= threshold / 2 else "低")


def score(env: common.Env, df: pd.DataFrame | None = None, scored_at: dt.datetime | None = None):
    """(scores, evidence). ``flag_gate``: probability >= threshold AND at least one evidence-backed tag."""
    cfg, day = env.cfg, env.day
    df = features.build(env, day) if df is None else df
    ev = features.evidence(env, day, cfg.integrity_complaints_tag_min, cfg.integrity_overdue_tag_min,
                           getattr(cfg, "integrity_complaint_rate_tag", 0.10),
                           getattr(cfg, "integrity_overdue_rate_tag", 0.30))
    pm, version = env.load_champion(KEY)
    out = pm.predict(df[features.FEATURE_NAMES].astype("float64"))
    res = pd.concat([df[["cadre_id", "rank", "unit_org_id", "is_leading"]].reset_index(drop=True),
                     out.reset_index(drop=True)], axis=1)
    tags = ev.groupby("cadre_id").tag.apply(lambda s: sorted(set(s)))
    n_ev = ev.groupby("cadre_id").size()
    res["tags"] = [tags.get(c, []) for c in res.cadre_id]
    res["n_evidence"] = [int(n_ev.get(c, 0)) for c in res.cadre_id]
    thr = float(cfg.integrity_flag_threshold)
    res["flag_gate"] = (res.risk_probability >= thr) & (res.n_evidence > 0)
    res["flag_threshold"] = thr
    res["risk_level"] = [level(p, thr) for p in res.risk_probability]
    res["as_of_date"] = day
    res["model_name"] = env.registered_name(KEY)
    res["model_version"] = version
    res["scored_at"] = pd.Timestamp(scored_at or dt.datetime.now(dt.timezone.utc))
    res["n_evidence"] = res.n_evidence.astype("int32")
    ev = ev.assign(as_of_date=day)
    return res, ev
