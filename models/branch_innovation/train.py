"""Train the branch innovation model: ECDF reference, KMeans archetypes (k by silhouette), IsolationForest."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from models import common
from models.branch_innovation import evaluate, features
from models.branch_innovation.model import BranchInnovationModel
from redcloud.rules.vocab import BALANCED_ARCHETYPE, LOW_ARCHETYPE

KEY = "branch_innovation"
SILHOUETTE_SAMPLE = 3000


def name_clusters(centers_z: np.ndarray) -> list[str]:
    """Chinese archetype names from centroid z-scores (see features.PROFILES)."""
    idx = {c: i for i, c in enumerate(features.INNOVATION_NAMES)}
    prof = {k: centers_z[:, [idx[c] for c in cols]].mean(axis=1) for k, (cols, _) in features.PROFILES.items()}
    names: list[str | None] = [None] * len(centers_z)
    low = int(np.argmin(centers_z.mean(axis=1)))
    names[low] = LOW_ARCHETYPE
    used = {LOW_ARCHETYPE}
    order = sorted(range(len(centers_z)), key=lambda i: -centers_z[i].mean())
    for i in order:
        if names[i]:
            continue
        for k in sorted(prof, key=lambda k: -prof[k][i]):
            if features.PROFILES[k][1] not in used:
                names[i] = features.PROFILES[k][1]
                break
        else:   # every profile's name is taken: name it from its centre, never by a number
            names[i] = _combined_name(centers_z[i], {k: v[i] for k, v in prof.items()}, used)
        used.add(names[i])
    return names


def stable_names(centers: np.ndarray, scaler, previous: tuple[np.ndarray, list[str]] | None,
                 max_distance: float = 1.0) -> list[str]:
    """Archetype names that survive a retrain. ``centers``: the new clusters' centres in the indicators'
    units; ``previous``: the champion's centres (same units) and names. Each new cluster takes the name of
    the previous cluster it matches one-to-one (Hungarian assignment on distances measured in the new
    scaler's standard deviations) when the match is closer than ``max_distance``; the rest are named from
    their centres, avoiding names already given."""
    from scipy.optimize import linear_sum_assignment

    z = scaler.transform(centers)
    fresh = name_clusters(z)
    if not previous or not len(previous[1]):
        return fresh
    pz = scaler.transform(np.asarray(previous[0], float))
    d = np.sqrt(((z[:, None, :] - pz[None, :, :]) ** 2).mean(axis=2))   # RMS distance per indicator
    rows, cols = linear_sum_assignment(d)
    names: list[str | None] = [None] * len(z)
    for r, c in zip(rows, cols):
        if d[r, c] < max_distance:
            names[r] = previous[1][c]
    used = {n for n in names if n}
    for i in range(len(z)):
        if names[i] is None:
            cand = fresh[i] if fresh[i] not in used else None
            if cand is None:
                idx = {c: j for j, c in enumerate(features.INNOVATION_NAMES)}
                prof = {k: float(z[i, [idx[c] for c in cols]].mean()) for k, (cols, _) in features.PROFILES.items()}
                cand = _combined_name(z[i], prof, used)
            names[i] = cand
            used.add(cand)
    return names


def _previous_archetypes(env: common.Env) -> tuple[np.ndarray, list[str]] | None:
    """The champion's archetype centres (indicator units) and names, when there is a champion."""
    if env.champion(KEY) is None:
        return None
    pm, _ = env.load_champion(KEY)
    prev = pm.unwrap_python_model()
    return prev.scaler.inverse_transform(prev.kmeans.cluster_centers_), list(prev.names)


def _combined_name(center: np.ndarray, prof: dict[str, float], used: set[str]) -> str:
    """A readable name for a cluster whose leading profile is already taken: 均衡发展型 when it sits near
    the average everywhere, else its two (or three) strongest profiles joined, e.g. 规范组织·志愿服务型."""
    if BALANCED_ARCHETYPE not in used and np.abs(center).max() < 0.5:
        return BALANCED_ARCHETYPE
    ranked = sorted(prof, key=lambda k: -prof[k])
    for n in (2, 3, 4):
        for first in ranked:
            parts = [first] + [k for k in ranked if k != first][: n - 1]
            name = "·".join(features.PROFILES[k][1].removesuffix("型") for k in parts) + "型"
            if name not in used:
                return name
    return BALANCED_ARCHETYPE if BALANCED_ARCHETYPE not in used else "其他类型"


def fit(bq_train: pd.DataFrame, meetings_train: pd.DataFrame, seed: int, k_range=(3, 6), top_share: float = 0.025,
        previous: tuple[np.ndarray, list[str]] | None = None):
    """Archetypes and the ECDF reference from training branch-quarters; the forest and its cut-off from
    training quarters' meetings only (``top_share``: configured, never tuned on the truth); archetype names
    carried over from ``previous`` (the champion's centres and names) where clusters match."""
    X = bq_train[features.INNOVATION_NAMES].astype("float64").to_numpy()
    scaler = StandardScaler().fit(X)
    Z = scaler.transform(X)
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(Z), min(SILHOUETTE_SAMPLE, len(Z)), replace=False)
    sil = {}
    fitted = {}
    for k in range(int(k_range[0]), int(k_range[1]) + 1):
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(Z)
        sil[k] = float(silhouette_score(Z[sample], km.labels_[sample]))
        fitted[k] = km
    best = max(sil, key=lambda k: (sil[k], -k))
    km = fitted[best]
    names = stable_names(scaler.inverse_transform(km.cluster_centers_), scaler, previous)
    forest = IsolationForest(n_estimators=200, random_state=seed, n_jobs=1)
    MF = meetings_train[features.MEETING_FEATURES].astype("float64")
    forest.fit(MF)
    cut = float(np.quantile(-forest.score_samples(MF), 1 - top_share))
    ref = {c: bq_train[c].to_numpy(float) for c in features.INNOVATION_NAMES}
    return BranchInnovationModel(ref, scaler, km, names, forest, cut), sil, best


def train(env: common.Env, bq: pd.DataFrame | None = None, meetings: pd.DataFrame | None = None,
          k_range=None) -> dict:
    seed = env.seed()
    bq = features.branch_quarters(env) if bq is None else bq
    meetings = features.meetings(env) if meetings is None else meetings
    k_range = k_range or env.cfg.branch_k_range
    complete = bq[bq.quarter_complete.fillna(True).astype(bool)]
    quarters = sorted(complete.quarter.unique())
    if len(quarters) < 2:
        raise common.NotEnoughHistory(
            f"branch_innovation: training holds out the latest complete quarter and trains on earlier ones; "
            f"complete quarters in the lake: {[str(q) for q in quarters]}")
    held_q = quarters[-1]
    tr, te = bq[bq.quarter < held_q], bq[bq.quarter == held_q]
    top_share = env.cfg.branch_forest_top_share
    previous = _previous_archetypes(env)
    model, sil, best = fit(tr, meetings[meetings.quarter < held_q], seed, k_range, top_share, previous)
    Zte = model.scaler.transform(te[features.INNOVATION_NAMES].astype("float64").to_numpy())
    lab = model.kmeans.predict(Zte)
    kept = sum(n in previous[1] for n in model.names) if previous else 0
    m = {"heldout_silhouette": float(silhouette_score(Zte, lab)) if len(set(lab)) > 1 else -1.0,
         "archetype_names_kept": kept,
         "k": best, **{f"silhouette_k{k}": v for k, v in sil.items()}}
    scored = pd.concat([bq[["org_id", "quarter"]].reset_index(drop=True),
                        model.predict(None, bq).reset_index(drop=True)], axis=1)
    anoms = model.anomalies(meetings)
    m["meetings_flagged"] = int(anoms.is_anomaly.sum())
    m.update({f"flagged_{k}": v for k, v in evaluate.reasons_count(anoms).items()})
    m.update(report(env, anoms, scored, model, meetings[meetings.quarter == held_q], bq))   # after the model and its cut-off are fixed
    env.setup(KEY)
    with mlflow.start_run(run_name=env.run_name) as run:
        mlflow.log_params({"seed": seed, "k_criterion": "max silhouette on training branch-quarters",
                           "k_range": f"{k_range[0]}-{k_range[1]}", "heldout_quarter": str(held_q),
                           "archetypes": ",".join(model.names), "forest_top_share": top_share,
                           "forest_fitted_on": f"meetings before {held_q}",
                           "innovation_indicators": ",".join(features.INNOVATION_NAMES)})
        mlflow.log_metrics(m)
        centers = pd.DataFrame(model.scaler.inverse_transform(model.kmeans.cluster_centers_),
                               columns=features.INNOVATION_NAMES).assign(archetype=model.names)
        mlflow.log_table(centers, "archetype_centers.json")
        _plots(sil, scored)
        ex = bq[features.INNOVATION_NAMES].astype("float64").head(5)
        info = mlflow.pyfunc.log_model(name="model", python_model=model, input_example=ex,
                                       signature=infer_signature(ex, model.predict(None, ex)),
                                       pip_requirements=common.PIP_REQUIREMENTS)
        version = common.register_candidate(env, KEY, info.model_uri, run.info.run_id, "heldout_silhouette",
                                            m["heldout_silhouette"])
    return {"model": KEY, "run_id": run.info.run_id, "metrics": m, "version": version, "archetypes": model.names}


def report(env: common.Env, anoms: pd.DataFrame, scored: pd.DataFrame, model: BranchInnovationModel | None = None,
           held_meetings: pd.DataFrame | None = None, bq: pd.DataFrame | None = None) -> dict:
    """The final report against the planted truth (synthetic cities only). The only place this model
    reads the truth: nothing fitted or chosen above depends on it. Beside the served detector, on the
    held-out quarter's meetings: the rules a person would apply alone and the forest alone; beside the
    innovation score, the best single indicator."""
    truth = env.truth_dir()
    if truth is None:
        return {}
    out = evaluate.truth_check(anoms, scored, truth)
    if model is not None and held_meetings is not None and len(held_meetings):
        out.update(evaluate.detectors_heldout(model, held_meetings, truth))
    if bq is not None:
        out.update(evaluate.best_single_indicator(bq, truth))
    return out


def _plots(sil: dict, scored: pd.DataFrame) -> None:
    plt = common.cjk_matplotlib()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(list(sil), list(sil.values()), marker="o", color="#c0392b")
    ax.set_xlabel("聚类数 k")
    ax.set_ylabel("轮廓系数")
    ax.set_title("聚类数选择（轮廓系数）")
    common.log_figure(fig, "silhouette.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, g in scored.groupby("archetype"):
        ax.hist(g.innovation_score, bins=30, alpha=0.6, label=name)
    ax.legend()
    ax.set_title("各类型支部创新指数分布")
    common.log_figure(fig, "innovation_by_archetype.png")
