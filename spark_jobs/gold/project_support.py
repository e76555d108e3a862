"""Gold fact of 帮扶措施 and funding per 帮扶 project (政府帮扶为主，社会帮扶为辅).

``fct_project_support``: one row per project started by the logical date: its measures, the money by
channel, and whether a running project still has no measure ``[rules] project_measure_workdays``
working days after its start (official calendar), the 自流程化 warning ``project_measure_missing``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from redcloud.rules import Rules
from redcloud.rules.vocab import GOVERNMENT, OPEN_PROJECT_STATES, SOCIAL
from spark_jobs.gold.facts import _alive, with_workday_deadline, workday_numbers


def fct_project_support(projects: DataFrame, project_status: DataFrame, measures: DataFrame, calendar: DataFrame,
                        as_of: dt.date, rules: Rules) -> DataFrame:
    """One row per 帮扶 project with ``start_date`` on or before ``as_of``.

    - ``measures``, ``measure_types`` (sorted, distinct), ``first_measure_date``: measures started by as_of;
    - ``government_yuan`` / ``social_yuan`` / ``total_yuan`` and ``government_share`` (NULL without money);
    - ``status``: the project's lifecycle state (gold ``fct_project_status``);
    - ``measure_due_date``: the ``project_measure_workdays``-th working day after the start (NULL when
      beyond ``calendar``); ``measures_missing``: an open project (进行中, 督办预警, 已逾期) with no measure
      and that day passed; ``workdays_without_measure``: working days after the due day up to as_of then.

    Columns: project_id, project_name, village_org_id, cadre_id, category, start_date, status, budget_yuan,
    measures, measure_types, first_measure_date, government_yuan, social_yuan, total_yuan, government_share,
    measure_due_date, measures_missing, workdays_without_measure, as_of_date.
    """
    d = F.lit(as_of).cast("date")
    p = (_alive(projects).where(F.col("start_date") <= d)
         .select("project_id", "project_name", "village_org_id", "cadre_id", "category", "start_date", "budget_yuan"))
    st = project_status.select("project_id", "status")
    m = _alive(measures).where(F.col("start_date") <= d)
    money = lambda ch: F.sum(F.when(F.col("funding_channel") == ch, F.col("amount_yuan")).otherwise(0.0))  # noqa: E731
    agg = m.groupBy("project_id").agg(
        F.count("*").cast("long").alias("measures"), F.array_sort(F.collect_set("measure_type")).alias("measure_types"),
        F.min("start_date").alias("first_measure_date"), money(GOVERNMENT).alias("government_yuan"),
        money(SOCIAL).alias("social_yuan"))
    out = with_workday_deadline(p.join(st, "project_id", "left").join(agg, "project_id", "left"), "start_date",
                                rules.project_measure_workdays, workday_numbers(calendar), as_of, "measure_due_date")
    n = F.coalesce(F.col("measures"), F.lit(0))
    gov, soc = F.coalesce(F.col("government_yuan"), F.lit(0.0)), F.coalesce(F.col("social_yuan"), F.lit(0.0))
    missing = ((n == 0) & F.col("status").isin(list(OPEN_PROJECT_STATES)) & F.col("measure_due_date").isNotNull()
               & (F.col("measure_due_date") < d))
    return out.select(
        "project_id", "project_name", "village_org_id", "cadre_id", "category", "start_date", "status", "budget_yuan",
        n.cast("long").alias("measures"), F.coalesce(F.col("measure_types"), F.array().cast("array<string>"))
        .alias("measure_types"), "first_measure_date", gov.alias("government_yuan"), soc.alias("social_yuan"),
        (gov + soc).alias("total_yuan"), F.when(gov + soc > 0, gov / (gov + soc)).alias("government_share"),
        "measure_due_date", missing.alias("measures_missing"),
        F.when(missing, F.col("_today_n") - F.col("_due_n")).otherwise(F.lit(0)).cast("int")
        .alias("workdays_without_measure"), d.alias("as_of_date"))
