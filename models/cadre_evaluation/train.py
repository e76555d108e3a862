"""Train the cadre evaluation model: time split (train on earlier years, test on the latest); XGBoost,
a linear regression and the best single feature fitted on the same training years and compared on the
test year with the rule a person would use (last year's grade); the method that wins under the serving
rule (``models.baselines.choose_served``) is logged to MLflow and registered as the candidate."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import xgboost as xgb
from mlflow.models import infer_signature

from models import baselines, common
from models.cadre_evaluation import evaluate, features
from models.cadre_evaluation.model import CadreEvaluationModel, LinearScorer

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


def _quota_model(regressor, train: pd.DataFrame) -> CadreEvaluationModel:
    """Wrap a fitted regressor: cut points reproduce the training grade shares (quota-like assessment)."""
    pred = regressor.predict(train[features.FEATURE_NAMES].astype("float64"))
    shares = np.bincount(train.grade_code.astype(int), minlength=4) / len(train)
    cut = np.quantile(pred, np.cumsum(shares)[:-1])
    lo, hi = np.quantile(pred, [0.01, 0.99])
    return CadreEvaluationModel(regressor, list(cut), lo, hi)


def fit(train: pd.DataFrame, seed: int, params: dict | None = None) -> CadreEvaluationModel:
    """XGBoost regression on the grade code."""
    reg = xgb.XGBRegressor(**{**PARAMS, **(params or {})}, random_state=seed)
    reg.fit(train[features.FEATURE_NAMES].astype("float64"), train.grade_code.astype("float64"))
    return _quota_model(reg, train)


def _fill_and_mean(train: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    X = train[features.FEATURE_NAMES].astype("float64")
    fill = X.median().fillna(0.0)
    return fill, X.fillna(fill).mean()


def fit_linear(train: pd.DataFrame) -> CadreEvaluationModel:
    """Baseline: ordinary least squares on the same features (missing values: training median)."""
    from sklearn.linear_model import LinearRegression

    fill, mean = _fill_and_mean(train)
    X = train[features.FEATURE_NAMES].astype("float64").fillna(fill)
    lr = LinearRegression().fit(X, train.grade_code.astype("float64"))
    return _quota_model(LinearScorer(dict(zip(features.FEATURE_NAMES, lr.coef_)), fill, mean, lr.intercept_), train)


def fit_single(train: pd.DataFrame, name: str) -> CadreEvaluationModel:
    """Baseline: one feature, oriented by its rank correlation with the grade, cut at the grade shares."""
    fill, mean = _fill_and_mean(train)
    rho = train[name].astype("float64").fillna(fill[name]).corr(train.grade_code.astype("float64"), method="spearman")
    return _quota_model(LinearScorer({name: -1.0 if rho < 0 else 1.0}, fill, mean), train)


def best_single_feature(train: pd.DataFrame) -> str:
    """The feature whose grade-share cut-off scores the highest QWK on the training years (never the test year)."""
    best = None
    for name in features.FEATURE_NAMES:
        if train[name].notna().sum() == 0 or train[name].nunique() < 2:
            continue
        m = fit_single(train, name)
        q = _qwk(train.grade_code, m.grade_codes(m.raw(train)))
        if best is None or q > best[0]:
            best = (q, name)
    if best is None:
        raise common.NotEnoughHistory("cadre_evaluation: no feature varies in the training years")
    return best[1]


def _qwk(y, pred) -> float:
    return evaluate.metrics(y, pred, "x")["x_qwk"]


def baseline(test: pd.DataFrame, prev: pd.DataFrame) -> np.ndarray:
    """The rule a person would use: last year's observed grade carried forward (称职 when there is none)."""
    m = test[["cadre_id", "year"]].merge(prev, on=["cadre_id", "year"], how="left")
    return m.prev_grade_code.fillna(features.GRADE_CODE["称职"]).astype(int).to_numpy()


def compare(tr: pd.DataFrame, te: pd.DataFrame, prev: pd.DataFrame, seed: int, margin: float,
            params: dict | None = None) -> tuple[CadreEvaluationModel, baselines.Scored, list[baselines.Scored], str]:
    """Fit XGBoost and its simple alternatives on the training years, score all on the test year (QWK
    with a bootstrap interval) and choose what is served: (model, served, all scores, reason)."""
    feat = best_single_feature(tr)
    fitted = {"single_feature": fit_single(tr, feat), "linear": fit_linear(tr), "xgboost": fit(tr, seed, params)}
    labels = {"single_feature": f"单一指标（{features.FEATURES[feat][0]}）", "linear": "线性回归", "xgboost": "XGBoost"}
    y = te.grade_code.astype(int).to_numpy()
    rows = [baselines.scored(k, labels[k], _qwk, y, m.grade_codes(m.raw(te)), servable=True, seed=seed)
            for k, m in fitted.items()]
    rows.append(baselines.scored("prev_grade", "上年等次沿用（人工规则）", _qwk, y, baseline(te, prev), seed=seed))
    served, why = baselines.choose_served(rows[:3], margin)
    if rows[-1].score > served.score:
        why += f"；注意：人工规则（上年等次沿用）{rows[-1].score:.3f} 高于所选方法"
    return fitted[served.method], served, rows, why


def train(env: common.Env, df: pd.DataFrame | None = None, params: dict | None = None) -> dict:
    seed = env.seed()
    df = features.build(env) if df is None else df
    common.check_features(df, features.FEATURE_NAMES, KEY)
    tr, te, test_year = split(df, env.cfg.cadre_test_year)
    prev = features.previous_grades(env)
    model, served, rows, why = compare(tr, te, prev, seed, env.cfg.baseline_margin, params)
    out = model.predict(None, te)
    m = evaluate.metrics(te.grade_code, out.predicted_grade, "test")
    m.update(evaluate.metrics(te.grade_code, baseline(te, prev), "baseline_prev_grade"))
    m.update(evaluate.metrics(te.grade_code, np.full(len(te), features.GRADE_CODE["称职"]), "baseline_majority"))
    for r in rows:
        m.update(r.metrics("qwk"))
    m["train_rows"], m["test_rows"] = len(tr), len(te)
    fair = evaluate.fairness(te.assign(predicted_grade=out.predicted_grade.to_numpy()), max_gap=env.cfg.fairness_max_gap,
                             min_n=env.cfg.fairness_min_group)
    m["fairness_groups_flagged"] = int(fair.flagged.sum())
    m.update(report(env, te, out))   # the truth is read after the method was chosen, on the held-out year
    env.setup(KEY)
    with mlflow.start_run(run_name=env.run_name) as run:
        mlflow.log_params({**PARAMS, **(params or {}), "seed": seed, "test_year": test_year,
                           "train_years": ",".join(map(str, sorted(tr.year.unique()))),
                           "features": ",".join(features.FEATURE_NAMES), "target": "assessment grade code 0-3",
                           "served_method": served.method, "baseline_margin": env.cfg.baseline_margin})
        mlflow.log_metrics(m)
        mlflow.set_tag("served_reason", why[:5000])
        mlflow.log_table(pd.DataFrame(baselines.table(rows, "qwk")), "baselines/heldout_qwk.json")
        mlflow.log_table(fair, evaluate.FAIRNESS_ARTIFACT)   # gold cadre_evaluation_fairness is the champion's copy
        _plots(te, out, model)
        ex = te[features.FEATURE_NAMES].astype("float64").head(5)
        info = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=ex,
                                       signature=infer_signature(ex, model.predict(None, ex)),
                                       pip_requirements=common.PIP_REQUIREMENTS)
        version = common.register_candidate(env, KEY, info.model_uri, run.info.run_id, "test_qwk", m["test_qwk"],
                                            tags={"served_method": served.method, "served_reason": why[:5000]})
    return {"model": KEY, "run_id": run.info.run_id, "metrics": m, "version": version, "fairness": fair,
            "served_method": served.method, "served_reason": why, "baselines": baselines.table(rows, "qwk")}


def report(env: common.Env, te: pd.DataFrame, out: pd.DataFrame) -> dict:
    """Against the planted latent performance (synthetic cities only), on the held-out year: the served
    score and, beside it, the best single feature, so anyone can see what the model adds."""
    truth = env.truth_dir()
    return evaluate.truth_heldout(te, out.score.to_numpy(), truth) if truth is not None else {}


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
