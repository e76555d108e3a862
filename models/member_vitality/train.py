"""Fit the vitality index (entropy weights + optional AHP) on all but the last months; log a pyfunc."""

from __future__ import annotations

import mlflow
import pandas as pd
from mlflow.models import infer_signature

from models import common
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
    model, info = fit(tr, ahp_matrix, alpha, cfg.vitality_ahp_max_cr)
    scored = pd.concat([df[["member_id", "month"]].reset_index(drop=True),
                        model.predict(None, df).reset_index(drop=True)], axis=1)
    m = {"heldout_stability_spearman": evaluate.stability(scored, held),
         "train_stability_spearman": evaluate.stability(scored[~scored.month.isin(held)]),
         "index_mean": float(scored.vitality_index.mean()), "index_std": float(scored.vitality_index.std()),
         "train_rows": len(tr)}
    if info["ahp_cr"] is not None:
        m["ahp_consistency_ratio"] = info["ahp_cr"]
    truth = env.truth_dir()
    if truth is not None:
        m.update(evaluate.truth_check(scored, truth))
    env.setup(KEY)
    with mlflow.start_run(run_name=env.run_name) as run:
        mlflow.log_params({"seed": seed, "method": "entropy weight" + (" + AHP" if info["ahp_used"] else ""),
                           "ahp_alpha": alpha if info["ahp_used"] else 0.0, "ahp_used": info["ahp_used"],
                           "holdout_months": ",".join(map(str, held)), "normalisation": "min-max p1-p99, clipped",
                           **{f"w_{k}": round(float(v), 5) for k, v in model.weights.items()}})
        mlflow.log_metrics(m)
        wt = model.weights_table()
        mlflow.log_table(wt, "weights.json")
        _plots(wt, scored)
        ex = df[features.INDICATOR_NAMES].astype("float64").head(5)
        info_m = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=ex,
                                         signature=infer_signature(ex, model.predict(None, ex)),
                                         pip_requirements=common.PIP_REQUIREMENTS)
        version = common.register_candidate(env, KEY, info_m.model_uri, run.info.run_id,
                                            "heldout_stability_spearman", m["heldout_stability_spearman"])
    return {"model": KEY, "run_id": run.info.run_id, "metrics": m, "version": version, "weights": wt}


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
