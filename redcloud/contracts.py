"""Source contracts: what the platform expects from each source system, in one place.

The connectors (:mod:`redcloud.sources`), the bronze and silver stages, and the demo generator
(:mod:`redcloud.demo.synth`, which writes sources that honour these contracts) all import them from
here; production code never imports the generator.

- :data:`SYSTEMS`: the organisation databases and their tables (read by ``bronze_orgdb``);
- :data:`PRIMARY_KEYS`: each table's primary key (incremental extract, delete detection, silver keys);
- :data:`IRONCAGE_HEADERS`: the 数据铁笼 export kinds, their canonical columns and the Chinese
  headers the system writes; :data:`IRONCAGE_HEADER_ALIASES`: other headers some departments' exports
  use for the same column. Adding a department's file format is adding its headers here.
"""

from __future__ import annotations

SYSTEMS: dict[str, list[str]] = {
    "org": ["organizations", "members", "member_status_changes"],
    "cadre": ["cadres", "cadre_posts", "cadre_assessments", "cadre_discipline", "village_assignments"],
    "app": ["app_users", "app_activity_monthly", "learning_answers", "meetings", "meeting_attendance",
            "dues_payments", "volunteer_records", "village_work_records", "poverty_projects", "project_measures",
            "party_disclosures", "training_classes", "training_enrollments", "member_questions",
            "volunteer_teams", "volunteer_needs"],
}
PRIMARY_KEYS: dict[str, str] = {
    "organizations": "org_id", "members": "member_id", "member_status_changes": "change_id",
    "cadres": "cadre_id", "cadre_posts": "post_id", "cadre_assessments": "assessment_id",
    "cadre_discipline": "discipline_id", "village_assignments": "assignment_id", "app_users": "member_id",
    "app_activity_monthly": "activity_id", "learning_answers": "answer_id", "meetings": "meeting_id",
    "meeting_attendance": "attendance_id", "dues_payments": "dues_id", "volunteer_records": "record_id",
    "village_work_records": "record_id", "poverty_projects": "project_id", "party_disclosures": "disclosure_id",
    "project_measures": "measure_id", "training_classes": "class_id", "training_enrollments": "enrollment_id",
    "member_questions": "question_id", "volunteer_teams": "team_id", "volunteer_needs": "need_id",
}

# 数据铁笼 export kind -> canonical column -> the Chinese header the system writes (export order)
IRONCAGE_HEADERS: dict[str, dict[str, str]] = {
    "power_operations": {"op_id": "事项编号", "dept_code": "部门编码", "dept_name": "部门名称", "item_name": "事项名称",
                         "handler_name": "经办人", "handler_id_number": "经办人身份证号", "received_at": "受理时间",
                         "deadline": "办理时限", "completed_at": "办结时间", "status": "办理状态"},
    "duty_records": {"record_id": "记实编号", "dept_code": "部门编码", "cadre_name": "干部姓名",
                     "cadre_id_number": "身份证号", "duty_month": "记实月份", "target_count": "目标任务数",
                     "completed_count": "完成任务数", "review_score": "考评得分"},
    "complaints": {"complaint_id": "投诉编号", "op_id": "事项编号", "dept_code": "部门编码", "handler_name": "被投诉人",
                   "received_at": "投诉时间", "category": "投诉类别", "status": "处理状态"},
}
# 数据铁笼 export kind -> another header some departments write -> canonical column
IRONCAGE_HEADER_ALIASES: dict[str, dict[str, str]] = {
    "power_operations": {"办件编号": "op_id", "承办人": "handler_name", "承办人身份证号": "handler_id_number",
                         "受理日期": "received_at", "办结日期": "completed_at"},
    "duty_records": {"姓名": "cadre_name", "公民身份号码": "cadre_id_number", "月份": "duty_month"},
    "complaints": {"投诉对象": "handler_name", "投诉日期": "received_at"},
}
IRONCAGE_KINDS: tuple[str, ...] = tuple(IRONCAGE_HEADERS)


def dept_org_sql(dept_code: str) -> str:
    """SQL (Spark and DuckDB alike) giving the organisation id of a 数据铁笼 部门编码: the system codes a
    department as ``D`` followed by its organisation id (``D000123`` is org 123); NULL otherwise."""
    return f"try_cast(substring({dept_code}, 2) as bigint)"
