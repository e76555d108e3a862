"""Features of the cadre evaluation model: one row per cadre x year (gold ``fct_cadre_year``, 数据铁笼 included).

No protected attribute (gender, 民族, age) is a feature; they are read only for the fairness report.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.common import Env

GRADES = ["不称职", "基本称职", "称职", "优秀"]          # ordinal codes 0..3
GRADE_CODE = {g: i for i, g in enumerate(GRADES)}

# feature -> (中文名, dimension 德/能/勤/绩/廉)
FEATURES: dict[str, tuple[str, str]] = {
    "learning_answer_rate": ("学习问答完成率", "德"),
    "meeting_attendance_rate": ("组织生活出席率", "德"),
    "learning_longest_miss_streak": ("学习最长连续缺答天数", "勤"),
    "village_record_rate": ("驻村工作记实率", "勤"),
    "ic_items": ("权力事项办理量", "能"),
    "ic_timely_rate": ("权力事项按时办结率", "能"),
    "ic_overdue": ("权力事项超期数", "能"),
    "duty_target_completion_rate": ("岗位目标完成率", "绩"),
    "duty_review_score": ("工作记实评分", "绩"),
    "project_ontime_rate": ("帮扶项目按期完成率", "绩"),
    "discipline_count": ("纪律处分次数", "廉"),
    "ic_complaints": ("群众投诉数", "廉"),
}
FEATURE_NAMES = list(FEATURES)
# gold/fct_cadre_year column -> feature name
GOLD_COLUMNS = {"ironcage_items_handled": "ic_items", "ironcage_timely_rate": "ic_timely_rate",
                "ironcage_overdue_items": "ic_overdue", "ironcage_complaints": "ic_complaints"}
PROTECTED = ["gender", "ethnicity", "age_band"]


def build(env: Env) -> pd.DataFrame:
    """cadre_id, year, the features, ``grade_code`` (observed grade, NaN when none) and protected attributes."""
    cy = env.read("gold", "fct_cadre_year")
    cy = cy.astype({"cadre_id": "int64", "year": "int64"})
    cy["village_record_rate"] = cy.village_record_days / cy.village_workdays.where(cy.village_workdays > 0)
    cy["project_ontime_rate"] = cy.projects_completed_on_time / cy.projects_due.where(cy.projects_due > 0)
    # 数据铁笼 inputs come linked and counted from gold (one home for the overdue rule and the fusion)
    cy = cy.rename(columns=GOLD_COLUMNS)
    clash = [c for c in FEATURE_NAMES if list(cy.columns).count(c) > 1]
    if clash:
        raise ValueError(f"gold/fct_cadre_year: feature column(s) {clash} appear twice after renaming")
    for c in FEATURE_NAMES:
        if c not in cy:
            cy[c] = np.nan
    # items/complaints/overdue: no record linked in a year means none observed
    for c in ("ic_items", "ic_overdue", "ic_complaints", "discipline_count"):
        cy[c] = cy[c].fillna(0.0)
    # years before the observation period (grades exist from the cadre system, behaviour does not): not scored
    observed = cy[["learning_answer_rate", "meeting_attendance_rate", "duty_target_completion_rate"]].notna().any(axis=1)
    cy = cy[observed].copy()
    cy["grade_code"] = cy.assessment_grade.map(GRADE_CODE)
    cadres = env.read("silver", "cadres", ["cadre_id", "gender", "ethnicity", "birth_date"])
    cadres = cadres.astype({"cadre_id": "int64"})
    cy = cy.merge(cadres, on="cadre_id", how="left")
    age = cy.year - pd.to_datetime(cy.birth_date).dt.year
    cy["age_band"] = pd.cut(age, [0, 35, 45, 55, 200], right=False, labels=["35岁以下", "35-44岁", "45-54岁", "55岁及以上"]).astype(str)
    cols = ["cadre_id", "year", "rank", "unit_org_id", *FEATURE_NAMES, "grade_code", "assessment_grade", *PROTECTED]
    return cy[cols].sort_values(["cadre_id", "year"]).reset_index(drop=True)


def previous_grades(env: Env) -> pd.DataFrame:
    """cadre_id, year, prev_grade_code: the observed grade of the year before (the baseline's input)."""
    a = env.read("silver", "cadre_assessments", ["cadre_id", "assess_year", "grade", "is_deleted"])
    a = a[~a.is_deleted.fillna(False).astype(bool)]
    a = a.assign(year=a.assess_year.astype("int64") + 1, prev_grade_code=a.grade.map(GRADE_CODE))
    return a[["cadre_id", "year", "prev_grade_code"]].astype({"cadre_id": "int64"}).drop_duplicates(["cadre_id", "year"])
