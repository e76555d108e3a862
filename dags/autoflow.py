"""The auto-flow (自流程化) DAG: reminders and escalations, on working days only.

Runs when gold is refreshed for a day. The first task checks the official calendar (法定节假日 and
调休 make-up working days, ``redcloud.workdays``) and short-circuits the run on non-working days:
it exits 99, the task is marked skipped and so is everything after it. On working days the alerts
stage evaluates the rules and delivers the outbox; it is idempotent per logical date.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import ALERTS, DAY, DEFAULT_ARGS, GOLD, MACROS, SKIP, START, python_task, stage_task
from airflow.sdk import DAG, Param, task

IS_WORKDAY = ("-c 'import datetime as d, sys; from redcloud.workdays import is_workday; "
              "day = d.date.fromisoformat(sys.argv[1]); w = is_workday(day); "
              "print(day, \"工作日\" if w else \"非工作日，自流程化今日不运行\"); "
              f"sys.exit(0 if w else {SKIP})' " + DAY)

with DAG(
    dag_id="autoflow",
    description="自流程化: 工作日提醒与督办",
    doc_md=__doc__,
    schedule=GOLD,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    params={"date": Param(None, type=["null", "string"], format="date", title="业务日期")},
    tags=["redcloud", "alerts", "autoflow"],
) as dag:

    @task(task_id="announce_alerts", outlets=[ALERTS])
    def announce(day: str, **context):
        context["outlet_events"][ALERTS].extra = {"logical_date": day}
        return day

    python_task(IS_WORKDAY, task_id="is_workday") >> stage_task("alerts", retries=1) >> announce(DAY)
