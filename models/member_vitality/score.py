"""Batch scoring of the member vitality index from ``models:/<name>@champion``."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from models import common
from models.member_vitality import features

KEY = "member_vitality"
TABLE = "score_member_vitality"
SCHEMA = ("member_id long, month date, org_id long, vitality_index double, dim_learning double, dim_org_life double, "
          "dim_volunteer double, dim_dues double, dim_app double, vitality_level string, "
          "model_name string, model_version string, scored_at timestamp")
LEVELS = [(80, "活跃"), (60, "较活跃"), (40, "一般"), (0, "待激活")]


def level(v: float) -> str:
    return next(name for lo, name in LEVELS if v >= lo)


def score(env: common.Env, df: pd.DataFrame | None = None, scored_at: dt.datetime | None = None) -> pd.DataFrame:
    df = features.build(env) if df is None else df
    pm, version = env.load_champion(KEY)
    out = pm.predict(df[features.INDICATOR_NAMES].astype("float64"))
    res = pd.concat([df[["member_id", "month", "org_id"]].reset_index(drop=True), out.reset_index(drop=True)], axis=1)
    res["vitality_level"] = [level(v) for v in res.vitality_index]
    res["model_name"] = env.registered_name(KEY)
    res["model_version"] = version
    res["scored_at"] = pd.Timestamp(scored_at or dt.datetime.now(dt.timezone.utc))
    return res
