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


# the run artifact holding the fairness table (train logs it; scoring copies the champion's into gold)
FAIRNESS_ARTIFACT = "fairness/by_protected_group.json"
# protected attribute -> its Chinese name (the fairness table's rows)
ATTRIBUTE_LABELS = {"gender": "性别", "ethnicity": "民族", "age_band": "年龄段"}


def fairness(df: pd.DataFrame, pred_col: str = "predicted_grade", max_gap: float = 0.10,
             min_n: int = 30) -> pd.DataFrame:
    """Per protected attribute and group (rows) on held-out data: how often the predicted grade is the
    recorded one (``accuracy``), the mean distance in grades, how often the model grades higher or
    lower than recorded, and the share of each grade observed and predicted. ``accuracy_gap``: how far
    the group's accuracy is below the accuracy on all held-out cadres (groups of at least ``min_n``
    cadres; a smaller group's rate is too noisy to compare); ``flagged`` when that gap exceeds
    ``max_gap`` (``[models] fairness_max_gap``): a group the model serves worse than the rest."""
    rows = []
    for attr in PROTECTED:
        for group, g in df.groupby(attr, dropna=False):
            obs, pred = g.grade_code.astype(int).to_numpy(), g[pred_col].astype(int).to_numpy()
            row = {"attribute": attr, "attribute_label": ATTRIBUTE_LABELS[attr],
                   "group": "未知" if pd.isna(group) else str(group), "n": len(g),
                   "accuracy": float((obs == pred).mean()), "mean_abs_error": float(np.abs(obs - pred).mean()),
                   "over_rate": float((pred > obs).mean()), "under_rate": float((pred < obs).mean())}
            for code in range(len(GRADES)):   # 0 不称职, 1 基本称职, 2 称职, 3 优秀 (features.GRADES)
                row[f"observed_share_{code}"] = float((obs == code).mean())
                row[f"predicted_share_{code}"] = float((pred == code).mean())
            rows.append(row)
    out = pd.DataFrame(rows)
    overall = float((df.grade_code.astype(int).to_numpy() == df[pred_col].astype(int).to_numpy()).mean())
    out["accuracy_gap"] = (overall - out.accuracy).where(out.n >= min_n)
    out["flagged"] = (out.accuracy_gap > max_gap).fillna(False).astype(bool)
    out["max_gap"], out["min_group_size"] = float(max_gap), int(min_n)
    return out


def truth_check(scored: pd.DataFrame, truth: Path) -> dict[str, float]:
    """Spearman correlation of the model score with the planted latent performance (validation only)."""
    perf = pd.read_parquet(truth / "cadre_year_performance.parquet")
    m = scored.merge(perf, on=["cadre_id", "year"])
    return {"truth_spearman_performance": float(m.score.corr(m.performance, method="spearman")), "truth_n": len(m)}


def truth_heldout(te: pd.DataFrame, score, truth: Path) -> dict[str, float]:
    """Held-out rows against the planted latent performance: Spearman of the served score, and the
    best single feature's (oriented) Spearman on the same rows."""
    from models.cadre_evaluation.features import FEATURE_NAMES

    perf = pd.read_parquet(truth / "cadre_year_performance.parquet")
    m = te[["cadre_id", "year", *FEATURE_NAMES]].reset_index(drop=True).assign(s=np.asarray(score, float))
    m = m.merge(perf, on=["cadre_id", "year"], how="left")
    single = [abs(m[f].corr(m.performance, method="spearman")) for f in FEATURE_NAMES]
    single = [r for r in single if np.isfinite(r)]
    return {"truth_heldout_spearman": float(m.s.corr(m.performance, method="spearman")),
            "truth_best_single_feature_spearman": float(max(single)) if single else float("nan"),
            "truth_heldout_n": int(m.performance.notna().sum())}
