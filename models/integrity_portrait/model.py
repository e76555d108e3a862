"""The integrity risk model as an MLflow pyfunc: a raw risk score and a monotone calibration on top.

The raw score comes from the method that won on held-out data (``models.integrity_portrait.train``):
the count of public records (the rule a person would use), the best single feature, a logistic
regression or a monotone XGBoost. ``risk_probability`` is the calibrated probability of a discipline
record (纪律处分) within the year after the as-of date: isotonic regression on out-of-fold raw scores when
there are enough positives, otherwise Platt scaling whose slope must be positive (an inverted slope would
reverse the ranking and is refused: isotonic is used instead). Either way the probability never falls as
the raw score rises (``MonotoneCalibrator.increasing``). ``risk_score`` is 100 x the probability.
Top factors: XGBoost's own contributions (``pred_contribs=True``), coefficient x standardised value for
the logistic regression, the counted records for the rule and the feature for the single-feature scorer.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.integrity_portrait.features import FEATURE_NAMES, FEATURES

TOP_K = 3
PUBLIC_RECORDS = ["n_penalties", "n_enforcement", "n_negative_news"]


class MonotoneCalibrator:
    """Raw score -> probability, never decreasing."""

    def __init__(self, kind: str, iso=None, a: float = 0.0, b: float = 0.0):
        self.kind, self.iso, self.a, self.b = kind, iso, a, b

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray, min_isotonic: int = 20) -> "MonotoneCalibrator":
        from sklearn.isotonic import IsotonicRegression
        from sklearn.linear_model import LogisticRegression

        raw, y = np.asarray(raw, float), np.asarray(y, int)
        if y.sum() >= min_isotonic or len(np.unique(raw)) < 2 or y.sum() in (0, len(y)):
            iso = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
            return cls("isotonic", iso=iso)
        lr = LogisticRegression(C=100.0, max_iter=1000).fit(raw.reshape(-1, 1), y)
        a, b = float(lr.coef_[0, 0]), float(lr.intercept_[0])
        if a <= 0:   # few positives can invert Platt's slope, which would reverse the ranking: refuse it
            iso = IsotonicRegression(increasing=True, y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
            return cls("isotonic (Platt slope not positive)", iso=iso)
        return cls("platt", a=a, b=b)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, float)
        if self.iso is not None:
            return np.clip(self.iso.predict(raw), 0.0, 1.0)
        return 1.0 / (1.0 + np.exp(-(self.a * raw + self.b)))

    @property
    def increasing(self) -> bool:
        if self.iso is not None:
            return bool(self.iso.increasing_) if hasattr(self.iso, "increasing_") else True
        return self.a > 0


class IntegrityRiskModel(PythonModel):
    """``method``: rule_public_records | single_feature | logistic | xgboost; ``scorer``: the fitted
    estimator, or (feature, sign, fill) for the single feature, or None for the rule."""

    def __init__(self, method: str, scorer, calibrator: MonotoneCalibrator | None = None):
        self.method, self.scorer, self.calibrator = method, scorer, calibrator

    def raw(self, X: pd.DataFrame) -> np.ndarray:
        X = X[FEATURE_NAMES].astype("float64")
        if self.method == "rule_public_records":
            return X[PUBLIC_RECORDS].fillna(0).sum(axis=1).to_numpy(float)
        if self.method == "single_feature":
            f, sign, fill = self.scorer
            return sign * X[f].fillna(fill).to_numpy(float)
        if self.method == "logistic":
            return self.scorer.decision_function(X)
        return self.scorer.predict(X, output_margin=True)

    def probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.calibrator(self.raw(X))

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        X = X[FEATURE_NAMES].astype("float64")
        c = np.zeros(X.shape)
        if self.method == "rule_public_records":
            for f in PUBLIC_RECORDS:
                c[:, FEATURE_NAMES.index(f)] = X[f].fillna(0).to_numpy()
        elif self.method == "single_feature":
            f, sign, fill = self.scorer
            c[:, FEATURE_NAMES.index(f)] = sign * (X[f].fillna(fill).to_numpy() - fill)
        elif self.method == "logistic":
            c = self.scorer[:-1].transform(X) * self.scorer[-1].coef_[0]
        else:
            import xgboost as xgb

            dm = xgb.DMatrix(X, feature_names=FEATURE_NAMES)
            c = self.scorer.get_booster().predict(dm, pred_contribs=True)[:, :-1]
        return c

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        p = self.probability(model_input)
        c = self.contributions(model_input)
        top = []
        for i in range(len(p)):
            order = [j for j in np.argsort(-c[i], kind="stable")[:TOP_K] if c[i, j] > 0]
            top.append(json.dumps([{"feature": FEATURE_NAMES[j], "label": FEATURES[FEATURE_NAMES[j]],
                                    "contribution": round(float(c[i, j]), 4)} for j in order], ensure_ascii=False))
        return pd.DataFrame({"risk_probability": np.round(p, 6).astype("float64"),
                             "risk_score": np.round(100 * p, 2).astype("float64"), "top_factors": top})
