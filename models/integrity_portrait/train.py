"""Train the integrity risk model: out-of-fold evaluation, calibrated XGBoost, registered by OOF AUC."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.model_selection import StratifiedKFold

from models import common
from models.integrity_portrait import evaluate, features
from models.integrity_portrait.model import IntegrityRiskModel

KEY = "integrity_portrait"
# more risk with every count/rate, less with a better mean grade
MONOTONE = tuple(-1 if f == "mean_grade_code" else 1 for f in features.FEATURE_NAMES)
PARAMS = dict(n_estimators=150, max_depth=2, learning_rate=0.05, subsample=0.9, colsample_bytree=1.0,
              min_child_weight=0.5, reg_lambda=2.0, tree_method="hist", n_jobs=2)


def _xgb(seed: int, pos_weight: float, params: dict | None = None):
    return xgb.XGBClassifier(**{**PARAMS, **(params or {})}, monotone_constraints=MONOTONE,
                             scale_pos_weight=pos_weight, random_state=seed, eval_metric="logloss")


def fit(X: pd.DataFrame, y: np.ndarray, seed: int, params: dict | None = None) -> IntegrityRiskModel:
    pos = int(y.sum())
    if pos < 1:
        raise ValueError("integrity model needs at least one cadre with a discipline record")
    pos_weight = min(10.0, (len(y) - pos) / pos)
    booster = _xgb(seed, pos_weight, params).fit(X, y)
    if pos >= 2:
        method = "isotonic" if pos >= 20 else "sigmoid"
        cal = CalibratedClassifierCV(_xgb(seed, pos_weight, params), method=method,
                                     cv=StratifiedKFold(min(3, pos), shuffle=True, random_state=seed))
        cal.fit(X, y)
    else:  # a single positive cannot be split for calibration (only inside out-of-fold at tiny scale)
        method, cal = "none (1 positive)", booster
    model = IntegrityRiskModel(cal, booster)
    model.calibration_method = method
    return model


def out_of_fold(X: pd.DataFrame, y: np.ndarray, seed: int, params: dict | None = None) -> np.ndarray:
    """Each cadre's probability from a calibrated model that did not see it (the held-out estimate)."""
    k = int(min(5, y.sum()))
    oof = np.zeros(len(y))
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y):
        oof[te] = fit(X.iloc[tr], y[tr], seed, params).probability(X.iloc[te])
    return oof


def train(env: common.Env, df: pd.DataFrame | None = None, params: dict | None = None) -> dict:
    day = env.day
    seed = env.seed()
    df = features.build(env, day) if df is None else df
    common.check_features(df, features.FEATURE_NAMES, KEY)
    X, y = df[features.FEATURE_NAMES].astype("float64"), df.label.to_numpy(int)
    oof = out_of_fold(X, y, seed, params)
    m = evaluate.metrics(y, oof, "oof")
    model = fit(X, y, seed, params)
    env.setup(KEY)
    with mlflow.start_run(run_name=env.run_name) as run:
        mlflow.log_params({**PARAMS, **(params or {}), "seed": seed, "as_of_date": day.isoformat(),
                           "label": "has a discipline record (纪律处分) up to the as-of date",
                           "calibration": model.calibration_method, "monotone_constraints": str(MONOTONE),
                           "features": ",".join(features.FEATURE_NAMES)})
        mlflow.log_metrics(m)
        rel = evaluate.reliability(y, oof)
        mlflow.log_table(rel, "reliability_oof.json")
        _plots(y, oof)
        ex = X.head(5)
        info = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=ex,
                                       signature=infer_signature(ex, model.predict(None, ex)),
                                       pip_requirements=common.PIP_REQUIREMENTS)
        metric = m["oof_auc"] if np.isfinite(m["oof_auc"]) else -m["oof_brier"]
        version = common.register_candidate(env, KEY, info.model_uri, run.info.run_id, "oof_auc", metric)
    return {"model": KEY, "run_id": run.info.run_id, "metrics": m, "version": version, "oof": oof}


def _plots(y, p) -> None:
    plt = common.cjk_matplotlib()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    frac, mean = calibration_curve(y, p, n_bins=5, strategy="quantile")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="理想校准")
    ax.plot(mean, frac, marker="o", color="#c0392b", label="模型（交叉验证）")
    ax.set_xlabel("预测概率")
    ax.set_ylabel("实际比例")
    ax.set_title("诚信风险概率校准曲线")
    ax.legend()
    common.log_figure(fig, "reliability.png")
