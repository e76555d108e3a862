"""The integrity risk model as an MLflow pyfunc: XGBoost (monotone) with a calibrated probability.

``risk_probability`` is the calibrated probability (CalibratedClassifierCV: isotonic with >= 20
positives, Platt/sigmoid otherwise) that the cadre has a discipline record; ``risk_score`` is
100 x the probability. Top factors are XGBoost's own contributions of the uncalibrated model
(``pred_contribs=True``) fitted on the same data. When XGBoost does not beat a logistic regression on
held-out data by the configured margin, the logistic regression is served instead (its probability is
its own; its factors are coefficient x standardised value).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from models.integrity_portrait.features import FEATURE_NAMES, FEATURES

TOP_K = 3


class IntegrityRiskModel(PythonModel):
    def __init__(self, calibrated, booster_model):
        self.calibrated, self.booster_model = calibrated, booster_model

    def probability(self, X: pd.DataFrame) -> np.ndarray:
        return self.calibrated.predict_proba(X[FEATURE_NAMES].astype("float64"))[:, 1]

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self.booster_model, "get_booster"):   # the logistic pipeline: coefficient x scaled value
            pipe = self.booster_model
            return pipe[:-1].transform(X[FEATURE_NAMES].astype("float64")) * pipe[-1].coef_[0]
        import xgboost as xgb

        dm = xgb.DMatrix(X[FEATURE_NAMES].astype("float64"), feature_names=FEATURE_NAMES)
        return self.booster_model.get_booster().predict(dm, pred_contribs=True)[:, :-1]

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
