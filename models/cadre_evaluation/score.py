"""Batch scoring of the cadre evaluation model from ``models:/<name>@champion``."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from models import common
from models.cadre_evaluation import features

KEY = "cadre_evaluation"
TABLE = "score_cadre_evaluation"
SCHEMA = ("cadre_id long, year int, predicted_grade int, grade_label string, score double, top_factors string, "
          "dim_de double, dim_neng double, dim_qin double, dim_ji double, dim_lian double, "
          "observed_grade string, model_name string, model_version string, scored_at timestamp")


FAIRNESS_TABLE = "cadre_evaluation_fairness"
FAIRNESS_SCHEMA = ("attribute string, attribute_label string, group string, n long, accuracy double, "
                   "mean_abs_error double, over_rate double, under_rate double, "
                   "observed_share_0 double, observed_share_1 double, observed_share_2 double, observed_share_3 double, "
                   "predicted_share_0 double, predicted_share_1 double, predicted_share_2 double, "
                   "predicted_share_3 double, accuracy_gap double, flagged boolean, max_gap double, "
                   "min_group_size long, test_year int, model_name string, model_version string, scored_at timestamp")


def fairness(env: common.Env, scored_at: dt.datetime | None = None) -> pd.DataFrame:
    """The champion's fairness table on its held-out year (computed when it was trained, logged to its
    run), so the analysts' gold table always describes the model that is served."""
    import mlflow

    from models.cadre_evaluation.evaluate import FAIRNESS_ARTIFACT

    mv = env.champion(KEY)
    env.setup(KEY)
    run = env.client().get_run(mv.run_id)
    fair = mlflow.load_table(FAIRNESS_ARTIFACT, run_ids=[mv.run_id])
    fair["test_year"] = int(run.data.params["test_year"])
    fair["model_name"] = env.registered_name(KEY)
    fair["model_version"] = str(mv.version)
    fair["scored_at"] = pd.Timestamp(scored_at or dt.datetime.now(dt.timezone.utc))
    return fair.astype({"n": "int64", "min_group_size": "int64", "flagged": bool, "test_year": "int32"})


def score(env: common.Env, df: pd.DataFrame | None = None, scored_at: dt.datetime | None = None) -> pd.DataFrame:
    df = features.build(env) if df is None else df
    pm, version = env.load_champion(KEY)
    out = pm.predict(df[features.FEATURE_NAMES].astype("float64"))
    res = pd.concat([df[["cadre_id", "year"]].reset_index(drop=True), out.reset_index(drop=True)], axis=1)
    res["observed_grade"] = df.assessment_grade.to_numpy()
    res["model_name"] = env.registered_name(KEY)
    res["model_version"] = version
    res["scored_at"] = pd.Timestamp(scored_at or dt.datetime.now(dt.timezone.utc))
    res["year"] = res.year.astype("int32")
    res["predicted_grade"] = res.predicted_grade.astype("int32")
    return res
