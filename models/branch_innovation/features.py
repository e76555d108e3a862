"""Features of the branch innovation model.

Branch x quarter (gold ``fct_branch_quarter``): activity diversity, new activity types, participation,
volunteering, app use. Meeting level (gold ``fct_meeting_signals``): the signals used to find
fabricated meeting records (non-working day, identical attendance list, declared count above the
branch's size or disagreeing with the attendance list).
"""

from __future__ import annotations

import pandas as pd

from models.common import Env
from redcloud.rules.vocab import ARCHETYPES

# indicator -> 中文名 (all higher is better)
INNOVATION: dict[str, str] = {
    "activity_types": "活动类型数",
    "new_activity_types": "新增活动类型数",
    "special_activity_share": "特色活动占比",
    "mean_attendance_rate": "平均出席率",
    "sanhui_completion_rate": "三会一课完成率",
    "volunteer_hours_per_member": "人均志愿服务时长",
    "app_login_days_per_member": "人均APP登录天数",
}
INNOVATION_NAMES = list(INNOVATION)
# cluster-naming profile: dimension -> (indicators, archetype name)
PROFILES = {
    "diversity": (["activity_types", "new_activity_types", "special_activity_share"], ARCHETYPES["diversity"]),
    "participation": (["mean_attendance_rate", "sanhui_completion_rate"], ARCHETYPES["participation"]),
    "volunteering": (["volunteer_hours_per_member"], ARCHETYPES["volunteering"]),
    "digital": (["app_login_days_per_member"], ARCHETYPES["digital"]),
}

MEETING_FEATURES = ["is_non_working_day", "identical_attendance_nontrivial", "excess_ratio", "declared_gap_ratio",
                    "attendance_rate", "excused_share", "absent_share"]


def branch_quarters(env: Env) -> pd.DataFrame:
    bq = env.read("gold", "fct_branch_quarter")
    bq = bq.astype({"org_id": "int64"})
    bq["quarter"] = pd.to_datetime(bq.quarter_start).dt.date
    total = bq.meetings_total.where(bq.meetings_total > 0)
    bq["special_activity_share"] = ((bq.theme_days + bq.other_meetings) / total).fillna(0.0)
    for c in INNOVATION_NAMES:
        bq[c] = pd.to_numeric(bq[c], errors="coerce").astype("float64")
    bq["mean_attendance_rate"] = bq.mean_attendance_rate.fillna(0.0)
    bq["sanhui_completion_rate"] = bq.sanhui_completion_rate.fillna(0.0)
    bq = bq.fillna({c: 0.0 for c in INNOVATION_NAMES})
    cols = ["org_id", "org_name", "org_type", "quarter", "quarter_complete", "members_active", "meetings_total",
            *INNOVATION_NAMES]
    return bq[cols].sort_values(["org_id", "quarter"]).reset_index(drop=True)


def meetings(env: Env) -> pd.DataFrame:
    ms = env.read("gold", "fct_meeting_signals")
    ms = ms.astype({"meeting_id": "int64", "org_id": "int64"})
    ms["quarter"] = pd.to_datetime(ms.quarter_start).dt.date
    members = ms.branch_member_count.clip(lower=1).astype(float)
    rows = ms.attendance_rows.clip(lower=1).astype(float)
    ms["excess_ratio"] = ((ms.declared_attendance - ms.branch_member_count) / members).clip(lower=0.0)
    ms["declared_gap_ratio"] = ((ms.declared_attendance - ms.attended_count).abs() / members)
    ms["excused_share"] = ms.excused_count / rows
    ms["absent_share"] = ms.absent_count / rows
    ms["attendance_rate"] = ms.attendance_rate.fillna(0.0)
    for c in ("is_non_working_day", "identical_attendance_nontrivial", "is_makeup_workday"):
        ms[c] = ms[c].fillna(False).astype(bool)
    for c in MEETING_FEATURES:
        ms[c] = ms[c].astype("float64")
    cols = ["meeting_id", "org_id", "quarter", "meeting_type", "meeting_date", "declared_attendance",
            "branch_member_count", "attended_count", "identical_to_meeting_id", *MEETING_FEATURES]
    return ms[cols].sort_values("meeting_id").reset_index(drop=True)
