"""Fit the vitality index on all but the last months and choose its weights by predictive validity.

Four weightings are fitted on the training months: learning points alone (what a person would look
at), equal weights, entropy weights (+ AHP when configured) and the first principal component. Each is
scored on what vitality should predict and the index has not seen: a member's mean index over the
training months against their lapse rate (no learning, or 党费 not on time) in the held-out months
(Spearman, with a bootstrap interval over members). The serving rule (``models.baselines``) chooses,
simplest first; the planted truth, when present, is only reported."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature

from models import baselines, common
from models.member_vitality import evaluate, features
from models.member_vitality.model import VitalityIndexModel, ahp, combine, entropy_weights, normalise

KEY = "member_vitality"
HOLDOUT_MONTHS = 3


def fit(train: pd.DataFrame, ahp_matrix, alpha: float, max_cr: float) -> tuple[VitalityIndexModel, dict]:
    X = train[features.INDICATOR_NAMES].astype("float64")
    lo, hi = X.quantile(0.01), X.quantile(0.99)
    hi = hi.where(hi > lo, X.max())
    w_e = entropy_weights(normalise(X, lo, hi))
    info = {"ahp_used": False, "ahp_cr": None}
    dim_w = None
    if ahp_matrix:
        dim_w, cr = ahp(ahp_matrix)
        info["ahp_cr"] = cr
        if cr < max_cr:
            info["ahp_used"] = True
        else:
            dim_w = None  # inconsistent expert judgement: entropy weights only
    w = combine(w_e, dim_w, alpha)
    return VitalityIndexModel(lo, hi, w, w_e, None if dim_w is None else list(dim_w), info["ahp_cr"]), info


def pca_weights(Z: pd.DataFrame) -> pd.Series:
    """Data-driven alternative: the first principal component's loadings (oriented so that they sum
    positive, negative loadings dropped), normalised to sum 1."""
    Zc = (Z - Z.mean()).fillna(0.0).to_numpy()
    _, _, vt = np.linalg.svd(Zc, full_matrices=False)
    v = vt[0] if vt[0].sum() >= 0 else -vt[0]
    w = pd.Series(np.clip(v, 0.0, None), index=Z.columns)
    return w / w.sum() if w.sum() > 0 else pd.Series(1.0 / len(Z.columns), index=Z.columns)


def lapse_rate(df: pd.DataFrame, months) -> pd.Series:
    """Per member, the share of ``months`` with no learning day or 党费 not paid on time."""
    h = df[df.month.isin(months)]
    lapse = (h.learning_days.fillna(0) <= 0) | (h.dues_on_time.fillna(1.0) < 1.0)
    return lapse.groupby(h.member_id).mean()


def _spearman(y, p) -> float:
    return float(pd.Series(p).corr(pd.Series(y), method="spearman"))


METHODS = {"single_feature": "学习积分单项（人工规则）", "equal": "等权重", "entropy_ahp": "熵权（+AHP）",
           "pca": "第一主成分"}


def alternatives(model: VitalityIndexModel, tr: pd.DataFrame) -> dict[str, VitalityIndexModel]:
    """The four weightings as models sharing the training months' normalisation."""
    Z = normalise(tr[features.INDICATOR_NAMES].astype("float64"), model.lo, model.hi)
    names = features.INDICATOR_NAMES
    single = pd.Series([1.0 if c == "learning_points" else 0.0 for c in names], index=names)
    equal = pd.Series(1.0 / len(names), index=names)

    def with_weights(w):
        return VitalityIndexModel(model.lo, model.hi, w, model.entropy, model.ahp_weights, model.ahp_cr)
    return {"single_feature": with_weights(single), "equal": with_weights(equal), "entropy_ahp": model,
            "pca": with_weights(pca_weights(Z))}


def compare(df: pd.DataFrame, tr: pd.DataFrame, held, fitted: VitalityIndexModel, seed: int, margin: float):
    """(served method, its model, scores, reason): predictive validity of each weighting on the held-out months."""
    lapse = lapse_rate(df, held)
    rows, models = [], alternatives(fitted, tr)
    for k, mdl in models.items():
        idx = mdl.predict(None, tr).vitality_index.to_numpy()
        before = pd.Series(idx, index=tr.index).groupby(tr.member_id).mean()
        j = pd.concat([before.rename("index"), (-lapse).rename("y")], axis=1, join="inner")
        rows.append(baselines.scored(k, METHODS[k], _spearman, j.y.to_numpy(), j["index"].to_numpy(),
                                     servable=True, seed=seed))
    served, why = baselines.choose_served(rows, margin)
    return served, models[served.method], rows, why


def train(env: common.Env, df: pd.DataFrame | None = None, ahp_matrix=None, alpha: float | None = None) -> dict:
    cfg = env.cfg
    seed = env.seed()
    df = features.build(env) if df is None else df
    ahp_matrix = cfg.vitality_ahp_matrix if ahp_matrix is None else ahp_matrix
    alpha = cfg.vitality_ahp_alpha if alpha is None else alpha
    months = sorted(df.month.unique())
    if len(months) <= HOLDOUT_MONTHS:
        raise common.NotEnoughHistory(
            f"member_vitality: training holds out the last {HOLDOUT_MONTHS} months and fits the weights on earlier "
            f"ones; months in the lake: {len(months)}")
    held = months[-HOLDOUT_MONTHS:]
    tr = df[~df.month.isin(held)]
    fitted, info = fit(tr, ahp_matrix, alpha, cfg.vitality_ahp_max_cr)
    served, model, rows, why = compare(df, tr, held, fitted, seed, cfg.baseline_margin)
    scored = pd.concat([df[["member_id", "month"]].reset_index(drop=True),
                        model.predict(None, df).reset_index(drop=True)], axis=1)
    m = {"heldout_predictive_spearman": served.score,
         "heldout_stability_spearman": evaluate.stability(scored, held),
         "train_stability_spearman": evaluate.stability(scored[~scored.month.isin(held)]),
         "index_mean": float(scored.vitality_index.mean()), "index_std": float(scored.vitality_index.std()),
         "train_rows": len(tr)}
    for r in rows:
        m.update(r.metrics("predictive_spearman"))
    if info["ahp_cr"] is not None:
        m["ahp_consistency_ratio"] = info["ahp_cr"]
    m.update(report(env, scored, df))   # after the weighting is chosen
    env.setup(KEY)
    with mlflow.start_run(run_name=env.run_name) as run:
        mlflow.log_params({"seed": seed, "method": served.method,
                           "entropy_method": "entropy weight" + (" + AHP" if info["ahp_used"] else ""),
                           "ahp_alpha": alpha if info["ahp_used"] else 0.0, "ahp_used": info["ahp_used"],
                           "holdout_months": ",".join(map(str, held)), "normalisation": "min-max p1-p99, clipped",
                           "baseline_margin": cfg.baseline_margin,
                           **{f"w_{k}": round(float(v), 5) for k, v in model.weights.items()}})
        mlflow.log_metrics(m)
        mlflow.set_tag("served_reason", why[:5000])
        mlflow.log_table(pd.DataFrame(baselines.table(rows, "predictive_spearman")),
                         "baselines/heldout_predictive_spearman.json")
        wt = model.weights_table()
        mlflow.log_table(wt, "weights.json")
        _plots(wt, scored)
        ex = df[features.INDICATOR_NAMES].astype("float64").head(5)
        info_m = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=ex,
                                         signature=infer_signature(ex, model.predict(None, ex)),
                                         pip_requirements=common.PIP_REQUIREMENTS)
        version = common.register_candidate(env, KEY, info_m.model_uri, run.info.run_id,
                                            "heldout_predictive_spearman", served.score,
                                            tags={"served_method": served.method, "served_reason": why[:5000]})
    return {"model": KEY, "run_id": run.info.run_id, "metrics": m, "version": version, "weights": wt,
            "served_method": served.method, "served_reason": why,
            "baselines": baselines.table(rows, "predictive_spearman")}


def report(env: common.Env, scored: pd.DataFrame, df: pd.DataFrame | None = None) -> dict:
    """The final report against the planted latent vitality (synthetic cities only): the only place this
    model reads the truth; the weighting served was chosen before."""
    truth = env.truth_dir()
    if truth is None:
        return {}
    out = evaluate.truth_check(scored, truth)
    if df is not None:
        out.update(evaluate.best_single_indicator(df, truth))
    return out


def _plots(wt: pd.DataFrame, scored: pd.DataFrame) -> None:
    plt = common.cjk_matplotlib()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.barh(wt.label, wt.weight, color="#c0392b", label="组合权重")
    ax.barh(wt.label, wt.entropy_weight, fill=False, edgecolor="black", label="熵权")
    ax.legend()
    ax.set_title("党员活力指数指标权重")
    common.log_figure(fig, "weights.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(scored.vitality_index, bins=50, color="#c0392b")
    ax.set_title("党员活力指数分布")
    common.log_figure(fig, "index_histogram.png")
