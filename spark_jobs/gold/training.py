"""Gold fact of 干部调训 (app system 4): each cadre's year of training against the yearly 学时 requirement.

``fct_cadre_training_year``: one row per cadre and year with a planned class (调训计划): classes
planned, attended, missed, 学时 credited against ``[rules] training_hours_required``, the working days
left in the year (official calendar), and the year-end warning once at most ``[rules]
training_warning_workdays`` of them remain and the cadre is still short.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from redcloud.rules import Rules
from spark_jobs.gold.facts import _alive


def fct_cadre_training_year(classes: DataFrame, enrollments: DataFrame, calendar: DataFrame, as_of: dt.date,
                            rules: Rules) -> DataFrame:
    """One row per cadre and year (of the class's start) up to the year of ``as_of``.

    ``calendar`` must cover as_of's year to 31 December. Columns: cadre_id, year, classes_planned,
    classes_attended, classes_missed, classes_pending (not ended by as_of), hours, hours_required,
    hours_short (0 when met), remaining_workdays (working days after as_of in the year; 0 for a past
    year), warning_from (the working day from which the year-end warning applies), shortfall_warning,
    year_complete, as_of_date.
    """
    d = F.lit(as_of).cast("date")
    c = _alive(classes).where(F.col("start_date") <= d).select("class_id", "start_date", "end_date", "hours")
    e = _alive(enrollments).select("class_id", "cadre_id", "attended", "hours_credited")
    j = e.join(c, "class_id").withColumn("year", F.year("start_date")).withColumn("_ended", F.col("end_date") <= d)
    cnt = lambda cond: F.sum(F.when(cond, 1).otherwise(0)).cast("long")  # noqa: E731
    per = j.groupBy("cadre_id", "year").agg(
        F.count("*").cast("long").alias("classes_planned"),
        cnt(F.col("_ended") & F.col("attended")).alias("classes_attended"),
        cnt(F.col("_ended") & ~F.coalesce(F.col("attended"), F.lit(True))).alias("classes_missed"),
        cnt(~F.col("_ended") | F.col("attended").isNull()).alias("classes_pending"),
        F.sum(F.when(F.col("_ended"), F.col("hours_credited")).otherwise(0.0)).alias("hours"))
    wd = calendar.where(F.col("is_workday")).select("cal_date", F.year("cal_date").alias("year"))
    left = (wd.where(F.col("cal_date") > d).groupBy("year").agg(F.count("*").cast("int").alias("_left")))
    # the working day on which exactly training_warning_workdays remain after it (inclusive counting)
    ranked = wd.withColumn("_rest", F.count("*").over(
        Window.partitionBy("year").orderBy(F.col("cal_date").desc()).rowsBetween(Window.unboundedPreceding, 0)))
    warn_from = (ranked.where(F.col("_rest") == rules.training_warning_workdays)
                 .select("year", F.col("cal_date").alias("warning_from")))
    out = (per.join(F.broadcast(left), "year", "left").join(F.broadcast(warn_from), "year", "left")
           .withColumn("remaining_workdays", F.when(F.col("year") == as_of.year, F.coalesce(F.col("_left"), F.lit(0)))
                       .otherwise(F.lit(0))))
    req = F.lit(float(rules.training_hours_required))
    short = F.greatest(req - F.col("hours"), F.lit(0.0))
    complete = F.make_date("year", F.lit(12), F.lit(31)) <= d
    warn = (F.col("year") == as_of.year) & (short > 0) & (F.col("remaining_workdays") < rules.training_warning_workdays)
    return out.select(
        "cadre_id", F.col("year").cast("int").alias("year"), "classes_planned", "classes_attended", "classes_missed",
        "classes_pending", F.col("hours").cast("double").alias("hours"), req.alias("hours_required"),
        short.alias("hours_short"), F.col("remaining_workdays").cast("int").alias("remaining_workdays"),
        "warning_from", warn.alias("shortfall_warning"), complete.alias("year_complete"), d.alias("as_of_date"))
