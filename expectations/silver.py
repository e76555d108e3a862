"""Silver suites: one per entity in ``spark_jobs.silver.entities.ENTITIES``.

Every entity gets the common checks (key present and unique among current rows, load metadata
present); then its own: required columns, known value sets, ranges, pseudonym and mask formats.
Silver rules already quarantine bad source rows; these suites check what actually landed in silver
(so a transform bug, a rule that was dropped or a merge that went wrong is caught before gold).
"""

from __future__ import annotations

from expectations import (
    ATTENDANCE_STATUSES,
    CHANGE_TYPES,
    DISCIPLINE_ACTIONS,
    EDUCATION,
    ETHNICITIES,
    GENDERS,
    GRADES,
    MEETING_TYPES,
    MEMBERSHIP_STATUSES,
    ORG_LEVELS,
    ORG_TYPES,
    PARTY_STATUSES,
    POST_RANKS,
    RANKS,
    SOURCE_PROJECT_STATUSES,
    VILLAGE_ROLES,
    Column,
    TableSuite,
    a_at_least_b,
    between,
    compound_unique,
    in_set,
    key_unique,
    masked_id,
    masked_phone,
    matches,
    min_rows,
    not_null,
    pseudonym,
    unique,
)
from redcloud.rules import vocab
from spark_jobs.silver.entities import BY_NAME


def _common(key: str) -> list:
    return key_unique(key) + not_null("is_deleted", "updated_at", "_batch_id", "_logical_date")


_SPECIFIC: dict[str, list] = {
    "organizations": [
        *min_rows(1),
        *not_null("org_code", "org_name", "org_level", "org_type", "region_code", "established_date"),
        *in_set("org_level", ORG_LEVELS),
        *in_set("org_type", ORG_TYPES),
        *unique("org_code"),
        *matches("region_code", r"^[0-9]{6}$", "region_code_format"),
        # only the root (市委) has no parent
        *not_null("parent_org_id", row_condition=Column("org_level") != vocab.CITY, check="parent_present"),
    ],
    "members": [
        *min_rows(1),
        *not_null("member_name", "gender", "ethnicity", "birth_date", "join_date", "party_status",
                  "membership_status", "is_mobile", "org_id", "id_number_pseudonym", "id_number_masked"),
        *in_set("gender", GENDERS),
        *in_set("ethnicity", ETHNICITIES),
        *in_set("education", EDUCATION),
        *in_set("party_status", PARTY_STATUSES),
        *in_set("membership_status", MEMBERSHIP_STATUSES),
        # a full member has a 转正 date (a probationary one does not yet)
        *not_null("full_member_date", row_condition=Column("party_status") == vocab.FULL_MEMBER, check="full_member_date"),
        *pseudonym("id_number_pseudonym", "phone_pseudonym"),
        *masked_id("id_number_masked"),
        *masked_phone("phone_masked"),
        # one person, one current member row (duplicates by 身份证号 are quarantined upstream)
        *unique("id_number_pseudonym", check="one_member_per_person"),
    ],
    "member_status_changes": [
        *not_null("member_id", "change_type", "change_date"),
        *in_set("change_type", CHANGE_TYPES),
    ],
    "cadres": [
        *not_null("cadre_name", "gender", "unit_org_id", "rank", "cadre_status"),
        *in_set("gender", GENDERS),
        *in_set("ethnicity", ETHNICITIES),
        *in_set("rank", RANKS),
        # 身份证号 may be missing in the cadre system: formats are checked where present
        *pseudonym("id_number_pseudonym", "phone_pseudonym"),
        *masked_id("id_number_masked"),
        *masked_phone("phone_masked"),
    ],
    "cadre_posts": [
        *not_null("cadre_id", "unit_org_id", "rank", "start_date"),
        *in_set("rank", POST_RANKS),
        *a_at_least_b("end_date", "start_date"),
    ],
    "cadre_assessments": [
        *not_null("cadre_id", "assess_year", "grade"),
        *in_set("grade", GRADES),
        *between("assess_year", 1990, 2100),
        *compound_unique(["cadre_id", "assess_year"], check="one_grade_per_year"),
    ],
    "cadre_discipline": [
        *not_null("cadre_id", "action_date", "action_type"),
        *in_set("action_type", DISCIPLINE_ACTIONS),
    ],
    "village_assignments": [
        *not_null("cadre_id", "village_org_id", "role", "start_date"),
        *in_set("role", VILLAGE_ROLES),
        *a_at_least_b("end_date", "start_date"),
    ],
    "app_users": [
        *not_null("account", "registered_at"),
        *unique("account"),
    ],
    "app_activity_monthly": [
        *not_null("member_id", "activity_month", "login_days", "learning_days"),
        *between("login_days", 0, 31),
        *between("learning_days", 0, 31),
        *between("learning_points", 0, None),
        *between("articles_read", 0, None),
        *a_at_least_b("login_days", "learning_days"),
        *compound_unique(["member_id", "activity_month"], check="one_row_per_member_month"),
    ],
    "learning_answers": [
        *not_null("member_id", "answer_date", "questions", "correct", "score"),
        *between("questions", 1, 100),
        *between("correct", 0, None),
        *between("score", 0, 100),
        *a_at_least_b("questions", "correct"),
    ],
    "meetings": [
        *not_null("org_id", "meeting_type", "meeting_date", "declared_attendance"),
        *in_set("meeting_type", MEETING_TYPES),
        *between("declared_attendance", 0, None),
    ],
    "meeting_attendance": [
        *not_null("meeting_id", "member_id", "status"),
        *in_set("status", ATTENDANCE_STATUSES),
        *compound_unique(["meeting_id", "member_id"], check="one_row_per_member_meeting"),
    ],
    "dues_payments": [
        *not_null("member_id", "dues_month", "amount_due", "amount_paid"),
        *between("amount_due", 0, None),
        *between("amount_paid", 0, None),
        *compound_unique(["member_id", "dues_month"], check="one_row_per_member_month"),
    ],
    "volunteer_records": [
        *not_null("member_id", "service_date", "hours"),
        *between("hours", 0, 24, strict_min=True),
    ],
    "village_work_records": [
        *not_null("assignment_id", "cadre_id", "village_org_id", "work_date", "signed_in"),
        *between("photo_count", 0, None),
        *not_null("sign_in_at", row_condition=Column("signed_in") == True, check="sign_in_time"),  # noqa: E712
    ],
    "project_measures": [
        *not_null("project_id", "measure_type", "funding_channel", "funder", "amount_yuan", "start_date"),
        *in_set("funding_channel", list(vocab.FUNDING_CHANNELS)),
        *between("amount_yuan", 0, None),
    ],
    "training_classes": [
        *not_null("class_name", "class_type", "start_date", "end_date", "hours"),
        *between("hours", 0, None, strict_min=True),
        *a_at_least_b("end_date", "start_date"),
    ],
    "training_enrollments": [
        *not_null("class_id", "cadre_id", "hours_credited"),
        *between("hours_credited", 0, None),
    ],
    "member_questions": [
        *not_null("member_id", "org_id", "category", "asked_at"),
        *in_set("category", list(vocab.QUESTION_CATEGORIES)),
        *a_at_least_b("answered_at", "asked_at"),
    ],
    "volunteer_teams": [
        *not_null("org_id", "team_name", "registered_members"),
        *between("registered_members", 0, None),
    ],
    "volunteer_needs": [
        *not_null("org_id", "category", "published_at", "beneficiaries", "service_hours", "funds_yuan"),
        *between("service_hours", 0, None),
        *between("funds_yuan", 0, None),
        *a_at_least_b("matched_at", "published_at"),
    ],
    "party_disclosures": [
        *not_null("org_id", "item_type", "event_date", "items_required", "items_published"),
        *in_set("item_type", list(vocab.DISCLOSURE_TYPES)),
        *between("items_required", 1, None),
        *a_at_least_b("items_required", "items_published"),
    ],
    "poverty_projects": [
        *not_null("project_name", "village_org_id", "cadre_id", "start_date", "deadline", "status"),
        *in_set("status", SOURCE_PROJECT_STATUSES),
        *between("budget_yuan", 0, None),
        *a_at_least_b("deadline", "start_date"),
        *not_null("completed_date", row_condition=Column("status") == vocab.COMPLETED, check="completion_date"),
    ],
}

missing = set(BY_NAME) - set(_SPECIFIC)
assert not missing, f"silver entities without a quality suite: {sorted(missing)}"

SUITES: dict[str, TableSuite] = {
    name: TableSuite("silver", name, [spec.key], _common(spec.key) + _SPECIFIC[name], description=spec.description)
    for name, spec in BY_NAME.items()
}
