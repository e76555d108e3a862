"""Gold: dimensions and facts for the marts and the models (pure transforms over silver).

Tables (documented in docs/lake_tables.md):

- ``dim_organization``: one row per organisation with its place in the tree (county, town, depth, path).
- ``dim_member``: one row per member record (on the roll or not: ``is_on_roll``), categories for
  statistics (age band, 党龄 band, ...).
- ``fct_member_month``: one row per member and month active: app use, learning, volunteering,
  dues, meeting attendance.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from redcloud.rules import Rules
from redcloud.rules.vocab import AGE_BANDS, COUNTY, EXCUSED, HAN, ON_ROLL, PARTY_YEARS_BANDS, PRESENT, TOWN, band_edges

MAX_DEPTH = 6


def dim_organization(orgs: DataFrame) -> DataFrame:
    """Each organisation with its ancestors: ``path`` (ids from the root), county and town."""
    base = orgs.where(~F.col("is_deleted")).select(
        "org_id", "org_code", "org_name", "parent_org_id", "org_level", "org_type", "region_code", "established_date")
    parents = base.select(F.col("org_id").alias("_pid"), F.col("parent_org_id").alias("_pparent"))
    cur = base.withColumn("path", F.array(F.col("org_id"))).withColumn("_next", F.col("parent_org_id"))
    for _ in range(MAX_DEPTH):
        cur = (cur.join(F.broadcast(parents), cur["_next"] == parents["_pid"], "left")
               .withColumn("path", F.when(F.col("_pid").isNotNull(), F.concat(F.array(F.col("_pid")), F.col("path")))
                           .otherwise(F.col("path")))
               .withColumn("_next", F.col("_pparent")).drop("_pid", "_pparent"))
    cur = cur.drop("_next").withColumn("depth", F.size("path") - 1)
    names = base.select(F.col("org_id").alias("_aid"), F.col("org_name").alias("_aname"), F.col("org_level").alias("_alevel"))
    anc = (cur.select("org_id", F.posexplode("path").alias("pos", "_aid"))
           .join(F.broadcast(names), "_aid")
           .groupBy("org_id").agg(
               F.max(F.when(F.col("_alevel") == COUNTY, F.col("_aid"))).alias("county_org_id"),
               F.max(F.when(F.col("_alevel") == COUNTY, F.col("_aname"))).alias("county_name"),
               F.max(F.when(F.col("_alevel") == TOWN, F.col("_aid"))).alias("town_org_id"),
               F.max(F.when(F.col("_alevel") == TOWN, F.col("_aname"))).alias("town_name")))
    return cur.join(anc, "org_id", "left").orderBy("org_id")


def _band(col, bands) -> "F.Column":
    edges, labels = band_edges(bands)
    expr = None
    for e, lab in zip(edges, labels):
        expr = F.when(col < e, lab) if expr is None else expr.when(col < e, lab)
    return expr.otherwise(labels[-1])


def dim_member(members: DataFrame, dim_org: DataFrame, as_of: dt.date) -> DataFrame:
    """One row per member record, on the roll or not, with the categories statistics group by.

    ``is_on_roll``: the member is 在册 (membership_status; 已转出 and 已去世 rows stay, so history and
    transfers can be counted, but every member count reads ``is_on_roll``). Bands: ``age_band`` and
    ``party_years_band`` (:data:`redcloud.rules.vocab.AGE_BANDS`, ``PARTY_YEARS_BANDS``) with their
    sort keys ``age_band_order`` and ``party_years_band_order``; ``is_minority``: not 汉族.
    """
    d = F.lit(as_of).cast("date")
    age = F.floor(F.months_between(d, F.col("birth_date")) / 12).cast("int")
    years = F.floor(F.months_between(d, F.col("join_date")) / 12).cast("int")
    m = members.where(~F.col("is_deleted")).select(
        "member_id", "member_name", "gender", "ethnicity", "birth_date", "id_number_pseudonym", "id_number_masked",
        "phone_masked", "education", "occupation", "join_date", "full_member_date", "party_status",
        "membership_status", "is_mobile", "org_id")
    m = (m.withColumn("is_on_roll", F.col("membership_status") == ON_ROLL)
         .withColumn("age", age)
         .withColumn("age_band", _band(F.col("age"), AGE_BANDS))
         .withColumn("age_band_order", _band_order(F.col("age"), AGE_BANDS))
         .withColumn("years_in_party", years)
         .withColumn("party_years_band", _band(F.col("years_in_party"), PARTY_YEARS_BANDS))
         .withColumn("party_years_band_order", _band_order(F.col("years_in_party"), PARTY_YEARS_BANDS))
         .withColumn("is_minority", F.col("ethnicity") != HAN))
    org = dim_org.select("org_id", F.col("org_type").alias("branch_type"), "county_org_id", "county_name",
                         "town_org_id", "town_name")
    return m.join(F.broadcast(org), "org_id", "left").withColumn("as_of_date", d)


def _band_order(col, bands) -> "F.Column":
    edges, _ = band_edges(bands)
    expr = None
    for i, e in enumerate(edges):
        expr = F.when(col < e, F.lit(i)) if expr is None else expr.when(col < e, F.lit(i))
    return expr.otherwise(F.lit(len(edges)))


def fct_member_month(members: DataFrame, activity: DataFrame, dues: DataFrame, volunteer: DataFrame,
                     meetings: DataFrame, attendance: DataFrame, rules: Rules) -> DataFrame:
    """One row per member and month with any recorded activity or obligation.

    ``dues_on_time`` (党费): paid by the month's last day plus ``[rules] dues_grace_days``;
    ``dues_days_late``: days after the month's last day it was paid (0 when in the month)."""
    alive = lambda df: df.where(~F.col("is_deleted"))  # noqa: E731
    act = alive(activity).select("member_id", F.col("activity_month").alias("month"), "login_days", "learning_days",
                                 "learning_points", "articles_read")
    du = alive(dues).select(
        "member_id", F.col("dues_month").alias("month"), "amount_due", "amount_paid",
        (F.col("paid_date").isNotNull()
         & (F.col("paid_date") <= F.date_add(F.last_day("dues_month"), rules.dues_grace_days))).alias("dues_on_time"),
        F.when(F.col("paid_date").isNotNull(), F.greatest(F.lit(0), F.datediff("paid_date", F.last_day("dues_month"))))
        .alias("dues_days_late"))
    vol = (alive(volunteer).groupBy("member_id", F.trunc("service_date", "month").alias("month"))
           .agg(F.count("*").alias("volunteer_records"), F.sum("hours").alias("volunteer_hours")))
    mt = alive(meetings).select("meeting_id", F.trunc("meeting_date", "month").alias("month"))
    att = (alive(attendance).join(mt, "meeting_id")
           .groupBy("member_id", "month")
           .agg(F.count("*").alias("meetings_expected"),
                F.sum(F.when(F.col("status") == PRESENT, 1).otherwise(0)).alias("meetings_attended"),
                F.sum(F.when(F.col("status") == EXCUSED, 1).otherwise(0)).alias("meetings_excused")))
    keys = (act.select("member_id", "month").unionByName(du.select("member_id", "month"))
            .unionByName(vol.select("member_id", "month")).unionByName(att.select("member_id", "month")).distinct())
    valid = alive(members).select("member_id", "org_id")
    out = (keys.join(valid, "member_id").join(act, ["member_id", "month"], "left").join(du, ["member_id", "month"], "left")
           .join(vol, ["member_id", "month"], "left").join(att, ["member_id", "month"], "left"))
    zeros = ["login_days", "learning_days", "learning_points", "articles_read", "volunteer_records", "meetings_expected",
             "meetings_attended", "meetings_excused"]
    out = out.fillna(0, subset=zeros).fillna(0.0, subset=["volunteer_hours"])
    return out.withColumn("attendance_rate", F.when(F.col("meetings_expected") > 0,
                                                    F.col("meetings_attended") / F.col("meetings_expected")))
