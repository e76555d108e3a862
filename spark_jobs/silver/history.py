"""SCD2 history for silver (pure transforms): organisations, member status, cadre posts.

Every history table has one row per key and period with

=============  =================================================================================
``valid_from``  first day of the period (inclusive)
``valid_to``    first day after the period (exclusive); NULL while the period is open
``is_current``  the period that holds on the as-of date (at most one per key)
=============  =================================================================================

and the tracked attributes of the period. Periods of one key never overlap, and consecutive
periods always differ in at least one tracked attribute (identical versions collapse).

The tables are rebuilt from scratch on every run (bronze keeps every version, silver keeps the
effective dates), so a rerun or a backfill gives exactly the same rows.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from redcloud.rules.vocab import (
    CONFIRM,
    DEATH,
    DECEASED,
    FULL_MEMBER,
    JOIN,
    MOBILE,
    ON_ROLL,
    PROBATIONARY,
    TRANSFER_IN,
    TRANSFER_OUT,
    TRANSFERRED_OUT,
)
from spark_jobs.silver.common import with_errors
from spark_jobs.silver.entities import BY_NAME

ORG_TRACKED = ["org_name", "parent_org_id", "org_level", "org_type"]
MEMBER_TRACKED = ["membership_status", "party_status", "is_mobile", "org_id"]
POST_TRACKED = ["unit_org_id", "position", "rank"]



def _alive(df: DataFrame) -> DataFrame:
    return df.where(~F.coalesce(F.col("is_deleted"), F.lit(False)))


def _changed(attrs: list[str], w: Window) -> Column:
    """TRUE on the first row of a key and wherever any attribute differs (null-safe) from the previous row."""
    first = F.lag(F.lit(1)).over(w).isNull()
    diff = None
    for a in attrs:
        d = ~F.col(a).eqNullSafe(F.lag(a).over(w))
        diff = d if diff is None else diff | d
    return first | diff


def collapse_periods(states: DataFrame, key: str, attrs: list[str], order: list[Column],
                     as_of: dt.date | None = None) -> DataFrame:
    """Turn dated states into SCD2 periods.

    ``states`` has one row per state change with ``valid_from`` (a date), ``key``, ``attrs`` and
    whatever ``order`` sorts by within a day. Per key and day the last state wins; consecutive
    identical states merge; ``valid_to`` is the next period's ``valid_from``. Rows whose
    ``_gone`` column is TRUE (a deletion) end the previous period and are then dropped.
    """
    if "_gone" not in states.columns:
        states = states.withColumn("_gone", F.lit(False))
    day_w = Window.partitionBy(key, "valid_from").orderBy(*[c.desc_nulls_first() for c in order])
    last_of_day = states.withColumn("_rn", F.row_number().over(day_w)).where("_rn = 1").drop("_rn")
    w = Window.partitionBy(key).orderBy("valid_from")
    kept = last_of_day.withColumn("_chg", _changed(attrs + ["_gone"], w)).where("_chg").drop("_chg")
    out = kept.withColumn("valid_to", F.lead("valid_from").over(w)).where(~F.col("_gone")).drop("_gone")
    if as_of is None:
        cur = F.col("valid_to").isNull()
    else:
        d = F.lit(as_of).cast("date")
        cur = (F.col("valid_from") <= d) & (F.col("valid_to").isNull() | (F.col("valid_to") > d))
    return out.withColumn("is_current", cur)


# ---------------------------------------------------------------------------------------------
# organisations: from every bronze version
# ---------------------------------------------------------------------------------------------

def organization_history(bronze_orgs: DataFrame, as_of: dt.date | None = None) -> DataFrame:
    """``silver/organization_history``: one row per organisation and period.

    Source: every version of ``bronze/org__organizations`` (loaded up to ``as_of``). A version
    is valid from the day of its ``updated_at``; the first version of an organisation from its
    ``established_date`` (so point-in-time joins work before the first recorded change). A
    tombstone (``_op = 'D'``) closes the open period on its logical date. Versions that break the
    silver rules of ``organizations`` are ignored.

    Columns: org_id, valid_from, valid_to, is_current, org_name, parent_org_id, org_level,
    org_type, version_updated_at, version_logical_date.
    """
    spec = BY_NAME["organizations"]
    b = bronze_orgs
    if as_of is not None:
        b = b.where(F.col("_logical_date") <= F.lit(as_of).cast("date"))
    ups = b.where(F.col("_op") == "U").select(*[F.expr(c) for c in spec.columns], "_logical_date")
    ups = with_errors(ups, spec.rules).where(F.size("_errors") == 0).drop("_errors")
    first_w = Window.partitionBy("org_id").orderBy("updated_at", "_logical_date")
    day = F.to_date("updated_at")
    ups = ups.select(
        "org_id", *ORG_TRACKED,
        F.when(F.row_number().over(first_w) == 1, F.least(F.coalesce("established_date", day), day))
        .otherwise(day).alias("valid_from"),
        F.col("updated_at").alias("version_updated_at"), F.col("_logical_date").alias("version_logical_date"),
        F.lit(False).alias("_gone"))
    dels = b.where(F.col("_op") == "D").select(
        "org_id", *[F.lit(None).cast(ups.schema[a].dataType).alias(a) for a in ORG_TRACKED],
        F.col("_logical_date").alias("valid_from"), F.lit(None).cast("timestamp").alias("version_updated_at"),
        F.col("_logical_date").alias("version_logical_date"), F.lit(True).alias("_gone"))
    states = ups.unionByName(dels)
    # within a day: later source versions win, a tombstone wins over a version of the same day
    order = [F.col("_gone"), F.col("version_updated_at"), F.col("version_logical_date")]
    out = collapse_periods(states, "org_id", ORG_TRACKED, order, as_of)
    return out.select("org_id", "valid_from", "valid_to", "is_current", *ORG_TRACKED, "version_updated_at",
                      "version_logical_date")


# ---------------------------------------------------------------------------------------------
# member status: from the change log (effective dates) and the join date
# ---------------------------------------------------------------------------------------------

def member_status_history(changes: DataFrame, members: DataFrame, as_of: dt.date | None = None) -> DataFrame:
    """``silver/member_status_history``: one row per member and status period.

    Built from silver ``member_status_changes`` by their effective ``change_date`` (not when the
    change was recorded: a late-arriving 去世/转出 lands at its real date) and the member's
    ``join_date`` (the first period: 在册, 预备党员). Members not in silver ``members`` (quarantined
    or deleted) are left out; changes after ``as_of`` are ignored.

    Rules: 入党/转入 put the member on the roll (在册) of ``to_org_id``; 转正 (or, when the log
    has none, ``full_member_date``) makes a 正式党员; 转出 → 已转出 and 去世 → 已去世 (org_id keeps
    the organisation the member left); 流动 sets ``is_mobile``. Before a 转入 the member belongs to
    an organisation outside the city (org_id NULL). A change dated before the join date counts
    from the join date.

    Columns: member_id, valid_from, valid_to, is_current, membership_status, party_status,
    is_mobile, org_id, is_on_roll (在册: the period counts in membership statistics), opened_by (change type, or 入党 for the join), opened_by_change_id,
    recorded_at (when the opening change was recorded; later than valid_from when it arrived late).
    """
    m = _alive(members).select("member_id", "join_date", "full_member_date",
                               F.col("party_status").alias("_cur_party"), F.col("org_id").alias("_cur_org"))
    c = _alive(changes).select("change_id", "member_id", "change_type", "change_date", "from_org_id", "to_org_id",
                               "updated_at")
    if as_of is not None:
        d = F.lit(as_of).cast("date")
        m = m.where(F.col("join_date") <= d)
        c = c.where(F.col("change_date") <= d)
    m = m.where(F.col("join_date").isNotNull())
    c = c.join(m.select("member_id", "join_date"), "member_id")  # drops changes of quarantined members
    c = c.withColumn("eff_date", F.greatest("change_date", "join_date")).drop("join_date")

    first_w = Window.partitionBy("member_id").orderBy("eff_date", "change_id")
    first = (c.withColumn("_rn", F.row_number().over(first_w)).where("_rn = 1")
             .select("member_id", F.when(F.col("change_type") == JOIN, F.col("to_org_id"))
                     .when(F.col("change_type") == TRANSFER_IN, F.col("from_org_id"))
                     .otherwise(F.coalesce("from_org_id", "to_org_id")).alias("_first_org"),
                     F.lit(True).alias("_has_changes")))
    conf = c.where(F.col("change_type") == CONFIRM).select("member_id").distinct().withColumn("_has_zz", F.lit(True))
    m = m.join(first, "member_id", "left").join(conf, "member_id", "left")

    no_str = F.lit(None).cast("string")
    no_long = F.lit(None).cast("long")
    no_bool = F.lit(None).cast("boolean")
    no_ts = F.lit(None).cast("timestamp")
    start = m.select(
        "member_id", F.col("join_date").alias("eff_date"), F.lit(0).alias("_prio"), no_long.alias("change_id"),
        F.lit(ON_ROLL).alias("membership_status"),
        F.when(F.col("full_member_date").isNull() & F.col("_has_zz").isNull() & (F.col("_cur_party") == FULL_MEMBER),
               F.lit(FULL_MEMBER)).otherwise(F.lit(PROBATIONARY)).alias("party_status"),
        F.lit(False).alias("is_mobile"),
        F.when(F.col("_has_changes").isNull(), F.col("_cur_org")).otherwise(F.col("_first_org")).alias("org_id"),
        F.lit(JOIN).alias("opened_by"), no_ts.alias("recorded_at"))
    full = m.where(F.col("full_member_date").isNotNull() & F.col("_has_zz").isNull()).select(
        "member_id", F.greatest("full_member_date", "join_date").alias("eff_date"), F.lit(1).alias("_prio"),
        no_long.alias("change_id"), no_str.alias("membership_status"), F.lit(FULL_MEMBER).alias("party_status"),
        no_bool.alias("is_mobile"), no_long.alias("org_id"), F.lit(CONFIRM).alias("opened_by"), no_ts.alias("recorded_at"))
    t = F.col("change_type")
    evts = c.select(
        "member_id", "eff_date", F.lit(2).alias("_prio"), "change_id",
        F.when(t.isin(JOIN, TRANSFER_IN), F.lit(ON_ROLL)).when(t == TRANSFER_OUT, F.lit(TRANSFERRED_OUT))
        .when(t == DEATH, F.lit(DECEASED)).alias("membership_status"),
        F.when(t == CONFIRM, F.lit(FULL_MEMBER)).alias("party_status"),
        F.when(t == MOBILE, F.lit(True)).alias("is_mobile"),
        F.when(t.isin(JOIN, TRANSFER_IN, MOBILE), F.col("to_org_id")).when(t == TRANSFER_OUT, F.col("from_org_id"))
        .alias("org_id"),
        t.alias("opened_by"), F.col("updated_at").alias("recorded_at"))
    allev = start.unionByName(full).unionByName(evts)
    w = (Window.partitionBy("member_id").orderBy("eff_date", "_prio", "change_id")
         .rowsBetween(Window.unboundedPreceding, Window.currentRow))
    filled = allev.select(
        "member_id", F.col("eff_date").alias("valid_from"), "_prio", "change_id", "opened_by", "recorded_at",
        *[F.last(a, ignorenulls=True).over(w).alias(a) for a in MEMBER_TRACKED])
    out = collapse_periods(filled, "member_id", MEMBER_TRACKED, [F.col("_prio"), F.col("change_id")], as_of)
    return out.select("member_id", "valid_from", "valid_to", "is_current", *MEMBER_TRACKED,
                      (F.col("membership_status") == ON_ROLL).alias("is_on_roll"), "opened_by",
                      F.col("change_id").alias("opened_by_change_id"), "recorded_at")


# ---------------------------------------------------------------------------------------------
# cadre posts
# ---------------------------------------------------------------------------------------------

def cadre_post_history(posts: DataFrame, cadres: DataFrame | None = None, as_of: dt.date | None = None) -> DataFrame:
    """``silver/cadre_post_history``: one row per cadre and post period.

    From silver ``cadre_posts``: ``valid_from = start_date``, ``valid_to = end_date + 1 day``
    (NULL while the post is open). When a post starts before the previous one ended, the earlier
    period is cut at the later start (``overlap_trimmed``), so periods never overlap. Posts that
    start after ``as_of`` are ignored; ``is_current`` is the post held on ``as_of``.

    Columns: cadre_id, post_id, valid_from, valid_to, is_current, unit_org_id, position, rank,
    start_date, end_date, overlap_trimmed.
    """
    p = _alive(posts).where(F.col("start_date").isNotNull())
    if cadres is not None:
        p = p.join(_alive(cadres).select("cadre_id"), "cadre_id", "left_semi")
    if as_of is not None:
        p = p.where(F.col("start_date") <= F.lit(as_of).cast("date"))
    w = Window.partitionBy("cadre_id").orderBy("start_date", "post_id")
    raw_to = F.date_add("end_date", 1)
    nxt = F.lead("start_date").over(w)
    p = (p.withColumn("_next", nxt)
         .withColumn("valid_to", F.when(F.col("_next").isNull(), raw_to)
                     .otherwise(F.least(F.coalesce(raw_to, F.col("_next")), F.col("_next"))))
         .withColumn("overlap_trimmed", F.col("_next").isNotNull() & (raw_to.isNull() | (raw_to > F.col("_next"))))
         .withColumn("valid_from", F.col("start_date"))
         .where(F.col("valid_to").isNull() | (F.col("valid_to") > F.col("valid_from"))))
    if as_of is None:
        cur = F.col("valid_to").isNull()
    else:
        d = F.lit(as_of).cast("date")
        cur = (F.col("valid_from") <= d) & (F.col("valid_to").isNull() | (F.col("valid_to") > d))
    return p.select("cadre_id", "post_id", "valid_from", "valid_to", cur.alias("is_current"), *POST_TRACKED,
                    "start_date", "end_date", "overlap_trimmed")
