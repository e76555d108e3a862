"""Evaluation of the integrity model: held-out (later window) AUC/Brier vs the observed label; planted truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score


def auc(y, p) -> float:
    y = np.asarray(y)
    return float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan")


def brier(y, p) -> float:
    return float(brier_score_loss(np.asarray(y), np.asarray(p))) if len(y) else float("nan")


def metrics(y, raw, p, prefix: str) -> dict[str, float]:
    """AUC of the raw score (the ranking; the calibration is monotone), Brier of the probability."""
    return {f"{prefix}_auc": auc(y, raw), f"{prefix}_brier": brier(y, p),
            f"{prefix}_positives": int(np.sum(y)), f"{prefix}_n": int(len(y))}


def reliability(y, p, bins: int = 5) -> pd.DataFrame:
    """Mean predicted vs observed rate per quantile bin of the probability."""
    df = pd.DataFrame({"y": np.asarray(y), "p": np.asarray(p)})
    df["bin"] = pd.qcut(df.p.rank(method="first"), bins, labels=False)
    return df.groupby("bin").agg(mean_predicted=("p", "mean"), observed_rate=("y", "mean"), n=("y", "size")).reset_index()


def truth_check(rows: pd.DataFrame, raw, truth: Path, cutoff) -> dict[str, float]:
    """Held-out rows (cadres not yet disciplined at ``cutoff``) against the planted truth: a problem that
    had begun by the cut-off. AUC of the served method's held-out score and of the best single feature."""
    from models.integrity_portrait.features import FEATURE_NAMES

    t = pd.read_parquet(truth / "cadres.parquet")[["cadre_id", "integrity_issue", "integrity_onset"]]
    m = rows[["cadre_id", "is_leading", *FEATURE_NAMES]].reset_index(drop=True).assign(raw=np.asarray(raw))
    m = m.merge(t, on="cadre_id", how="left")
    onset = pd.to_datetime(m.integrity_onset)
    y = (m.integrity_issue.fillna(False).astype(bool) & (onset <= pd.Timestamp(cutoff))).astype(int).to_numpy()
    single = max((max(a, 1 - a) for f in FEATURE_NAMES
                  if np.isfinite(a := auc(y, m[f].fillna(m[f].median()).fillna(0).to_numpy(float)))), default=float("nan"))
    lead = m.is_leading.to_numpy(bool)
    return {"truth_heldout_auc": auc(y, m.raw), "truth_heldout_auc_leading": auc(y[lead], m.raw[lead]),
            "truth_best_single_feature_auc": single, "truth_heldout_positives": int(y.sum()),
            "truth_heldout_n": int(len(y))}
