"""Gold facts of the cadre force: each unit's leadership team (领导班子) over time, and cadre changes.

- ``fct_unit_leadership``: one row per unit and snapshot date (every quarter end, and the logical
  date): the 班子's size, 正职/副职, age structure, women and minority cadres, and whether its 正职
  post is vacant, since when and for how many working days (official calendar).
- ``fct_cadre_change``: one row per cadre and change of post: 任职, 晋升, 降职, 交流 (another unit at
  the same rank), 岗位调整 (another position, same unit and rank), 免职 (the last post ended).

The 班子 of a unit is the cadres holding a post of :data:`redcloud.rules.vocab.RANKS` there
(silver ``cadre_post_history``); its 正职 are :data:`~redcloud.rules.vocab.CHIEF_RANKS`. The rule
parameters are ``[rules] leadership_vacancy_workdays`` and ``leadership_young_age``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from redcloud.rules import Rules
from redcloud.rules.vocab import (
    APPOINTED,
    CHIEF_RANKS,
    DEMOTED,
    FEMALE,
    HAN,
    LEFT,
    POST_RANKS,
    PROMOTED,
    RANKS,
    REASSIGNED,
    TRANSFERRED,
)
from spark_jobs.gold.facts import _alive


def snapshot_dates(first: dt.date, as_of: dt.date) -> list[dt.date]:
    """Every quarter end from the quarter of ``first`` that is before ``as_of``, then ``as_of``."""
    out = []
    y, q = first.year, (first.month - 1) // 3
    while True:
        end = dt.date(y + (q == 3), 1, 1) if q == 3 else dt.date(y, 3 * q + 4, 1)
        end -= dt.timedelta(days=1)
        if end >= as_of:
            break
        out.append(end)
        y, q = (y + 1, 0) if q == 3 else (y, q + 1)
    return out + [as_of]


def fct_unit_leadership(post_history: DataFrame, cadres: DataFrame, calendar: DataFrame, dates: list[dt.date],
                        as_of: dt.date, rules: Rules) -> DataFrame:
    """One row per unit that has had a 班子 post and snapshot date in ``dates`` (from its first such post).

    On each ``snapshot_date``: ``leaders`` (班子 members), ``chiefs`` (正职), ``deputies``; ages in whole
    years on the day (``avg_age``, ``youngest_age``, ``oldest_age``, ``age_under_40``, ``age_40_49``,
    ``age_50_plus``); ``young_leaders`` (younger than ``[rules] leadership_young_age``), ``women``,
    ``minorities`` (民族 other than 汉族); ``has_chief``; when it has none, ``chief_vacant_since`` (the
    day the last 正职 left, or the 班子's first day if it never had one) and ``vacancy_workdays``
    (working days from then to the snapshot, both included, official calendar; counted from the
    calendar's first day when the vacancy is older); ``vacancy_overdue``: more than ``[rules]
    leadership_vacancy_workdays``; ``lacks_women`` / ``lacks_young``: a 班子 with members but none.
    ``is_current``: the snapshot is the logical date.

    Columns: unit_org_id, snapshot_date, quarter, is_current, the figures above, as_of_date.
    """
    spark = post_history.sparkSession
    snaps = spark.createDataFrame([(d,) for d in dates], "snapshot_date date")
    posts = post_history.where(F.col("rank").isin(list(RANKS))).select(
        "cadre_id", "unit_org_id", "rank", "valid_from", "valid_to")
    start = posts.groupBy("unit_org_id").agg(F.min("valid_from").alias("_first"))
    grid = start.crossJoin(F.broadcast(snaps)).where(F.col("_first") <= F.col("snapshot_date"))
    people = _alive(cadres).select("cadre_id", "gender", "ethnicity", "birth_date")
    on_day = (posts.crossJoin(F.broadcast(snaps))
              .where((F.col("valid_from") <= F.col("snapshot_date"))
                     & (F.col("valid_to").isNull() | (F.col("valid_to") > F.col("snapshot_date"))))
              .join(people, "cadre_id", "left")
              .withColumn("_age", F.floor(F.months_between("snapshot_date", "birth_date") / 12).cast("int")))
    cnt = lambda cond: F.sum(F.when(cond, 1).otherwise(0)).cast("long")  # noqa: E731
    team = on_day.groupBy("unit_org_id", "snapshot_date").agg(
        F.count("*").cast("long").alias("leaders"),
        cnt(F.col("rank").isin(list(CHIEF_RANKS))).alias("chiefs"),
        F.round(F.avg("_age"), 1).alias("avg_age"), F.min("_age").alias("youngest_age"),
        F.max("_age").alias("oldest_age"),
        cnt(F.col("_age") < 40).alias("age_under_40"), cnt(F.col("_age").between(40, 49)).alias("age_40_49"),
        cnt(F.col("_age") >= 50).alias("age_50_plus"),
        cnt(F.col("_age") < rules.leadership_young_age).alias("young_leaders"),
        cnt(F.col("gender") == FEMALE).alias("women"),
        cnt(F.col("ethnicity").isNotNull() & (F.col("ethnicity") != HAN)).alias("minorities"))
    out = grid.join(team, ["unit_org_id", "snapshot_date"], "left")
    for c in ("leaders", "chiefs", "age_under_40", "age_40_49", "age_50_plus", "young_leaders", "women", "minorities"):
        out = out.withColumn(c, F.coalesce(F.col(c), F.lit(0)).cast("long"))
    chief_left = (posts.where(F.col("rank").isin(list(CHIEF_RANKS)) & F.col("valid_to").isNotNull())
                  .select("unit_org_id", F.col("valid_to").alias("_left")))
    last_left = (out.where(F.col("chiefs") == 0).select("unit_org_id", "snapshot_date")
                 .join(chief_left, "unit_org_id")
                 .where(F.col("_left") <= F.col("snapshot_date"))
                 .groupBy("unit_org_id", "snapshot_date").agg(F.max("_left").alias("_last_left")))
    out = (out.join(last_left, ["unit_org_id", "snapshot_date"], "left")
           .withColumn("chief_vacant_since", F.when(F.col("chiefs") == 0, F.coalesce("_last_left", "_first"))))
    wd = calendar.where(F.col("is_workday")).select("cal_date")
    vac = (out.where(F.col("chief_vacant_since").isNotNull()).select("unit_org_id", "snapshot_date", "chief_vacant_since")
           .join(F.broadcast(wd), (F.col("cal_date") >= F.col("chief_vacant_since"))
                 & (F.col("cal_date") <= F.col("snapshot_date")), "left")
           .groupBy("unit_org_id", "snapshot_date").agg(F.count("cal_date").cast("int").alias("vacancy_workdays")))
    out = out.join(vac, ["unit_org_id", "snapshot_date"], "left")
    d = F.lit(as_of).cast("date")
    has = F.col("leaders") > 0
    return out.select(
        "unit_org_id", "snapshot_date", F.trunc("snapshot_date", "quarter").alias("quarter"),
        (F.col("snapshot_date") == d).alias("is_current"),
        "leaders", "chiefs", (F.col("leaders") - F.col("chiefs")).alias("deputies"),
        "avg_age", "youngest_age", "oldest_age", "age_under_40", "age_40_49", "age_50_plus", "young_leaders",
        "women", "minorities", (F.col("chiefs") > 0).alias("has_chief"), "chief_vacant_since",
        F.coalesce(F.col("vacancy_workdays"), F.lit(0)).alias("vacancy_workdays"),
        (F.coalesce(F.col("vacancy_workdays"), F.lit(0)) > rules.leadership_vacancy_workdays).alias("vacancy_overdue"),
        (has & (F.col("women") == 0)).alias("lacks_women"), (has & (F.col("young_leaders") == 0)).alias("lacks_young"),
        d.alias("as_of_date"))


def _rank_order(col: str):
    """0 for the highest rank of :data:`POST_RANKS` (县处级正职) ... 4 for 科员; NULL for another value."""
    expr = F.lit(None).cast("int")
    for i, r in reversed(list(enumerate(POST_RANKS))):
        expr = F.when(F.col(col) == r, F.lit(i)).otherwise(expr)
    return expr


def fct_cadre_change(post_history: DataFrame, as_of: dt.date) -> DataFrame:
    """One row per change of a cadre's post up to ``as_of``, from ``cadre_post_history`` in order:
    the first post is 任职; each next one 晋升 (higher rank), 降职 (lower), 交流 (same rank, another
    unit) or 岗位调整 (same rank and unit, another position); a last post that ended is 免职 on its
    ``valid_to``. ``unit_org_id`` is where the change counts: the new post's unit (the old one for 免职).

    Columns: cadre_id, change_date, quarter, change_type, unit_org_id, from_unit_org_id, from_rank,
    from_position, to_rank, to_position, as_of_date.
    """
    d = F.lit(as_of).cast("date")
    p = post_history.select("cadre_id", "unit_org_id", "rank", "position", "valid_from", "valid_to")
    w = Window.partitionBy("cadre_id").orderBy("valid_from")
    p = (p.withColumn("_prev_unit", F.lag("unit_org_id").over(w)).withColumn("_prev_rank", F.lag("rank").over(w))
         .withColumn("_prev_pos", F.lag("position").over(w)).withColumn("_next", F.lead("valid_from").over(w))
         .withColumn("_o", _rank_order("rank")).withColumn("_po", _rank_order("_prev_rank")))
    kind = (F.when(F.col("_prev_rank").isNull() & F.col("_prev_unit").isNull(), F.lit(APPOINTED))
            .when(F.col("_o") < F.col("_po"), F.lit(PROMOTED))
            .when(F.col("_o") > F.col("_po"), F.lit(DEMOTED))
            .when(F.col("unit_org_id") != F.col("_prev_unit"), F.lit(TRANSFERRED))
            .when(~F.col("position").eqNullSafe(F.col("_prev_pos")), F.lit(REASSIGNED)))
    starts = p.select("cadre_id", F.col("valid_from").alias("change_date"), kind.alias("change_type"),
                      F.col("unit_org_id"), F.col("_prev_unit").alias("from_unit_org_id"),
                      F.col("_prev_rank").alias("from_rank"), F.col("_prev_pos").alias("from_position"),
                      F.col("rank").alias("to_rank"), F.col("position").alias("to_position"))
    ends = (p.where(F.col("_next").isNull() & F.col("valid_to").isNotNull())
            .select("cadre_id", F.col("valid_to").alias("change_date"), F.lit(LEFT).alias("change_type"),
                    F.col("unit_org_id"), F.col("unit_org_id").alias("from_unit_org_id"),
                    F.col("rank").alias("from_rank"), F.col("position").alias("from_position"),
                    F.lit(None).cast("string").alias("to_rank"), F.lit(None).cast("string").alias("to_position")))
    out = starts.unionByName(ends).where(F.col("change_type").isNotNull() & (F.col("change_date") <= d))
    return out.select("cadre_id", "change_date", F.trunc("change_date", "quarter").alias("quarter"), "change_type",
                      "unit_org_id", "from_unit_org_id", "from_rank", "from_position", "to_rank", "to_position",
                      d.alias("as_of_date"))
