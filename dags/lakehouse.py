"""The lakehouse DAG: silver -> gold for the day the three ingestion DAGs just landed.

Scheduled on the three bronze assets (it runs once all of them have a new event). Each stage ends
in its quality gate: a failed gate exits 3, the task fails at once (no retries: the data will not
change by retrying) with the failing expectations and example rows in the task log and the failure
notification, and gold is neither built nor announced, so nothing downstream publishes.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import BRONZE_IRONCAGE, BRONZE_ORGDB, BRONZE_WEB, DAY, DEFAULT_ARGS, GOLD, MACROS, START, stage_task
from airflow.sdk import DAG, Param, task

# what the Airflow UI shows on the DAG page (users read Chinese); the module docstring is for developers
DOC_ZH = """### 湖仓：silver → gold（带质量闸门）

三个采集 DAG 都落地当天数据后运行。每一层以质量闸门结束：闸门失败时任务立即失败（不重试），日志与失败通知中列出未通过的检查项和示例记录，本层各表保持上一版本，黄金层既不构建也不发布。

*English:* silver then gold for the landed day, each gated by Great Expectations (write–audit–publish)."""

with DAG(
    dag_id="lakehouse",
    description="silver → gold，带质量闸门",
    doc_md=DOC_ZH,
    schedule=BRONZE_ORGDB & BRONZE_IRONCAGE & BRONZE_WEB,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    params={"date": Param(None, type=["null", "string"], format="date", title="业务日期",
                          description="手动运行时的业务日期 (YYYY-MM-DD)；留空则取触发资产事件中的日期")},
    tags=["redcloud", "silver", "gold", "quality"],
) as dag:

    @task(task_id="announce_gold", outlets=[GOLD])
    def announce(day: str, **context):
        context["outlet_events"][GOLD].extra = {"logical_date": day}
        return day

    stage_task("silver") >> stage_task("gold") >> announce(DAY)
