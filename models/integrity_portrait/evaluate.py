"""Evaluation of the integrity model: out-of-fold AUC/Brier vs the observed label; planted truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score


def auc(y, p) -> float:
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def metrics(y, p, prefix: str) -> dict[str, float]:
    return {f"{prefix}_auc": auc(y, p), f"{prefix}_brier": float(brier_score_loss(y, p)),
            f"{prefix}_positives": int(np.sum(y)), f"{prefix}_n": int(len(y))}


def reliability(y, p, bins: int = 5) -> pd.DataFrame:
    """Mean predicted vs observed rate per quantile bin of the probability."""
    df = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p)})
    df["bin"] = pd.qcut(df.p.rank(method="first"), bins, labels=False)
    return df.groupby("bin").agg(mean_predicted=("p", "mean"), observed_rate=("y", "mean"), n=("y", "size")).reset_index()


def truth_check(scored: pd.DataFrame, truth: Path) -> dict[str, float]:
    t = pd.read_parquet(truth / "cadres.parquet")[["cadre_id", "integrity_issue"]]
    m = scored.merge(t, on="cadre_id")
    y = m.integrity_issue.astype(int).to_numpy()
    out = {"truth_auc": auc(y, m.risk_probability), "truth_brier": float(brier_score_loss(y, m.risk_probability)),
           "truth_positives": int(y.sum()), "truth_n": int(len(y))}
    lead = m[m.is_leading]
    out["truth_auc_leading"] = auc(lead.integrity_issue.astype(int), lead.risk_probability)
    if "label" in m:  # cadres without a discipline record: does the risk generalise beyond the label?
        nd = m[m.label == 0]
        out["truth_auc_without_discipline"] = auc(nd.integrity_issue.astype(int), nd.risk_probability)
    flagged = m.flag_gate.to_numpy(bool) if "flag_gate" in m else None
    if flagged is not None:
        out["truth_flag_precision"] = float(y[flagged].mean()) if flagged.any() else float("nan")
        out["truth_flag_recall"] = float(flagged[y == 1].mean()) if y.sum() else float("nan")
        out["flagged"] = int(flagged.sum())
    return out
