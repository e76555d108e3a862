"""Train the integrity risk model as a forecast: features from the records up to a cut-off, the label a
discipline record within the following year. Evaluation is out of time: methods are fitted on cut-offs
whose label year ended before the test cut-off (one year before the logical date) and scored on the test
cut-off's following year. Four methods on the same rows - the count of public records a person would use,
the best single feature, a logistic regression and a monotone XGBoost - each with a bootstrap interval;
the serving rule picks the winner, which is refitted on every cut-off and calibrated monotonically."""

from __future__ import annotations

import datetime as dt

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature
from sklearn.calibration import calibration_curve
from sklearn.model_selection import GroupKFold

from models import baselines, common
from models.integrity_portrait import evaluate, features
from models.integrity_portrait.model import IntegrityRiskModel, MonotoneCalibrator

KEY = "integrity_portrait"
# more risk with every count/rate, less with a better mean grade
MONOTONE = tuple(-1 if f == "mean_grade_code" else 1 for f in features.FEATURE_NAMES)
PARAMS = dict(n_estimators=150, max_depth=2, learning_rate=0.05, subsample=0.9, colsample_bytree=1.0,
              min_child_weight=0.5, reg_lambda=2.0, tree_method="hist", n_jobs=2)
METHODS = ("rule_public_records", "single_feature", "logistic", "xgboost")   # simplest first
LABELS = {"rule_public_records": "公开记录计数（人工规则）", "single_feature": "单一指标（训练期最优）",
          "logistic": "逻辑回归", "xgboost": "XGBoost（单调约束）"}
STEP_MONTHS = 3   # cut-offs every quarter


def cutoffs(first: dt.date | None, day: dt.date) -> tuple[list[dt.date], list[dt.date], dt.date]:
    """(all cut-offs, training cut-offs, test cut-off). The test cut-off is one horizon before ``day``, so
    its label year is complete; training cut-offs are every quarter back from it whose label year ended
    by the test cut-off, starting a quarter after the first record (some history to count)."""
    test = day - dt.timedelta(days=features.HORIZON_DAYS)
    first = first or (day - dt.timedelta(days=3 * 365))
    out, k = [], 0
    while True:
        c = (pd.Timestamp(test) - pd.DateOffset(months=STEP_MONTHS * k)).date()
        if c < first + dt.timedelta(days=90):
            break
        out.append(c)
        k += 1
    out = sorted(out)
    train = [c for c in out if c + dt.timedelta(days=features.HORIZON_DAYS) <= test]
    return out, train, test


def training_cutoffs(first: dt.date | None, day: dt.date) -> tuple[list[dt.date], list[dt.date], dt.date]:
    """:func:`cutoffs`, refused with the rule (the models stage then skips the model) when no training
    cut-off has a complete label year before the test cut-off (a lake younger than about two years)."""
    all_cut, train_cut, test_cut = cutoffs(first, day)
    if not train_cut:
        raise common.NotEnoughHistory(f"{KEY}: the lake holds less than {features.HORIZON_DAYS} days of records "
                                      f"before {test_cut}; a forecast needs a complete label year to train on")
    return all_cut, train_cut, test_cut


def _xgb(seed: int, pos_weight: float, params: dict | None = None):
    return xgb.XGBClassifier(**{**PARAMS, **(params or {})}, monotone_constraints=MONOTONE,
                             scale_pos_weight=pos_weight, random_state=seed, eval_metric="logloss")


def _logistic():
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                         LogisticRegression(C=1.0, max_iter=1000))


def _best_feature(X: pd.DataFrame, y: np.ndarray) -> tuple[str, float, float]:
    """(feature, sign, fill) with the highest training AUC when oriented (e.g. mean grade: lower is riskier)."""
    best = None
    for f in features.FEATURE_NAMES:
        fill = float(X[f].median()) if X[f].notna().any() else 0.0
        a = evaluate.auc(y, X[f].fillna(fill).to_numpy(float))
        if not np.isfinite(a):
            continue
        if best is None or max(a, 1 - a) > best[0]:
            best = (max(a, 1 - a), f, 1.0 if a >= 0.5 else -1.0, fill)
    return best[1:] if best else (features.FEATURE_NAMES[0], 1.0, 0.0)


def _scorer(method: str, X: pd.DataFrame, y: np.ndarray, seed: int, params: dict | None = None):
    if method == "rule_public_records":
        return None
    if method == "single_feature":
        return _best_feature(X, y)
    pos = int(y.sum())
    if pos < 1:
        raise ValueError(f"{KEY}: no cadre in the training cut-offs has a discipline record in the following year")
    if method == "logistic":
        return _logistic().fit(X, y)
    return _xgb(seed, min(10.0, (len(y) - pos) / pos), params).fit(X, y)


def fit(method: str, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray, seed: int,
        params: dict | None = None) -> IntegrityRiskModel:
    """The method fitted on all rows, calibrated on raw scores it did not see: out-of-fold by cadre for
    the fitted methods (a cadre's cut-offs stay together), the rule's own counts for the rule."""
    X = X[features.FEATURE_NAMES].astype("float64")
    model = IntegrityRiskModel(method, _scorer(method, X, y, seed, params))
    if method in ("logistic", "xgboost") and len(np.unique(groups[y == 1])) >= 2:
        raw = np.zeros(len(y))
        k = int(min(5, len(np.unique(groups[y == 1]))))
        for tr, te in GroupKFold(k).split(X, y, groups):
            if y[tr].sum() < 1:
                raw[te] = np.nan
                continue
            raw[te] = IntegrityRiskModel(method, _scorer(method, X.iloc[tr], y[tr], seed, params)).raw(X.iloc[te])
        ok = np.isfinite(raw)
        model.calibrator = MonotoneCalibrator.fit(raw[ok], y[ok])
    else:
        model.calibrator = MonotoneCalibrator.fit(model.raw(X), y)
    return model


def train(env: common.Env, df: pd.DataFrame | None = None, params: dict | None = None) -> dict:
    day, seed = env.day, env.seed()
    rec = features._records(env)
    all_cut, train_cut, test_cut = training_cutoffs(features.first_record_day(rec), day)
    pan = features.panel(env, all_cut, rec) if df is None else df
    common.check_features(pan, features.FEATURE_NAMES, KEY)
    tr, te = pan[pan.cutoff.isin(train_cut)], pan[pan.cutoff == test_cut]
    Xtr, ytr = tr[features.FEATURE_NAMES].astype("float64"), tr.label.to_numpy(int)
    Xte, yte = te[features.FEATURE_NAMES].astype("float64"), te.label.to_numpy(int)
    held, rows, m = {}, [], {}
    for k in METHODS:
        mdl = fit(k, Xtr, ytr, tr.cadre_id.to_numpy(), seed, params)
        held[k] = (mdl.raw(Xte), mdl.probability(Xte))
        rows.append(baselines.scored(k, LABELS[k], evaluate.auc, yte, held[k][0], servable=True, seed=seed))
        m[f"{k}_brier"] = evaluate.brier(yte, held[k][1])
    served, why = baselines.choose_served(rows, env.cfg.baseline_margin)
    for r in rows:
        m.update(r.metrics("auc"))
    m.update(evaluate.metrics(yte, held[served.method][0], held[served.method][1], "heldout"))
    m.update({"train_rows": len(tr), "train_positives": int(ytr.sum()), "train_cutoffs": len(train_cut)})
    model = fit(served.method, pan[features.FEATURE_NAMES], pan.label.to_numpy(int), pan.cadre_id.to_numpy(), seed, params)
    if not model.calibrator.increasing:
        raise ValueError(f"{KEY}: calibration ({model.calibrator.kind}) maps a higher score to a lower probability")
    m.update(report(env, te, held[served.method][0], test_cut))   # truth read after the choice, held-out rows only
    env.setup(KEY)
    with mlflow.start_run(run_name=env.run_name) as run:
        mlflow.log_params({**PARAMS, **(params or {}), "seed": seed, "as_of_date": day.isoformat(),
                           "label": f"a discipline record (纪律处分) within {features.HORIZON_DAYS} days after the cut-off",
                           "test_cutoff": test_cut.isoformat(), "train_cutoffs": ",".join(map(str, train_cut)),
                           "calibration": model.calibrator.kind, "monotone_constraints": str(MONOTONE),
                           "features": ",".join(features.FEATURE_NAMES), "served_method": served.method,
                           "baseline_margin": env.cfg.baseline_margin})
        mlflow.log_metrics(m)
        mlflow.set_tag("served_reason", why[:5000])
        mlflow.log_table(pd.DataFrame(baselines.table(rows, "auc")), "baselines/heldout_auc.json")
        mlflow.log_table(evaluate.reliability(yte, held[served.method][1]), "reliability_heldout.json")
        _plots(yte, held[served.method][1])
        ex = Xte.head(5)
        info = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=ex,
                                       signature=infer_signature(ex, model.predict(None, ex)),
                                       pip_requirements=common.PIP_REQUIREMENTS)
        metric = m["heldout_auc"] if np.isfinite(m["heldout_auc"]) else -m["heldout_brier"]
        version = common.register_candidate(env, KEY, info.model_uri, run.info.run_id, "heldout_auc", metric,
                                            tags={"served_method": served.method, "served_reason": why[:5000]})
    return {"model": KEY, "run_id": run.info.run_id, "metrics": m, "version": version,
            "served_method": served.method, "served_reason": why, "baselines": baselines.table(rows, "auc"),
            "test_cutoff": test_cut.isoformat(), "heldout": {"cadre_id": te.cadre_id.to_numpy(), "label": yte,
                                                 "raw": held[served.method][0], "probability": held[served.method][1]}}


def report(env: common.Env, te: pd.DataFrame, raw: np.ndarray, cutoff: dt.date) -> dict:
    """Against the planted truth (synthetic cities only; read after the choice, on the held-out rows):
    does the held-out ranking find cadres whose problem had begun by the cut-off, and how well does the
    best single feature do on the same rows?"""
    truth = env.truth_dir()
    return evaluate.truth_check(te, raw, truth, cutoff) if truth is not None else {}


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
