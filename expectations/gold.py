"""Gold suites: the dimensions and facts built by ``spark_jobs.gold`` (see ``redcloud.stages.gold``)."""

from __future__ import annotations

from expectations import (AGE_BANDS, ETHNICITIES, EDUCATION, GENDERS, MEMBERSHIP_STATUSES, ORG_LEVELS, ORG_TYPES,
                          PARTY_STATUSES, PARTY_YEARS_BANDS, Column, TableSuite, a_at_least_b, between,
                          compound_unique, in_set, key_unique, masked_id, masked_phone, min_rows, not_null,
                          pseudonym)

BELOW_COUNTY = Column("org_level").is_in(["乡镇街道", "党委/党总支", "党支部"])

SUITES: dict[str, TableSuite] = {
    "dim_organization": TableSuite("gold", "dim_organization", ["org_id"], [
        *min_rows(1),
        *key_unique("org_id", alive_only=False),
        *not_null("org_code", "org_name", "org_level", "org_type", "path", "depth"),
        *in_set("org_level", ORG_LEVELS),
        *in_set("org_type", ORG_TYPES),
        *between("depth", 0, 6),
        # every organisation below the county level rolls up to a county and a town
        *not_null("county_org_id", row_condition=Column("org_level") != "市委", check="rolls_up_to_county"),
        *not_null("town_org_id", row_condition=BELOW_COUNTY, check="rolls_up_to_town"),
    ], description="One row per organisation with its place in the tree."),
    "dim_member": TableSuite("gold", "dim_member", ["member_id"], [
        *min_rows(1),
        *key_unique("member_id", alive_only=False),
        *not_null("org_id", "member_name", "gender", "party_status", "membership_status", "id_number_pseudonym",
                  "id_number_masked", "age", "age_band", "years_in_party", "party_years_band", "branch_type",
                  "county_org_id", "town_org_id", "as_of_date"),
        *in_set("gender", GENDERS),
        *in_set("ethnicity", ETHNICITIES),
        *in_set("education", EDUCATION),
        *in_set("party_status", PARTY_STATUSES),
        *in_set("membership_status", MEMBERSHIP_STATUSES),
        *in_set("age_band", AGE_BANDS),
        *in_set("party_years_band", PARTY_YEARS_BANDS),
        *in_set("branch_type", ORG_TYPES),
        *between("age", 18, 120),
        *between("years_in_party", 0, 100),
        *a_at_least_b("age", "years_in_party"),
        *pseudonym("id_number_pseudonym"),
        *masked_id("id_number_masked"),
        *masked_phone("phone_masked"),
    ], description="One row per current member with statistics categories."),
    "fct_member_month": TableSuite("gold", "fct_member_month", ["member_id", "month"], [
        *min_rows(1),
        *not_null("member_id", "month", "org_id", "login_days", "learning_days", "volunteer_records",
                  "volunteer_hours", "meetings_expected", "meetings_attended", "meetings_excused"),
        *compound_unique(["member_id", "month"], alive_only=False, check="key_unique"),
        *between("login_days", 0, 31),
        *between("learning_days", 0, 31),
        *between("learning_points", 0, None),
        *between("articles_read", 0, None),
        *between("attendance_rate", 0, 1),
        *between("volunteer_records", 0, None),
        *between("volunteer_hours", 0, 31 * 24),      # a month's sum of per-record hours (each 0..24)
        *between("amount_due", 0, None),
        *between("amount_paid", 0, None),
        *between("dues_days_late", 0, None),
        *between("meetings_expected", 0, None),
        *a_at_least_b("meetings_expected", "meetings_attended"),
    ], description="One row per member and month: app use, learning, volunteering, dues, meetings."),
}
