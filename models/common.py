"""Shared pieces of the four N models: the model environment (lake, configuration, MLflow), and the
registry life cycle.

Every model follows the databricks mlops-stacks life cycle, one step per task of the ``models``
stage (:mod:`redcloud.stages.models`):

1. **train** (``models/<model>/train.py``): build features from gold/silver, fit, evaluate on a
   held-out split, log params/metrics/plots and a pyfunc model with signature and input example,
   and register it as a new version with the alias ``candidate`` (:func:`register_candidate`);
2. **validate** (:func:`validate`): the candidate becomes ``challenger`` only if its held-out metric
   beats the champion's by more than the configured margin; the verdict is tagged on the version;
3. **promote** (:func:`promote`): ``champion`` moves to the challenger; the alias is moved, nothing copied;
4. **score** (``models/<model>/score.py``): loads ``models:/<name>@champion`` and writes the concrete
   version on every output row.

Nothing here reads process-wide settings: an :class:`Env` built from the run context is passed down.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("redcloud.models")

CHAMPION, CHALLENGER, CANDIDATE = "champion", "challenger", "candidate"
MODEL_KEYS = ("cadre_evaluation", "branch_innovation", "member_vitality", "integrity_portrait")
# Requirements recorded with every logged model: skips MLflow's slow requirement inference.
PIP_REQUIREMENTS = ["mlflow==3.17.2", "xgboost-cpu==3.2.0", "scikit-learn==1.9.1", "pandas==2.3.3", "numpy"]


class NotEnoughHistory(ValueError):
    """The lake's history cannot support this model's training design (e.g. a year split with one year).

    The models stage reports the model as skipped with this message and goes on with the others;
    any other error still fails the stage."""


class FeatureHealthError(ValueError):
    """A model's feature holds no value at all: a lost join or an empty source column, never trained on."""


def check_features(df: pd.DataFrame, names: list[str], model: str) -> None:
    """Refuse to train when a feature is missing or has no value in any row (an all-NULL input would
    silently become a constant, and the model card would still list it)."""
    empty = [n for n in names if n not in df.columns or df[n].isna().all()]
    if empty:
        raise FeatureHealthError(f"{model}: feature(s) with no value in any of {len(df):,} rows: {', '.join(empty)}"
                                 " (check the join or the source column before training)")


@dataclass
class Env:
    """What model code needs from a run: the lake, ``[models]`` and ``[mlflow]``, the date and run name."""

    lake: object                    # redcloud.lake.Lake
    cfg: object                     # redcloud.config.ModelsConfig
    mlflow_cfg: object              # redcloud.config.MlflowConfig
    day: dt.date
    run_name: str = "train"
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_context(cls, ctx) -> "Env":
        return cls(ctx.lake, ctx.settings.models, ctx.settings.mlflow, ctx.day, ctx.run_id)

    # -- lake -------------------------------------------------------------------------------------
    def read(self, layer: str, name: str, columns: list[str] | None = None) -> pd.DataFrame | None:
        """A Delta table as pandas (``None`` when it does not exist); cached per table version, since
        several models read the same tables within one stage."""
        if not self.lake.exists(layer, name):
            return None
        key = (layer, name, self.lake.version(layer, name), tuple(columns) if columns else None)
        if key not in self._cache:
            self._cache[key] = self.lake.arrow(layer, name, columns)
        return self._cache[key].to_pandas()

    def truth_dir(self) -> Path | None:
        t = self.cfg.truth_dir
        return Path(t) if t and Path(t).is_dir() else None

    # -- MLflow -----------------------------------------------------------------------------------
    def seed(self) -> int:
        """Seed Python, NumPy and hashing from ``[models] seed``; returns it."""
        seed = int(self.cfg.seed)
        random.seed(seed)
        np.random.seed(seed)
        os.environ["PYTHONHASHSEED"] = str(seed)
        return seed

    def registered_name(self, key: str) -> str:
        return f"{self.cfg.name_prefix}_{key}"

    def client(self):
        from mlflow import MlflowClient

        quiet_mlflow()   # the first client creates the store: its table-creation messages are not news
        return MlflowClient(tracking_uri=self.mlflow_cfg.tracking_uri, registry_uri=self.mlflow_cfg.tracking_uri)

    def setup(self, key: str) -> str:
        """Point MLflow at the configured store and select the experiment of one model; returns its id."""
        import mlflow

        quiet_mlflow()

        s = self.mlflow_cfg
        if s.tracking_uri.startswith("sqlite:///"):
            Path(s.tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(s.tracking_uri)
        mlflow.set_registry_uri(s.tracking_uri)
        name = f"redcloud/{key}"
        exp = mlflow.get_experiment_by_name(name)
        if exp is None:
            art = Path(s.artifact_root) / key
            art.mkdir(parents=True, exist_ok=True)
            exp_id = mlflow.create_experiment(name, artifact_location=art.as_uri())
        else:
            exp_id = exp.experiment_id
        mlflow.set_experiment(experiment_id=exp_id)
        return exp_id

    def version_by_alias(self, key: str, alias: str):
        """The ModelVersion behind ``@alias``, or None."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client().get_model_version_by_alias(self.registered_name(key), alias)
        except MlflowException:
            return None

    def champion(self, key: str):
        return self.version_by_alias(key, CHAMPION)

    def needs_training(self, key: str) -> bool:
        """``[models] retrain``: always, never, or auto (when the model has no champion yet)."""
        mode = self.cfg.retrain
        if mode == "always":
            return True
        if mode == "never":
            return False
        return self.champion(key) is None

    def load_champion(self, key: str):
        """(python model object, version) loaded from ``models:/<name>@champion``."""
        import mlflow

        self.setup(key)
        mv = self.champion(key)
        if mv is None:
            raise RuntimeError(f"no @champion for {self.registered_name(key)}: train first (models.retrain)")
        pm = mlflow.pyfunc.load_model(f"models:/{self.registered_name(key)}@{CHAMPION}")
        return pm, str(mv.version)


# ------------------------------------------------------------------------------------------------
# the registry life cycle: candidate -> challenger -> champion
# ------------------------------------------------------------------------------------------------

def quiet_mlflow() -> None:
    """MLflow's routine messages (cloudpickle advice for every pyfunc model, input-example validation,
    store creation) are not news in the stage's output; its warnings about real problems still show."""
    for name in ("mlflow.pyfunc", "mlflow.models", "mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")   # no tqdm bars per artifact download


def register_candidate(env: Env, key: str, model_uri: str, run_id: str, metric: str, value: float,
                       higher_is_better: bool = True, tags: dict[str, str] | None = None) -> str:
    """Register ``model_uri`` as a new version of the model, with its held-out metric, as ``@candidate``."""
    import contextlib
    import io

    import mlflow

    with contextlib.redirect_stderr(io.StringIO()):   # "Successfully registered model ..." (printed, not logged)
        mv = mlflow.register_model(model_uri, env.registered_name(key), tags={
            "heldout_metric": metric, "heldout_value": repr(float(value)),
            "higher_is_better": str(higher_is_better).lower(), "validation_status": "pending", **(tags or {})})
    c = env.client()
    c.set_registered_model_alias(env.registered_name(key), CANDIDATE, mv.version)
    c.set_tag(run_id, "registered_version", mv.version)
    return str(mv.version)


@dataclass
class Verdict:
    model: str
    version: str | None
    passed: bool
    metric: str = ""
    value: float | None = None
    champion_before: str | None = None
    champion_value: float | None = None
    reason: str = ""


def _value(mv, tag: str = "heldout_value") -> float:
    try:
        return float(mv.tags.get(tag, "nan"))
    except (TypeError, ValueError):
        return float("nan")


def validate(env: Env, key: str, min_gain: float = 0.0) -> Verdict | None:
    """Validate ``@candidate`` against ``@champion``; on a pass it becomes ``@challenger``.

    Rule (recorded on the version): no champion yet -> pass; otherwise pass iff the candidate's
    held-out metric is better than the champion's by more than ``min_gain``. The candidate alias
    is removed either way. None when there is no candidate."""
    c, name = env.client(), env.registered_name(key)
    cand = env.version_by_alias(key, CANDIDATE)
    if cand is None:
        return None
    metric, value = cand.tags.get("heldout_metric", ""), _value(cand)
    higher = cand.tags.get("higher_is_better", "true") == "true"
    champ = env.champion(key)
    cur_val = None
    if champ is None:
        passed, reason = bool(np.isfinite(value)), "no champion yet"
    elif str(champ.version) == str(cand.version):
        passed, reason = False, "the candidate is the champion"
    else:
        cur_val = _value(champ)
        if not np.isfinite(cur_val):
            passed, reason = True, "champion has no comparable metric"
        else:
            gain = (value - cur_val) if higher else (cur_val - value)
            passed = bool(np.isfinite(value) and gain > min_gain)
            reason = (f"{metric} {value:.4f} vs champion v{champ.version} {cur_val:.4f}: "
                      + ("better" if passed else "not better") + f" (rule: {'higher' if higher else 'lower'}"
                      f" is better, min gain {min_gain})")
    c.set_model_version_tag(name, cand.version, "validation_status", "passed" if passed else "failed")
    c.set_model_version_tag(name, cand.version, "validation_reason", reason)
    c.delete_registered_model_alias(name, CANDIDATE)
    if passed:
        c.set_registered_model_alias(name, CHALLENGER, cand.version)
    c.set_registered_model_tag(name, "promotion_rule",
                               f"a new version becomes champion only when its held-out {metric} is "
                               f"{'higher' if higher else 'lower'} than the champion's by more than {min_gain}")
    return Verdict(key, str(cand.version), passed, metric, value,
                   str(champ.version) if champ else None, cur_val, reason)


def promote(env: Env, key: str) -> dict | None:
    """Move ``@champion`` to ``@challenger`` (and drop the challenger alias); None without a challenger."""
    c, name = env.client(), env.registered_name(key)
    ch = env.version_by_alias(key, CHALLENGER)
    if ch is None:
        return None
    before = env.champion(key)
    c.set_registered_model_alias(name, CHAMPION, ch.version)
    c.delete_registered_model_alias(name, CHALLENGER)
    c.set_model_version_tag(name, ch.version, "promoted", "true")
    c.set_model_version_tag(name, ch.version, "promoted_on", env.day.isoformat())
    return {"model": key, "champion": str(ch.version), "previous": str(before.version) if before else None}


# ------------------------------------------------------------------------------------------------
# plots and artifacts
# ------------------------------------------------------------------------------------------------

def cjk_matplotlib():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = ["Noto Sans CJK SC", "Noto Sans CJK JP", "DejaVu Sans"]
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def log_figure(fig, name: str) -> None:
    import mlflow

    mlflow.log_figure(fig, f"plots/{name}")
    import matplotlib.pyplot as plt

    plt.close(fig)


def log_json(obj, name: str) -> None:
    import mlflow

    mlflow.log_dict(json.loads(json.dumps(obj, default=_jsonable, ensure_ascii=False)), name)


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
