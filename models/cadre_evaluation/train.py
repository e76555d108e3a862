"""Train the cadre evaluation model: time split (train on earlier years, test on the latest), XGBoost
against a baseline, logged to MLflow, registered, promoted by held-out QWK."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature

from models import common
from models.cadre_evaluation import evaluate, features
from models.cadre_evaluation.model import CadreEvaluationModel

KEY = "cadre_evaluation"
PARAMS = dict(n_estimators=300, max_depth=3, learning_rate=0.05, subsample=0.8, colsample_bytree=0.8,
              min_child_weight=2.0, reg_lambda=1.0, tree_method="hist", n_jobs=2)


def split(df: pd.DataFrame, test_year: int = 0):
    graded = df[df.grade_code.notna()]
    if graded.empty:
        raise common.NotEnoughHistory("cadre_evaluation: no cadre-year has both a grade and observed behaviour")
    test_year = test_year or int(graded.year.max())
    train, test = graded[graded.year < test_year], graded[graded.year == test_year]
    if train.empty or test.empty:
        raise common.NotEnoughHistory(
            f"cadre_evaluation: the time split needs graded years with observed behaviour before the test year "
            f"{test_year} and in it; observed graded years: {sorted(int(y) for y in graded.year.unique())}")
    return train, test, test_year


def fit(train: pd.DataFrame, seed: int, params: dict | None = None) -> CadreEvaluationModel:
    p = {**PARAMS, **(params or {})}
    reg = xgb.XGBRegressor(**p, random_state=seed)
    X = train[features.FEATURE_NAMES].astype("float64")
    reg.fit(X, train.grade_code.astype("float64"))
    pred = reg.predict(X)
    # cut points reproduce the training grade shares (quota-like assessment)
    shares = np.bincount(train.grade_code.astype(int), minlength=4) / len(train)
    cut = np.quantile(pred, np.cumsum(shares)[:-1])
    lo, hi = np.quantile(pred, [0.01, 0.99])
    return CadreEvaluationModel(reg, list(cut), lo, hi)


def baseline(test: pd.DataFrame, prev: pd.DataFrame) -> np.ndarray:
    """Baseline: last year's observed grade carried forward (称职 when there is none)."""
    m = test[["cadre_id", "year"]].merge(prev, on=["cadre_id", "year"], how="left")
    return m.prev_grade_code.fillna(features.GRADE_CODE["称职"]).astype(int).to_numpy()


def train(env: common.Env, df: pd.DataFrame | None = None, params: dict | None = None) -> dict:
    seed = env.seed()
    df = features.build(env) if df is None else df
    common.check_features(df, features.FEATURE_NAMES, KEY)
    tr, te, test_year = split(df, env.cfg.cadre_test_year)
    model = fit(tr, seed, params)
    out = model.predict(None, te)
    m = evaluate.metrics(te.grade_code, out.predicted_grade, "test")
    base = baseline(te, features.previous_grades(env))
    m.update(evaluate.metrics(te.grade_code, base, "baseline_prev_grade"))
    m.update(evaluate.metrics(te.grade_code, np.full(len(te), features.GRADE_CODE["称职"]), "baseline_majority"))
    m["train_rows"], m["test_rows"] = len(tr), len(te)
    fair = evaluate.fairness(te.assign(predicted_grade=out.predicted_grade.to_numpy()))
    env.setup(KEY)
    with mlflow.start_run(run_name=env.run_name) as run:
        mlflow.log_params({**PARAMS, **(params or {}), "seed": seed, "test_year": test_year,
                           "train_years": ",".join(map(str, sorted(tr.year.unique()))),
                           "features": ",".join(features.FEATURE_NAMES), "target": "assessment grade code 0-3",
                           "baseline": "previous year's grade carried forward"})
        mlflow.log_metrics(m)
        mlflow.log_table(fair, "fairness/grade_distribution_by_protected_attribute.json")
        _plots(te, out, model)
        ex = te[features.FEATURE_NAMES].astype("float64").head(5)
        info = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=ex,
                                       signature=infer_signature(ex, model.predict(None, ex)),
                                       pip_requirements=common.PIP_REQUIREMENTS)
        version = common.register_candidate(env, KEY, info.model_uri, run.info.run_id, "test_qwk", m["test_qwk"])
    return {"model": KEY, "run_id": run.info.run_id, "metrics": m, "version": version, "fairness": fair}


def _plots(te: pd.DataFrame, out: pd.DataFrame, model: CadreEvaluationModel) -> None:
    plt = common.cjk_matplotlib()
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(te.grade_code.astype(int), out.predicted_grade, labels=[0, 1, 2, 3])
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.imshow(cm, cmap="Reds")
    ax.set_xticks(range(4), features.GRADES)
    ax.set_yticks(range(4), features.GRADES)
    for i in range(4):
        for j in range(4):
            ax.text(j, i, cm[i, j], ha="center", va="center")
    ax.set_xlabel("预测等次")
    ax.set_ylabel("实际等次")
    ax.set_title("干部考核等次混淆矩阵（测试年）")
    common.log_figure(fig, "confusion_matrix.png")
    contrib = np.abs(model.contributions(te)).mean(axis=0)
    fig, ax = plt.subplots(figsize=(6, 4))
    order = np.argsort(contrib)
    ax.barh([features.FEATURES[features.FEATURE_NAMES[i]][0] for i in order], contrib[order], color="#c0392b")
    ax.set_title("平均贡献度（|SHAP|）")
    common.log_figure(fig, "mean_abs_contribution.png")
