"""Metrics of the cadre evaluation model: macro-F1 and quadratic weighted kappa, baselines, fairness, truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score, f1_score

from models.cadre_evaluation.features import GRADES, PROTECTED


def metrics(y_true, y_pred, prefix: str) -> dict[str, float]:
    y_true, y_pred = np.asarray(y_true, int), np.asarray(y_pred, int)
    return {f"{prefix}_qwk": float(cohen_kappa_score(y_true, y_pred, weights="quadratic", labels=[0, 1, 2, 3])),
            f"{prefix}_macro_f1": float(f1_score(y_true, y_pred, average="macro", labels=[0, 1, 2, 3], zero_division=0)),
            f"{prefix}_accuracy": float((y_true == y_pred).mean())}


def fairness(df: pd.DataFrame, pred_col: str = "predicted_grade") -> pd.DataFrame:
    """Share of each grade by protected attribute, observed and predicted (rows: attribute, group)."""
    rows = []
    for attr in PROTECTED:
        for group, g in df.groupby(attr, dropna=False):
            row = {"attribute": attr, "group": str(group), "n": len(g)}
            for code, label in enumerate(GRADES):
                row[f"observed_{label}"] = float((g.grade_code == code).mean())
                row[f"predicted_{label}"] = float((g[pred_col] == code).mean())
            rows.append(row)
    return pd.DataFrame(rows)


def truth_check(scored: pd.DataFrame, truth: Path) -> dict[str, float]:
    """Spearman correlation of the model score with the planted latent performance (validation only)."""
    perf = pd.read_parquet(truth / "cadre_year_performance.parquet")
    m = scored.merge(perf, on=["cadre_id", "year"])
    return {"truth_spearman_performance": float(m.score.corr(m.performance, method="spearman")), "truth_n": len(m)}
