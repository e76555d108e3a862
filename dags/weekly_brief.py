"""The weekly brief DAG (每周决策参考): every Monday, the brief for the ISO week that just ended,
from the current serving snapshot. A rerun for the same Monday rewrites the same brief."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import BRIEF, DAY, DEFAULT_ARGS, MACROS, START, end_date, stage_task
from airflow.sdk import DAG, Param, task

# what the Airflow UI shows on the DAG page (users read Chinese); the module docstring is for developers
DOC_ZH = """### 每周决策参考

每周一根据当前服务快照，生成上一 ISO 周的决策参考（HTML 与 PDF），数字均注明来源表、快照与 Delta 版本。同一周一重跑会覆盖同一份简报。

*English:* every Monday, the weekly decision brief for the ISO week that just ended."""

with DAG(
    dag_id="weekly_brief",
    description="每周决策参考 (每周一)",
    doc_md=DOC_ZH,
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
