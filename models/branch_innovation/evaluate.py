"""Evaluation of the branch innovation model: silhouette (label-free), planted truth (validation only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.branch_innovation.model import REASONS


def precision_recall(flag: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    tp = int((flag & truth).sum())
    return (tp / flag.sum() if flag.sum() else 0.0), (tp / truth.sum() if truth.sum() else float("nan"))


def truth_check(anoms: pd.DataFrame, scored: pd.DataFrame, truth: Path) -> dict[str, float]:
    fab = pd.read_parquet(truth / "fabricated_meetings.parquet")
    br = pd.read_parquet(truth / "branches.parquet")
    is_fab = anoms.meeting_id.isin(fab.meeting_id).to_numpy()
    flag = anoms.is_anomaly.to_numpy(bool)
    p, r = precision_recall(flag, is_fab)
    out = {"truth_anomaly_precision": p, "truth_anomaly_recall": r, "truth_fabricated": int(is_fab.sum()),
           "truth_flagged": int(flag.sum())}
    out["truth_anomaly_f1"] = 2 * p * r / (p + r) if p + r else 0.0
    # recall per planted reason (a meeting can have several)
    fab_r = fab.set_index("meeting_id").reasons.str.split(",")
    for planted in ("identical_attendance", "holiday", "impossible_count"):
        ids = set(fab_r[fab_r.apply(lambda x, pl=planted: pl in x)].index)
        m = anoms.meeting_id.isin(ids).to_numpy()
        out[f"truth_recall_{planted}"] = float((flag & m).sum() / m.sum()) if m.sum() else float("nan")
    # branch level: mean innovation score separates the planted innovative branches
    b = scored.groupby("org_id").innovation_score.mean().rename("s").reset_index().merge(br, on="org_id")
    if b.innovative.nunique() == 2:
        out["truth_innovation_auc"] = float(roc_auc_score(b.innovative.astype(int), b.s))
    fb = anoms.groupby("org_id").is_anomaly.any().rename("a").reset_index().merge(br, on="org_id")
    bp, brc = precision_recall(fb.a.to_numpy(bool), fb.fabricates.to_numpy(bool))
    out["truth_branch_precision"], out["truth_branch_recall"] = bp, brc
    return out


def reasons_count(anoms: pd.DataFrame) -> dict[str, int]:
    return {k: int(anoms.anomaly_reasons.apply(lambda r, v=v: v in r).sum()) for k, v in REASONS.items()}


def detectors_heldout(model, meetings: pd.DataFrame, truth: Path) -> dict[str, float]:
    """Precision and recall on the held-out quarter's meetings of the served detector (rules, with an
    identical attendance list counted only when the forest also finds the meeting unusual), of the rules
    alone (any identical list counts) and of the forest's top share alone."""
    from models.branch_innovation.model import meeting_flags

    fab = pd.read_parquet(truth / "fabricated_meetings.parquet")
    is_fab = meetings.meeting_id.isin(fab.meeting_id).to_numpy()
    served, _, score = meeting_flags(meetings, model.forest, model.forest_cut)
    rules, _, _ = meeting_flags(meetings, model.forest, -np.inf)
    out = {"heldout_fabricated": int(is_fab.sum())}
    for name, flag in (("served", served), ("rules_only", rules), ("forest_only", score >= model.forest_cut)):
        p, r = precision_recall(np.asarray(flag, bool), is_fab)
        out[f"truth_heldout_{name}_precision"], out[f"truth_heldout_{name}_recall"] = p, r
    return out


def best_single_indicator(bq: pd.DataFrame, truth: Path) -> dict[str, float]:
    """The best single indicator's AUC (branch means, oriented) for the planted innovative branches."""
    from models.branch_innovation.features import INNOVATION_NAMES

    br = pd.read_parquet(truth / "branches.parquet")
    b = bq.groupby("org_id")[INNOVATION_NAMES].mean().reset_index().merge(br, on="org_id")
    if b.innovative.nunique() < 2:
        return {}
    aucs = [roc_auc_score(b.innovative.astype(int), b[c].fillna(b[c].median())) for c in INNOVATION_NAMES]
    return {"truth_best_single_indicator_innovation_auc": float(max(max(a, 1 - a) for a in aucs))}
