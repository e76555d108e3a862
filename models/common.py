"""Shared helpers for the four N models: lake IO, MLflow tracking, registry and champion promotion.

Every model follows the same life cycle (databricks mlops-stacks pattern):

1. ``features``: build a pandas frame from gold/silver (no IO besides reading the lake);
2. ``train``: fit, evaluate on a held-out split, log params/metrics/plots and a pyfunc model with
   signature and input example, register it (one MLflow experiment and registered model per model);
3. promotion (:func:`register_and_promote`): the new version becomes ``@champion`` only if its
   held-out metric beats the current champion's (the decision is logged as version and run tags);
4. ``score``: always loads ``models:/<name>@champion`` and writes the version on every output row.
"""

from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from redcloud import lake
from redcloud.config import get_settings

log = logging.getLogger("redcloud.models")

CHAMPION = "champion"
MODEL_KEYS = ("cadre_evaluation", "branch_innovation", "member_vitality", "integrity_portrait")
# Requirements recorded with every logged model: skips MLflow's slow requirement inference.
PIP_REQUIREMENTS = ["mlflow==3.17.2", "xgboost-cpu==3.2.0", "scikit-learn==1.9.1", "pandas==2.3.3", "numpy"]


class NotEnoughHistory(ValueError):
    """The lake's history cannot support this model's training design (e.g. a year split with one year).

    The models stage reports the model as skipped with this message and goes on with the others;
    any other error still fails the stage."""


def seed_everything(seed: int | None = None) -> int:
    seed = get_settings().models.seed if seed is None else seed
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return seed


def registered_name(key: str) -> str:
    return f"{get_settings().models.name_prefix}_{key}"


# ------------------------------------------------------------------------------------------------
# lake IO
# ------------------------------------------------------------------------------------------------

def read_table(layer: str, name: str, columns: list[str] | None = None) -> pd.DataFrame | None:
    """A Delta table as pandas via delta-rs (gold/silver are small); ``None`` when it does not exist."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    path = lake.table_path(layer, name)
    try:
        dt_ = DeltaTable(path)
    except (TableNotFoundError, FileNotFoundError, OSError):
        return None
    key = (path, dt_.version(), tuple(columns) if columns else None)
    if key not in _CACHE:  # the same silver tables are read by several models within one stage run
        if len(_CACHE) >= 16:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = dt_.to_pyarrow_table(columns=columns)
    return _CACHE[key].to_pandas()


_CACHE: dict = {}  # (path, delta version, columns) -> pyarrow table (immutable; callers get fresh pandas)


def write_scores(spark, name: str, pdf: pd.DataFrame, schema: str) -> dict:
    """Overwrite ``gold/<name>`` with a scored pandas frame (full deterministic rebuild per run)."""
    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    struct = spark.createDataFrame([], schema).schema
    pdf = pdf[struct.fieldNames()]  # createDataFrame maps columns by position
    df = spark.createDataFrame(pdf, schema=struct) if len(pdf) else spark.createDataFrame([], struct)
    lake.write(spark, lake.DeltaDataSet(name, "gold", df, mode="overwrite"))
    return dict(table=f"gold/{name}", rows=int(len(pdf)))


def truth_dir() -> Path | None:
    t = get_settings().models.truth_dir
    return Path(t) if t and Path(t).is_dir() else None


# ------------------------------------------------------------------------------------------------
# MLflow
# ------------------------------------------------------------------------------------------------

def mlflow_setup(key: str):
    """Point MLflow at the configured store and return the experiment id of one model."""
    import mlflow

    s = get_settings().mlflow
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


def client():
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=get_settings().mlflow.tracking_uri,
                        registry_uri=get_settings().mlflow.tracking_uri)


def champion_version(key: str):
    """The ModelVersion behind ``@champion`` or None."""
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version_by_alias(registered_name(key), CHAMPION)
    except MlflowException:
        return None


@dataclass
class Promotion:
    version: str
    promoted: bool
    metric: str
    value: float
    champion_before: str | None
    champion_value: float | None
    reason: str


def register_and_promote(key: str, model_uri: str, run_id: str, metric: str, value: float,
                         higher_is_better: bool = True, min_gain: float = 0.0) -> Promotion:
    """Register ``model_uri`` as a new version and move ``@champion`` to it only if it beats the champion.

    Rule (in code, recorded on the version and the run): no champion yet -> promote; otherwise promote
    iff the held-out ``metric`` is better than the champion's by more than ``min_gain``.
    """
    import mlflow

    c = client()
    name = registered_name(key)
    mv = mlflow.register_model(model_uri, name, tags={"heldout_metric": metric, "heldout_value": repr(float(value))})
    current = champion_version(key)
    cur_val = None
    if current is None:
        promoted, reason = True, "no champion yet"
    else:
        cur_val = float(current.tags.get("heldout_value", "nan"))
        if not np.isfinite(cur_val):
            promoted, reason = True, "champion has no comparable metric"
        else:
            gain = (value - cur_val) if higher_is_better else (cur_val - value)
            promoted = bool(np.isfinite(value) and gain > min_gain)
            reason = (f"{metric} {value:.4f} vs champion v{current.version} {cur_val:.4f}: "
                      + ("better" if promoted else "not better") + f" (rule: {'higher' if higher_is_better else 'lower'}"
                      f" is better, min gain {min_gain})")
    if promoted:
        c.set_registered_model_alias(name, CHAMPION, mv.version)
    c.set_model_version_tag(name, mv.version, "promoted", str(promoted).lower())
    c.set_model_version_tag(name, mv.version, "promotion_reason", reason)
    c.set_tag(run_id, "promotion.promoted", str(promoted).lower())
    c.set_tag(run_id, "promotion.reason", reason)
    c.set_tag(run_id, "registered_version", mv.version)
    c.set_registered_model_tag(name, "promotion_rule",
                               f"champion moves only when held-out {metric} is "
                               f"{'higher' if higher_is_better else 'lower'} than the champion's")
    return Promotion(str(mv.version), promoted, metric, float(value),
                     current.version if current else None, cur_val, reason)


def load_champion(key: str):
    """(python model object, version) loaded from ``models:/<name>@champion``."""
    import mlflow

    mlflow_setup(key)
    mv = champion_version(key)
    if mv is None:
        raise RuntimeError(f"no @champion for {registered_name(key)}: train first (models.retrain)")
    pm = mlflow.pyfunc.load_model(f"models:/{registered_name(key)}@{CHAMPION}")
    return pm, str(mv.version)


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


def needs_training(key: str) -> bool:
    mode = get_settings().models.retrain
    if mode == "always":
        return True
    if mode == "never":
        return False
    return champion_version(key) is None
