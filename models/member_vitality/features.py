"""Indicators of the member vitality index: one row per member x month from gold ``fct_member_month``."""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.common import Env

DIMENSIONS = ["学习", "组织生活", "志愿服务", "党费", "APP活跃"]
# indicator -> (中文名, dimension, higher_is_better)
INDICATORS: dict[str, tuple[str, str, bool]] = {
    "learning_days": ("学习天数", "学习", True),
    "learning_points": ("学习积分", "学习", True),
    "articles_read": ("阅读文章数", "学习", True),
    "attendance_rate": ("组织生活出席率", "组织生活", True),
    "meetings_absent": ("无故缺席次数", "组织生活", False),
    "volunteer_hours": ("志愿服务时长", "志愿服务", True),
    "volunteer_records": ("志愿服务次数", "志愿服务", True),
    "dues_on_time": ("按时交纳党费", "党费", True),
    "dues_days_late": ("党费迟交天数", "党费", False),
    "login_days": ("APP登录天数", "APP活跃", True),
}
INDICATOR_NAMES = list(INDICATORS)


SOURCE = ("gold", "fct_member_month")


def build(env: Env) -> pd.DataFrame:
    """member_id, month (date), org_id and the indicators (missing ones filled neutrally)."""
    return from_member_month(env.read(*SOURCE))


def from_member_month(mm: pd.DataFrame) -> pd.DataFrame:
    """:func:`build` from the rows of ``gold/fct_member_month`` (any version of it)."""
    mm = mm.astype({"member_id": "int64"})
    mm["month"] = pd.to_datetime(mm.month).dt.date
    mm["meetings_absent"] = (mm.meetings_expected - mm.meetings_attended - mm.meetings_excused).clip(lower=0)
    # no meeting expected: attendance is not observed -> neutral (full) rather than penalised
    mm["attendance_rate"] = mm.attendance_rate.where(mm.meetings_expected > 0, 1.0).fillna(1.0)
    due = mm.amount_due.fillna(0) > 0
    on_time = mm.dues_on_time.map({True: 1.0, False: 0.0, "true": 1.0, "false": 0.0})
    mm["dues_on_time"] = np.where(due, on_time.fillna(0.0), 1.0)
    mm["dues_days_late"] = np.where(due, mm.dues_days_late.fillna(0.0), 0.0)
    for c in INDICATOR_NAMES:
        mm[c] = pd.to_numeric(mm[c], errors="coerce").fillna(0.0).astype("float64")
    return mm[["member_id", "month", "org_id", *INDICATOR_NAMES]].sort_values(["member_id", "month"]).reset_index(drop=True)
