"""The main job as one DAG: every pipeline stage for one logical date, in order.

bronze → silver → gold → models → marts → alerts → publish → brief (the order of
``redcloud/stages/registry.py``), each task ``redcloud run <stage> --date <logical date> --run-id
<Airflow run id>`` in the pipeline virtualenv. This is the DAG to
backfill (UI: 触发 → Backfill, or ``POST /api/v2/backfills``): runs are one at a time
(``max_active_runs=1``, stages share tables) and every stage is idempotent per logical date.

Params (manual runs and backfill ``dag_run_conf``): ``date`` overrides the logical date; ``stages``
picks a subset (the others are skipped, and a skipped stage does not block the next one);
``gold_tables`` rebuilds (and gates) only those gold tables, e.g. one fact after a fix. Bronze
retries with exponential backoff (sources fail transiently); the other stages do not retry: silver
and gold end in quality gates, and a failed gate (exit 3) fails its task at once, with the failing
expectations and rows in the log and the notification, and every later stage is not run.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import DAILY, DAY, DEFAULT_ARGS, MACROS, REGISTRY, SERVING, START, end_date, stage_task
from airflow.sdk import DAG, Param, chain, task

STAGES = list(REGISTRY.NAMES)   # declared once, in redcloud/stages/registry.py
GOLD_TABLES_ARG = "{% if params.gold_tables %} --gold-tables {{ params.gold_tables | join(',') }}{% endif %}"


# what the Airflow UI shows on the DAG page (users read Chinese); the module docstring is for developers
DOC_ZH = """### 主作业：按逻辑日期运行全部阶段（可回填）

bronze → silver → gold → models → marts → alerts → publish → brief，依次运行。回填请用本 DAG（界面“触发 → Backfill”或 `POST /api/v2/backfills`）：同一时间只运行一次，各阶段对逻辑日期幂等。参数：`date` 覆盖逻辑日期；`stages` 只运行所选阶段；`gold_tables` 只重建并校验所列黄金层表。质量闸门失败时该任务立即失败，后续阶段不运行。

*English:* the main job, every stage for one logical date in order; the DAG to backfill."""

with DAG(
    dag_id="redcloud_daily",
    description="主作业: 全部阶段，按逻辑日期 (可回填)",
    doc_md=DOC_ZH,
    schedule=DAILY,
    start_date=START,
    end_date=end_date(),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    params={
        "date": Param(None, type=["null", "string"], format="date", title="业务日期",
                      description="手动运行时的业务日期 (YYYY-MM-DD)；留空则用运行的逻辑日期"),
        "stages": Param(STAGES, type="array", items={"type": "string", "enum": STAGES}, title="运行的阶段",
                        description="要运行的阶段 (默认全部)；未选中的阶段被跳过"),
        "gold_tables": Param([], type="array", items={"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                             title="只重建的黄金层表",
                             description="留空则重建全部黄金层表；填写表名 (如 fct_project_status) 则只重建并校验这些表"),
    },
    tags=["redcloud", "main"],
) as dag:
    tasks = [stage_task(st, retries=REGISTRY.get(st).retries, gated_by_param="stages", trigger_rule="none_failed",
                        extra_args=GOLD_TABLES_ARG if st == "gold" else "") for st in STAGES]

    @task(task_id="announce_snapshot", outlets=[SERVING], trigger_rule="none_failed")
    def announce(day: str, **context):
        context["outlet_events"][SERVING].extra = {"logical_date": day}
        return day

    chain(*tasks, announce(DAY))
