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
