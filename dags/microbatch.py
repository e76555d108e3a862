"""The 15-minute micro-batch DAG: the app's 学习问答 and 驻村 data into gold during the day, same-day reminders.

Every 15 minutes from 08:00 to 17:45 (Asia/Shanghai) one task runs ``redcloud microbatch`` for the
day and the time of the run (:mod:`redcloud.stages.microbatch`): bronze -> silver -> gold for the
learning answers and 驻村 work records, and from ``[alerts] same_day_reminder_hour`` on (working days of the official
calendar only) the day's reminders. The nightly ``redcloud_daily`` run rebuilds the day in full.
A manual run takes ``date`` and ``at`` (HH:MM) as parameters.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

import pendulum
from _common import DEFAULT_ARGS, MACROS, REDCLOUD, START, end_date, python_task
from airflow.sdk import DAG, CronTriggerTimetable, Param

TZ = "Asia/Shanghai"


def local_time(params, dag_run, fmt: str) -> str:
    """The run's moment in Beijing time (``date``/``at`` params win), formatted with ``fmt``."""
    when = getattr(dag_run, "logical_date", None) or getattr(dag_run, "run_after", None) or pendulum.now("UTC")
    local = pendulum.instance(when).in_timezone(TZ)
    if fmt == "date":
        return str(params.get("date") or local.date().isoformat())
    return str(params.get("at") or local.strftime("%H:%M"))


DOC_ZH = """### 学习问答与驻村记实准实时批次（每 15 分钟）

工作时间（北京时间 8:00–17:45）每 15 分钟运行一次：采集 APP 的学习问答、账号与驻村每日工作记实数据，经清洗层、事实层（只重算本批次影响的日期），
质量闸门通过后写入；每天从配置的时刻（`[alerts] same_day_reminder_hour`，默认 16 点）起，在工作日当天发送学习问答与驻村记实提醒，
而不是第二天。当天夜间的日批会完整重算这一天，提醒不会重复发送。手动运行可指定 `date` 与 `at`（HH:MM）。

*English:* every 15 minutes in working hours: app learning and 驻村 data through bronze, silver and gold (only the touched
days), and the day's learning and 驻村 reminders from the configured hour."""

with DAG(
    dag_id="microbatch",
    description="学习问答与驻村记实准实时批次：每 15 分钟入湖，当天提醒",
    doc_md=DOC_ZH,
    schedule=CronTriggerTimetable("*/15 8-17 * * *", timezone=TZ),
    start_date=START,
    end_date=end_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros={**MACROS, "local_time": local_time},
    params={"date": Param(None, type=["null", "string"], format="date", title="业务日期"),
            "at": Param(None, type=["null", "string"], title="批次截止时刻 (HH:MM)")},
    tags=["redcloud", "microbatch", "alerts"],
) as dag:
    python_task(f'"{REDCLOUD}" microbatch --date "{{{{ local_time(params, dag_run, \'date\') }}}}" '
                f'--at "{{{{ local_time(params, dag_run, \'at\') }}}}" --run-id "{{{{ run_id }}}}"',
                task_id="microbatch", raw=True, retries=1)
