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


# what the Airflow UI shows on the DAG page (users read Chinese); the module docstring is for developers
DOC_ZH = """### 自流程化：工作日提醒与督办

黄金层某日数据刷新后运行。第一个任务按官方日历（法定节假日与调休工作日）判断当天是否为工作日：非工作日跳过后续全部任务；工作日则按规则计算学习问答提醒与升级督办、帮扶项目督办预警与逾期注销、驻村工作记实提醒，写入告警表与发件箱，并通过 SMTP 发送（APP 端经接口 `/api/v1/inbox` 获取）。同一逻辑日期重跑不会重复发送。

*English:* auto-flow reminders and escalations on official working days; idempotent per logical date."""

with DAG(
    dag_id="autoflow",
    description="自流程化: 工作日提醒与督办",
    doc_md=DOC_ZH,
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
