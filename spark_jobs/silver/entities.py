"""Silver entities from the organisation databases: columns, rules, references, PII.

One :class:`EntitySpec` per entity. A row that breaks a rule or a reference goes to quarantine
with every reason it breaks; the rest are typed, pseudonymised and merged into silver by key.
"""

from __future__ import annotations

from redcloud.rules import vocab
from redcloud.rules.vocab import sql_in
from spark_jobs.silver.common import EntitySpec, Ref, Rule

ORG_LEVELS = sql_in(vocab.ORG_LEVELS)
GRADES = sql_in(vocab.GRADES)
RANKS = sql_in(vocab.RANKS)
NOT_FUTURE = "<= _logical_date"

ORG = Ref("org_id", "org__organizations", "org_id")
MEMBER = Ref("member_id", "org__members", "member_id", nullable=False)
CADRE = Ref("cadre_id", "cadre__cadres", "cadre_id", nullable=False)

ID_VALID = Rule("invalid_id_check_digit", "id_check_ok", "身份证号 format or check digit is wrong")

ENTITIES: list[EntitySpec] = [
    EntitySpec(
        "organizations", "org__organizations", "org_id",
        ["org_id", "org_code", "org_name", "parent_org_id", "org_level", "org_type", "region_code",
         "cast(established_date as date) as established_date", "updated_at"],
        rules=[Rule("invalid_value", f"org_level in {ORG_LEVELS}", "unknown org_level"),
               Rule("missing_value", "org_name is not null and org_type is not null", "org_name/org_type missing"),
               Rule("impossible_date", f"established_date {NOT_FUTURE}", "established in the future")],
        refs=[Ref("parent_org_id", "org__organizations", "org_id")],
        description="One row per party organisation (current version); tree via parent_org_id.",
    ),
    EntitySpec(
        "members", "org__members", "member_id",
        ["member_id", "member_name", "gender", "ethnicity", "cast(birth_date as date) as birth_date", "id_number",
         "phone", "education", "occupation", "cast(join_date as date) as join_date",
         "cast(full_member_date as date) as full_member_date", "party_status", "membership_status", "is_mobile",
         "org_id", "updated_at"],
        rules=[ID_VALID,
               Rule("impossible_date", f"birth_date {NOT_FUTURE}", "birth date in the future"),
               Rule("impossible_date", "join_date >= add_months(birth_date, 216)", "joined the party before age 18"),
               Rule("impossible_date", f"join_date {NOT_FUTURE}", "join date in the future"),
               Rule("impossible_date", "full_member_date is null or full_member_date >= join_date",
                    "转正 before 入党"),
               Rule("conflicting_values", "not id_check_ok or id_birth = birth_date", "birth date differs from the 身份证号"),
               Rule("invalid_value", f"gender in {sql_in(vocab.GENDERS)}", "gender must be 男 or 女")],
        refs=[Ref("org_id", "org__organizations", "org_id", nullable=False)],
        pii={"id_number": "id_number", "phone": "phone"},
        dedupe_on="id_number",
        description="One row per party member (current version); status history in member_status_history.",
    ),
    EntitySpec(
        "member_status_changes", "org__member_status_changes", "change_id",
        ["change_id", "member_id", "change_type", "cast(change_date as date) as change_date", "from_org_id",
         "to_org_id", "updated_at"],
        rules=[Rule("invalid_value", f"change_type in {sql_in(vocab.CHANGE_TYPES)}", "unknown change_type"),
               Rule("impossible_date", f"change_date {NOT_FUTURE}", "change dated in the future")],
        refs=[MEMBER],
        description="One row per membership status change (入党/转正/转入/转出/流动/去世), by effective date.",
    ),
    EntitySpec(
        "cadres", "cadre__cadres", "cadre_id",
        ["cadre_id", "cadre_name", "id_number", "gender", "cast(birth_date as date) as birth_date", "ethnicity",
         "unit_org_id", "position", "rank", "cast(rank_start_date as date) as rank_start_date", "phone",
         "cadre_status", "updated_at"],
        rules=[Rule("invalid_id_check_digit", "id_number is null or id_check_ok", "身份证号 format or check digit is wrong"),
               Rule("invalid_value", f"rank in {RANKS}", "unknown 职级")],
        refs=[Ref("unit_org_id", "org__organizations", "org_id", nullable=False)],
        pii={"id_number": "id_number", "phone": "phone"},
        description="One row per cadre in the cadre system (current post); 身份证号 may be missing.",
    ),
    EntitySpec(
        "cadre_posts", "cadre__cadre_posts", "post_id",
        ["post_id", "cadre_id", "unit_org_id", "position", "rank", "cast(start_date as date) as start_date",
         "cast(end_date as date) as end_date", "updated_at"],
        rules=[Rule("impossible_date", "end_date is null or end_date >= start_date", "post ends before it starts")],
        refs=[CADRE],
        description="One row per post a cadre held (start/end dates): the SCD2 source for cadre posts.",
    ),
    EntitySpec(
        "cadre_assessments", "cadre__cadre_assessments", "assessment_id",
        ["assessment_id", "cadre_id", "assess_year", "grade", "assessed_at", "updated_at"],
        rules=[Rule("invalid_value", f"grade in {GRADES}", "unknown grade")],
        refs=[CADRE],
        description="One row per cadre and assessment year: the annual grade.",
    ),
    EntitySpec(
        "cadre_discipline", "cadre__cadre_discipline", "discipline_id",
        ["discipline_id", "cadre_id", "cast(action_date as date) as action_date", "action_type", "reason", "updated_at"],
        refs=[CADRE],
        description="One row per disciplinary action against a cadre.",
    ),
    EntitySpec(
        "village_assignments", "cadre__village_assignments", "assignment_id",
        ["assignment_id", "cadre_id", "village_org_id", "role", "cast(start_date as date) as start_date",
         "cast(end_date as date) as end_date", "updated_at"],
        rules=[Rule("impossible_date", "end_date is null or end_date >= start_date", "assignment ends before it starts")],
        refs=[CADRE, Ref("village_org_id", "org__organizations", "org_id", nullable=False)],
        description="One row per village-stationed cadre assignment (驻村).",
    ),
    EntitySpec(
        "app_users", "app__app_users", "member_id",
        ["member_id", "account", "registered_at", "updated_at"],
        refs=[MEMBER],
        description="One row per app account (a member); registration starts the 学习问答 obligation.",
    ),
    EntitySpec(
        "app_activity_monthly", "app__app_activity_monthly", "activity_id",
        ["activity_id", "member_id", "cast(activity_month as date) as activity_month", "login_days", "learning_days",
         "learning_points", "articles_read", "updated_at"],
        rules=[Rule("invalid_value", "login_days between 0 and 31 and learning_days between 0 and login_days",
                    "day counts out of range")],
        refs=[MEMBER],
        description="One row per member and month: app use.",
    ),
    EntitySpec(
        "learning_answers", "app__learning_answers", "answer_id",
        ["answer_id", "member_id", "cast(answer_date as date) as answer_date", "answered_at", "questions", "correct",
         "score", "updated_at"],
        rules=[Rule("invalid_value", "correct between 0 and questions", "more correct answers than questions"),
               Rule("impossible_date", f"answer_date {NOT_FUTURE}", "answered in the future")],
        refs=[MEMBER],
        description="One row per 学习问答 answer sheet (a member, a day).",
    ),
    EntitySpec(
        "meetings", "app__meetings", "meeting_id",
        ["meeting_id", "org_id", "meeting_type", "cast(meeting_date as date) as meeting_date", "topic",
         "declared_attendance", "host_member_id", "updated_at"],
        rules=[Rule("invalid_value", "declared_attendance >= 0", "negative attendance"),
               Rule("impossible_date", f"meeting_date {NOT_FUTURE}", "meeting in the future")],
        refs=[Ref("org_id", "org__organizations", "org_id", nullable=False)],
        description="One row per branch meeting (三会一课 and other activity types).",
    ),
    EntitySpec(
        "meeting_attendance", "app__meeting_attendance", "attendance_id",
        ["attendance_id", "meeting_id", "member_id", "status", "updated_at"],
        rules=[Rule("invalid_value", f"status in {sql_in(vocab.ATTENDANCE_STATUSES)}", "unknown attendance status")],
        refs=[Ref("meeting_id", "app__meetings", "meeting_id", nullable=False), MEMBER],
        description="One row per member expected at a meeting, with 出席/请假/缺席.",
    ),
    EntitySpec(
        "dues_payments", "app__dues_payments", "dues_id",
        ["dues_id", "member_id", "cast(dues_month as date) as dues_month", "amount_due", "amount_paid",
         "cast(paid_date as date) as paid_date", "updated_at"],
        rules=[Rule("invalid_value", "amount_due >= 0 and amount_paid >= 0", "negative amount")],
        refs=[MEMBER],
        description="One row per member and month of 党费 due, with payment date (null: unpaid).",
    ),
    EntitySpec(
        "volunteer_records", "app__volunteer_records", "record_id",
        ["record_id", "member_id", "cast(service_date as date) as service_date", "hours", "category", "updated_at"],
        rules=[Rule("invalid_value", "hours > 0 and hours <= 24", "hours out of range")],
        refs=[MEMBER],
        description="One row per volunteer service record.",
    ),
    EntitySpec(
        "village_work_records", "app__village_work_records", "record_id",
        ["record_id", "assignment_id", "cadre_id", "village_org_id", "cast(work_date as date) as work_date", "content",
         "photo_count", "signed_in", "sign_in_at", "updated_at"],
        rules=[Rule("invalid_value", "photo_count >= 0", "negative photo count")],
        refs=[Ref("assignment_id", "cadre__village_assignments", "assignment_id", nullable=False)],
        description="One row per 驻村 daily work record (每日工作记实).",
    ),
    EntitySpec(
        "poverty_projects", "app__poverty_projects", "project_id",
        ["project_id", "project_name", "village_org_id", "cadre_id", "category", "cast(start_date as date) as start_date",
         "cast(deadline as date) as deadline", "cast(completed_date as date) as completed_date", "status",
         "budget_yuan", "updated_at"],
        rules=[Rule("impossible_date", "deadline >= start_date", "deadline before start")],
        refs=[Ref("village_org_id", "org__organizations", "org_id", nullable=False), CADRE],
        description="One row per 精准帮扶 project.",
    ),
    EntitySpec(
        "project_measures", "app__project_measures", "measure_id",
        ["measure_id", "project_id", "measure_type", "description", "funding_channel", "funder", "amount_yuan",
         "cast(start_date as date) as start_date", "updated_at"],
        rules=[Rule("invalid_value", f"funding_channel in {sql_in(vocab.FUNDING_CHANNELS)}", "unknown 资金渠道"),
               Rule("invalid_value", "amount_yuan >= 0", "negative amount")],
        refs=[Ref("project_id", "app__poverty_projects", "project_id", nullable=False)],
        description="One row per 帮扶措施 of a 帮扶 project, with its funding channel (政府帮扶/社会帮扶), funder and amount.",
    ),
    EntitySpec(
        "training_classes", "app__training_classes", "class_id",
        ["class_id", "class_name", "class_type", "cast(start_date as date) as start_date",
         "cast(end_date as date) as end_date", "hours", "updated_at"],
        rules=[Rule("impossible_date", "end_date >= start_date", "班次 ends before it starts"),
               Rule("invalid_value", "hours > 0", "学时 not positive")],
        description="One row per 干部调训 class (党校主体班, 专题培训班, 网络专题班, 理论学习班) with its 学时.",
    ),
    EntitySpec(
        "training_enrollments", "app__training_enrollments", "enrollment_id",
        ["enrollment_id", "class_id", "cadre_id", "attended", "hours_credited", "updated_at"],
        rules=[Rule("invalid_value", "hours_credited >= 0 and (attended or hours_credited = 0 or attended is null)",
                    "学时 credited without attendance")],
        refs=[Ref("class_id", "app__training_classes", "class_id", nullable=False), CADRE],
        description="One row per cadre planned for a class (调训计划): attended (NULL until it ends), 学时 credited.",
    ),
    EntitySpec(
        "member_questions", "app__member_questions", "question_id",
        ["question_id", "member_id", "org_id", "category", "asked_at", "answered_at", "answered_by", "updated_at"],
        rules=[Rule("invalid_value", f"category in {sql_in(vocab.QUESTION_CATEGORIES)}", "unknown 问题类别"),
               Rule("impossible_date", "answered_at is null or answered_at >= asked_at", "answered before asked")],
        refs=[MEMBER, Ref("org_id", "org__organizations", "org_id", nullable=False)],
        description="One row per question a member asked in the app (解决疑难问题) and when it was answered.",
    ),
    EntitySpec(
        "volunteer_teams", "app__volunteer_teams", "team_id",
        ["team_id", "org_id", "team_name", "cast(founded_date as date) as founded_date", "registered_members",
         "updated_at"],
        rules=[Rule("invalid_value", "registered_members >= 0", "negative 实名注册 count")],
        refs=[Ref("org_id", "org__organizations", "org_id", nullable=False)],
        description="One row per 党员志愿服务队 of the 志愿服务超市 with its 实名注册 volunteers.",
    ),
    EntitySpec(
        "volunteer_needs", "app__volunteer_needs", "need_id",
        ["need_id", "org_id", "category", "title", "published_at", "beneficiaries", "team_id", "matched_at",
         "completed_at", "service_hours", "funds_yuan", "updated_at"],
        rules=[Rule("invalid_value", "beneficiaries >= 0 and service_hours >= 0 and funds_yuan >= 0",
                    "negative people, hours or money"),
               Rule("impossible_date", "matched_at is null or matched_at >= published_at", "matched before published"),
               Rule("conflicting_values", "(team_id is null) = (matched_at is null)", "对接队伍 and 对接时间 disagree")],
        refs=[Ref("org_id", "org__organizations", "org_id", nullable=False),
              Ref("team_id", "app__volunteer_teams", "team_id", nullable=True)],
        description="One row per need published in the 志愿服务超市: the team matched, when, and what the service delivered.",
    ),
    EntitySpec(
        "party_disclosures", "app__party_disclosures", "disclosure_id",
        ["disclosure_id", "org_id", "item_type", "title", "cast(event_date as date) as event_date", "published_at",
         "items_required", "items_published", "updated_at"],
        rules=[Rule("invalid_value", f"item_type in {sql_in(vocab.DISCLOSURE_TYPES)}", "unknown 公开事项"),
               Rule("invalid_value", "items_required > 0 and items_published between 0 and items_required",
                    "公开项数 out of range"),
               Rule("impossible_date", "published_at is null or to_date(published_at) >= event_date",
                    "published before the event it discloses")],
        refs=[Ref("org_id", "org__organizations", "org_id", nullable=False)],
        description="One row per 党务公开 item of a 党支部: the event, when it was published and how many of "
                    "the required items.",
    ),
]

BY_NAME = {e.name: e for e in ENTITIES}
