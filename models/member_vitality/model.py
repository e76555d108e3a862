"""Entropy-weight method (熵权法), optionally combined with AHP expert weights, as an MLflow pyfunc.

1. Each indicator is min-max normalised per column between its 1st and 99th percentile on the
   training months (clipped to [0, 1]); "lower is better" indicators are flipped (1 - x).
2. Entropy: p_ij = x_ij / sum_i x_ij, e_j = -1/ln(n) * sum_i p_ij ln p_ij with 0 ln 0 = 0 (guarded),
   d_j = 1 - e_j, w_j = d_j / sum d.
3. AHP (optional): a pairwise-comparison matrix over the five dimensions gives dimension weights
   (principal eigenvector); they are used only if the consistency ratio CR = CI / RI < max_cr. A
   dimension's AHP weight is shared among its indicators in proportion to their entropy weights.
   Combined weights: alpha * w_ahp + (1 - alpha) * w_entropy.
4. Index = 100 * sum_j w_j x_j, in [0, 100].
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.member_vitality.features import DIMENSIONS, INDICATOR_NAMES, INDICATORS

DIM_COLS = ["dim_learning", "dim_org_life", "dim_volunteer", "dim_dues", "dim_app"]
RANDOM_INDEX = {1: 0.0, 2: 0.0, 3: 0.58, 4: 0.90, 5: 1.12, 6: 1.24, 7: 1.32, 8: 1.41, 9: 1.45}


def normalise(X: pd.DataFrame, lo: pd.Series, hi: pd.Series) -> pd.DataFrame:
    span = (hi - lo).replace(0, 1.0)
    Z = ((X[INDICATOR_NAMES] - lo) / span).clip(0.0, 1.0)
    for c in INDICATOR_NAMES:
        if not INDICATORS[c][2]:
            Z[c] = 1.0 - Z[c]
    return Z


def entropy_weights(Z: pd.DataFrame) -> pd.Series:
    n = len(Z)
    col_sum = Z.sum(axis=0).replace(0, np.nan)
    P = Z / col_sum
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(P > 0, P * np.log(P), 0.0)  # 0 ln 0 := 0
    e = -plogp.sum(axis=0) / np.log(n)
    e = pd.Series(e, index=Z.columns).fillna(1.0)
    e[(col_sum.isna()) | (Z.max(axis=0) == Z.min(axis=0))] = 1.0  # constant (or all-zero) column: no information
    d = (1.0 - e).clip(lower=0.0)
    return d / d.sum()


def ahp(matrix: list[list[float]]) -> tuple[np.ndarray, float]:
    """(dimension weights, consistency ratio) of a pairwise comparison matrix."""
    A = np.asarray(matrix, dtype=float)
    n = A.shape[0]
    vals, vecs = np.linalg.eig(A)
    i = int(np.argmax(vals.real))
    w = np.abs(vecs[:, i].real)
    w = w / w.sum()
    ci = (vals[i].real - n) / (n - 1) if n > 1 else 0.0
    ri = RANDOM_INDEX.get(n, 1.49)
    return w, (float(ci / ri) if ri > 0 else 0.0)


def combine(w_entropy: pd.Series, dim_weights: np.ndarray | None, alpha: float) -> pd.Series:
    if dim_weights is None or alpha <= 0:
        return w_entropy.copy()
    w_ahp = pd.Series(0.0, index=w_entropy.index)
    for k, dim in enumerate(DIMENSIONS):
        cols = [c for c in INDICATOR_NAMES if INDICATORS[c][1] == dim]
        share = w_entropy[cols]
        share = share / share.sum() if share.sum() > 0 else pd.Series(1.0 / len(cols), index=cols)
        w_ahp[cols] = dim_weights[k] * share
    w = alpha * w_ahp + (1 - alpha) * w_entropy
    return w / w.sum()


class VitalityIndexModel(PythonModel):
    def __init__(self, lo: pd.Series, hi: pd.Series, weights: pd.Series, entropy: pd.Series,
                 ahp_weights: list[float] | None, ahp_cr: float | None):
        self.lo, self.hi = lo.astype(float), hi.astype(float)
        self.weights = weights.astype(float)
        self.entropy = entropy.astype(float)
        self.ahp_weights, self.ahp_cr = ahp_weights, ahp_cr

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        Z = normalise(model_input[INDICATOR_NAMES].astype("float64"), self.lo, self.hi)
        out = pd.DataFrame({"vitality_index": np.round(100.0 * (Z.values @ self.weights[INDICATOR_NAMES].values), 4)})
        for k, dim in enumerate(DIMENSIONS):
            cols = [c for c in INDICATOR_NAMES if INDICATORS[c][1] == dim]
            out[DIM_COLS[k]] = np.round(100.0 * (Z[cols].values @ self.weights[cols].values), 4)
        return out

    def weights_table(self) -> pd.DataFrame:
        return pd.DataFrame({"indicator": INDICATOR_NAMES, "label": [INDICATORS[c][0] for c in INDICATOR_NAMES],
                             "dimension": [INDICATORS[c][1] for c in INDICATOR_NAMES],
                             "higher_is_better": [INDICATORS[c][2] for c in INDICATOR_NAMES],
                             "entropy_weight": self.entropy[INDICATOR_NAMES].values,
                             "weight": self.weights[INDICATOR_NAMES].values})
