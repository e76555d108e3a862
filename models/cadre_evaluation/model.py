"""The cadre evaluation model as an MLflow pyfunc: a regression on the ordinal grade (XGBoost, or the
simpler linear / single-feature scorer when XGBoost does not beat it on held-out data).

The regressor predicts the grade code (0 不称职 .. 3 优秀). Grades come from cut points on the
prediction fitted so that the training years' grade shares are reproduced (the assessment system
works with quotas, e.g. 优秀 about 15 %). The 0-100 score is the prediction scaled between the 1st
and 99th percentile of the training predictions. Per-cadre factors are XGBoost's own
contributions (``pred_contribs=True``) or, for a linear scorer, coefficient x (value - training mean),
summed into 德/能/勤/绩/廉.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.cadre_evaluation.features import FEATURE_NAMES, FEATURES, GRADES

DIMENSIONS = ["德", "能", "勤", "绩", "廉"]
TOP_K = 3


class LinearScorer:
    """``intercept + sum(coef * x)`` with missing values filled by the training median. A single-feature
    scorer is the same thing with one non-zero coefficient."""

    def __init__(self, coef: dict[str, float], fill: dict[str, float], mean: dict[str, float], intercept: float = 0.0):
        self.coef = {f: float(coef.get(f, 0.0)) for f in FEATURE_NAMES}
        self.fill = {f: float(fill.get(f, 0.0)) for f in FEATURE_NAMES}
        self.mean = {f: float(mean.get(f, 0.0)) for f in FEATURE_NAMES}
        self.intercept = float(intercept)

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        X = X[FEATURE_NAMES].astype("float64")
        return X.fillna(self.fill).fillna(0.0).to_numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.intercept + self._x(X) @ np.array([self.coef[f] for f in FEATURE_NAMES])

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        coef = np.array([self.coef[f] for f in FEATURE_NAMES])
        return (self._x(X) - np.array([self.mean[f] for f in FEATURE_NAMES])) * coef


class CadreEvaluationModel(PythonModel):
    def __init__(self, regressor, cut_points: list[float], lo: float, hi: float):
        self.regressor = regressor
        self.cut_points = [float(c) for c in cut_points]
        self.lo, self.hi = float(lo), float(hi)

    def raw(self, X: pd.DataFrame) -> np.ndarray:
        return self.regressor.predict(X[FEATURE_NAMES].astype("float64"))

    def grade_codes(self, pred: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.cut_points), pred, side="right")

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        if isinstance(self.regressor, LinearScorer):
            return self.regressor.contributions(X)
        import xgboost as xgb

        dm = xgb.DMatrix(X[FEATURE_NAMES].astype("float64"), feature_names=FEATURE_NAMES)
        return self.regressor.get_booster().predict(dm, pred_contribs=True)[:, :-1]  # last column: bias

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        pred = self.raw(model_input)
        codes = self.grade_codes(pred)
        score = np.clip((pred - self.lo) / (self.hi - self.lo) * 100.0, 0.0, 100.0)
        contrib = self.contributions(model_input)
        dims = {d: np.zeros(len(pred)) for d in DIMENSIONS}
        for j, f in enumerate(FEATURE_NAMES):
            dims[FEATURES[f][1]] += contrib[:, j]
        top = []
        for i in range(len(pred)):
            order = np.argsort(-np.abs(contrib[i]), kind="stable")[:TOP_K]
            top.append(json.dumps([{"dimension": FEATURES[FEATURE_NAMES[j]][1], "feature": FEATURE_NAMES[j],
                                    "label": FEATURES[FEATURE_NAMES[j]][0],
                                    "contribution": round(float(contrib[i, j]), 4)} for j in order],
                                  ensure_ascii=False))
        out = pd.DataFrame({"predicted_grade": codes.astype("int64"),
                            "grade_label": [GRADES[c] for c in codes],
                            "score": np.round(score, 2).astype("float64"),
                            "top_factors": top})
        for d, col in zip(DIMENSIONS, ["dim_de", "dim_neng", "dim_qin", "dim_ji", "dim_lian"]):
            out[col] = np.round(dims[d], 4).astype("float64")
        return out
