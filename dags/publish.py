"""The publish DAG: build the serving snapshot (DuckDB) from gold, the marts and the model scores,
then swap ``current.duckdb`` to it atomically. Scheduled on the marts asset (which follows gold and
the model scores); a run for a day replaces that day's snapshot, so reruns are safe."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import DAY, DEFAULT_ARGS, MACROS, MARTS, SERVING, START, stage_task
from airflow.sdk import DAG, Param, task

# what the Airflow UI shows on the DAG page (users read Chinese); the module docstring is for developers
DOC_ZH = """### 发布服务快照

在统计集市更新后，把黄金层、统计集市和模型评分写入新的 DuckDB 快照，再原子切换 `current.duckdb`；接口、Superset 与简报读取该快照。同一天重跑会替换当天快照。

*English:* builds the serving snapshot (DuckDB) and swaps it in atomically."""

with DAG(
    dag_id="publish",
    description="发布服务快照 (DuckDB)",
    doc_md=DOC_ZH,
    schedule=MARTS,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    params={"date": Param(None, type=["null", "string"], format="date", title="业务日期")},
    tags=["redcloud", "serving"],
) as dag:

    @task(task_id="announce_snapshot", outlets=[SERVING])
    def announce(day: str, **context):
        context["outlet_events"][SERVING].extra = {"logical_date": day}
        return day

    stage_task("publish") >> announce(DAY)
