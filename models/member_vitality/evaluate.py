"""Validation of the vitality index: month-to-month rank stability (label-free) and the planted latent truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def stability(scored: pd.DataFrame, months: list | None = None) -> float:
    """Mean Spearman correlation of the index between consecutive months (members present in both)."""
    w = scored.pivot_table(index="member_id", columns="month", values="vitality_index")
    cols = sorted(w.columns)
    if months is not None:
        keep = set(months)
        pairs = [(a, b) for a, b in zip(cols, cols[1:]) if b in keep]
    else:
        pairs = list(zip(cols, cols[1:]))
    rs = [w[a].corr(w[b], method="spearman") for a, b in pairs]
    rs = [r for r in rs if np.isfinite(r)]
    return float(np.mean(rs)) if rs else float("nan")


def truth_check(scored: pd.DataFrame, truth: Path) -> dict[str, float]:
    lv = pd.read_parquet(truth / "member_vitality.parquet")
    lv["month"] = pd.to_datetime(lv.month).dt.date
    m = scored.merge(lv, on=["member_id", "month"])
    per_month = m.groupby("month").apply(lambda g: g.vitality_index.corr(g.latent_vitality, method="spearman"),
                                         include_groups=False)
    member_mean = m.groupby("member_id")[["vitality_index", "latent_vitality"]].mean()
    return {"truth_spearman_pooled": float(m.vitality_index.corr(m.latent_vitality, method="spearman")),
            "truth_spearman_per_month_mean": float(per_month.mean()),
            "truth_spearman_member_mean": float(member_mean.vitality_index.corr(member_mean.latent_vitality,
                                                                                 method="spearman")),
            "truth_n": int(len(m))}


def best_single_indicator(df: pd.DataFrame, truth: Path) -> dict[str, float]:
    """The best single indicator against the planted latent vitality (member means, |Spearman|), beside
    the index's ``truth_spearman_member_mean``: what the weighting adds over one column."""
    from models.member_vitality.features import INDICATOR_NAMES

    lv = pd.read_parquet(truth / "member_vitality.parquet")
    lv["month"] = pd.to_datetime(lv.month).dt.date
    m = df[["member_id", "month", *INDICATOR_NAMES]].merge(lv, on=["member_id", "month"])
    mm = m.groupby("member_id")[[*INDICATOR_NAMES, "latent_vitality"]].mean()
    rs = {c: abs(mm[c].corr(mm.latent_vitality, method="spearman")) for c in INDICATOR_NAMES}
    rs = {c: r for c, r in rs.items() if np.isfinite(r)}
    if not rs:
        return {}
    return {"truth_best_single_indicator_member_mean": float(max(rs.values()))}
