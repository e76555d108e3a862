"""Train the integrity risk model: out-of-fold evaluation of a calibrated XGBoost beside its simple
alternatives (a logistic regression, the best single feature, the count of public records a person would
use), the winner under the serving rule registered by its OOF AUC."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.model_selection import StratifiedKFold

from models import baselines, common
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
        if not monotone_calibration(cal):   # Platt's slope is unconstrained with few positives: refuse an inverted one
            method = "isotonic (Platt slope inverted)"
            cal = CalibratedClassifierCV(_xgb(seed, pos_weight, params), method="isotonic",
                                         cv=StratifiedKFold(min(3, pos), shuffle=True, random_state=seed)).fit(X, y)
    else:  # a single positive cannot be split for calibration (only inside out-of-fold at tiny scale)
        method, cal = "none (1 positive)", booster
    model = IntegrityRiskModel(cal, booster)
    model.calibration_method = method
    return model


def monotone_calibration(cal) -> bool:
    """True when every fold's calibration maps a higher model score to a higher probability (Platt's
    slope ``a`` must be negative in ``1 / (1 + exp(a f + b))``; isotonic is increasing by construction)."""
    for cc in getattr(cal, "calibrated_classifiers_", []):
        for c in cc.calibrators:
            if hasattr(c, "a_") and not c.a_ < 0:
                return False
            if hasattr(c, "increasing_") and not c.increasing_:
                return False
    return True


def fit_logistic(X: pd.DataFrame, y: np.ndarray) -> IntegrityRiskModel:
    """Baseline: logistic regression on the standardised features (missing: training median)."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         LogisticRegression(C=1.0, max_iter=1000)).fit(X, y)
    model = IntegrityRiskModel(pipe, pipe)
    model.calibration_method = "logistic (its own probability)"
    return model


def public_records(X: pd.DataFrame) -> np.ndarray:
    """The rule a person would use: how many public records name the cadre (处罚 + 失信 + 负面新闻)."""
    return X[["n_penalties", "n_enforcement", "n_negative_news"]].fillna(0).sum(axis=1).to_numpy(float)


def _best_feature(X: pd.DataFrame, y: np.ndarray) -> tuple[str, float]:
    """(feature, sign) with the highest training AUC when oriented (mean grade: lower is riskier)."""
    best = None
    for f in features.FEATURE_NAMES:
        x = X[f].fillna(X[f].median()).to_numpy(float)
        a = evaluate.auc(y, x)
        if not np.isfinite(a):
            continue
        sign = 1.0 if a >= 0.5 else -1.0
        if best is None or max(a, 1 - a) > best[0]:
            best = (max(a, 1 - a), f, sign)
    return (best[1], best[2]) if best else (features.FEATURE_NAMES[0], 1.0)


def out_of_fold(X: pd.DataFrame, y: np.ndarray, seed: int, params: dict | None = None) -> dict[str, np.ndarray]:
    """Each cadre's held-out score from every method, on the same folds: XGBoost (calibrated), logistic
    regression, the single feature chosen on the training folds, and the public-records count."""
    k = int(min(5, y.sum()))
    oof = {m: np.zeros(len(y)) for m in ("xgboost", "logistic", "single_feature", "rule_public_records")}
    for tr, te in StratifiedKFold(k, shuffle=True, random_state=seed).split(X, y):
        Xtr, Xte = X.iloc[tr], X.iloc[te]
        oof["xgboost"][te] = fit(Xtr, y[tr], seed, params).probability(Xte)
        oof["logistic"][te] = fit_logistic(Xtr, y[tr]).probability(Xte)
        f, sign = _best_feature(Xtr, y[tr])
        oof["single_feature"][te] = sign * Xte[f].fillna(Xtr[f].median()).to_numpy(float)
        oof["rule_public_records"][te] = public_records(Xte)
    return oof


LABELS = {"single_feature": "单一指标（训练折内最优）", "rule_public_records": "公开记录计数（人工规则）",
          "logistic": "逻辑回归", "xgboost": "XGBoost（校准）"}


def train(env: common.Env, df: pd.DataFrame | None = None, params: dict | None = None) -> dict:
    day = env.day
    seed = env.seed()
    df = features.build(env, day) if df is None else df
    common.check_features(df, features.FEATURE_NAMES, KEY)
    X, y = df[features.FEATURE_NAMES].astype("float64"), df.label.to_numpy(int)
    oofs = out_of_fold(X, y, seed, params)
    rows = [baselines.scored(k, LABELS[k], evaluate.auc, y, oofs[k], servable=k in ("logistic", "xgboost"), seed=seed)
            for k in ("single_feature", "rule_public_records", "logistic", "xgboost")]
    served, why = baselines.choose_served([r for r in rows if r.servable], env.cfg.baseline_margin)
    simple = max((r for r in rows if not r.servable), key=lambda r: r.score)
    if simple.score > served.score:
        why += f"；注意：{simple.label} {simple.score:.3f} 高于所选方法"
    oof = oofs[served.method]
    m = evaluate.metrics(y, oof, "oof")
    for r in rows:
        m.update(r.metrics("auc"))
    model = fit(X, y, seed, params) if served.method == "xgboost" else fit_logistic(X, y)
    if not monotone_calibration(model.calibrated):
        # few positives can give Platt an inverted slope, which would reverse the ranking: refuse it
        raise ValueError(
            f"{KEY}: calibration ({model.calibration_method}) maps a higher score to a lower probability")
    env.setup(KEY)
    with mlflow.start_run(run_name=env.run_name) as run:
        mlflow.log_params({**PARAMS, **(params or {}), "seed": seed, "as_of_date": day.isoformat(),
                           "label": "has a discipline record (纪律处分) up to the as-of date",
                           "calibration": model.calibration_method, "monotone_constraints": str(MONOTONE),
                           "features": ",".join(features.FEATURE_NAMES), "served_method": served.method,
                           "baseline_margin": env.cfg.baseline_margin})
        mlflow.log_metrics(m)
        mlflow.set_tag("served_reason", why[:5000])
        mlflow.log_table(pd.DataFrame(baselines.table(rows, "auc")), "baselines/oof_auc.json")
        rel = evaluate.reliability(y, oof)
        mlflow.log_table(rel, "reliability_oof.json")
        _plots(y, oof)
        ex = X.head(5)
        info = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=ex,
                                       signature=infer_signature(ex, model.predict(None, ex)),
                                       pip_requirements=common.PIP_REQUIREMENTS)
        metric = m["oof_auc"] if np.isfinite(m["oof_auc"]) else -m["oof_brier"]
        version = common.register_candidate(env, KEY, info.model_uri, run.info.run_id, "oof_auc", metric,
                                            tags={"served_method": served.method, "served_reason": why[:5000]})
    return {"model": KEY, "run_id": run.info.run_id, "metrics": m, "version": version, "oof": oof,
            "served_method": served.method, "served_reason": why, "baselines": baselines.table(rows, "auc")}


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
