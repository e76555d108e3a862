"""The weekly brief DAG (每周决策参考): every Monday, the brief for the ISO week that just ended,
from the current serving snapshot. A rerun for the same Monday rewrites the same brief."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import BRIEF, DAY, DEFAULT_ARGS, MACROS, START, end_date, stage_task
from airflow.sdk import DAG, Param, task

with DAG(
    dag_id="weekly_brief",
    description="每周决策参考 (每周一)",
    doc_md=__doc__,
    schedule="0 0 * * 1",
    start_date=START,
    end_date=end_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    params={"date": Param(None, type=["null", "string"], format="date", title="业务日期",
                          description="简报针对该日期之前结束的 ISO 周")},
    tags=["redcloud", "brief"],
) as dag:

    @task(task_id="announce_brief", outlets=[BRIEF])
    def announce(day: str, **context):
        context["outlet_events"][BRIEF].extra = {"logical_date": day}
        return day

    stage_task("brief", retries=1) >> announce(DAY)
