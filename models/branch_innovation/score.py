"""Batch scoring of the branch innovation model from ``models:/<name>@champion``."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from models import common
from models.branch_innovation import features

KEY = "branch_innovation"
TABLE = "score_branch_innovation"
SCHEMA = ("org_id long, quarter date, org_name string, innovation_score double, cluster int, archetype string, "
          "is_anomaly boolean, anomaly_reasons array<string>, anomalous_meetings int, "
          "anomalous_meeting_ids array<long>, model_name string, model_version string, scored_at timestamp")


def score(env: common.Env, bq: pd.DataFrame | None = None, meetings: pd.DataFrame | None = None,
          scored_at: dt.datetime | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(branch-quarter scores, meeting-level anomalies)."""
    bq = features.branch_quarters(env) if bq is None else bq
    meetings = features.meetings(env) if meetings is None else meetings
    pm, version = env.load_champion(KEY)
    out = pm.predict(bq[features.INNOVATION_NAMES].astype("float64"))
    res = pd.concat([bq[["org_id", "quarter", "org_name"]].reset_index(drop=True), out.reset_index(drop=True)], axis=1)
    anoms = pm.unwrap_python_model().anomalies(meetings)
    flagged = anoms[anoms.is_anomaly]
    agg = (flagged.groupby(["org_id", "quarter"])
           .agg(anomalous_meetings=("meeting_id", "size"),
                anomalous_meeting_ids=("meeting_id", lambda s: sorted(int(x) for x in s)),
                anomaly_reasons=("anomaly_reasons", lambda s: sorted({r for rs in s for r in rs})))
           .reset_index())
    res = res.merge(agg, on=["org_id", "quarter"], how="left")
    res["anomalous_meetings"] = res.anomalous_meetings.fillna(0).astype("int32")
    res["is_anomaly"] = res.anomalous_meetings > 0
    res["anomaly_reasons"] = [r if isinstance(r, list) else [] for r in res.anomaly_reasons]
    res["anomalous_meeting_ids"] = [r if isinstance(r, list) else [] for r in res.anomalous_meeting_ids]
    res["cluster"] = res.cluster.astype("int32")
    res["model_name"] = env.registered_name(KEY)
    res["model_version"] = version
    res["scored_at"] = pd.Timestamp(scored_at or dt.datetime.now(dt.timezone.utc))
    return res, anoms
