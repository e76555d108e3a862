"""The models DAG: daily scoring of the N models, with a weekly retrain (champion/challenger).

Scheduled on gold. On Mondays (or with ``retrain=always``) the models are retrained and a challenger
replaces the champion only when it validates better (``models/``); on other days the champions
re-score the day. Either way the run is idempotent for its logical date.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import DAY, DEFAULT_ARGS, GOLD, MACROS, MODEL_SCORES, START, stage_task
from airflow.sdk import DAG, Param, task

RETRAIN = ("{% set d = logical_day(params, dag_run, triggering_asset_events) %}"
           "{{ 'always' if (params.retrain == 'always' or "
           "macros.datetime.strptime(d, '%Y-%m-%d').weekday() == 0) else params.retrain }}")

with DAG(
    dag_id="models",
    description="模型: 每日评分，每周一重训 (冠军/挑战者)",
    doc_md=__doc__,
    schedule=GOLD,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    params={
        "date": Param(None, type=["null", "string"], format="date", title="业务日期"),
        "retrain": Param("auto", enum=["auto", "always", "never"], title="重训策略",
                         description="auto: 无冠军模型时训练；always: 重训并比较冠军/挑战者；never: 只评分"),
    },
    tags=["redcloud", "models", "mlflow"],
) as dag:

    @task(task_id="announce_scores", outlets=[MODEL_SCORES])
    def announce(day: str, **context):
        context["outlet_events"][MODEL_SCORES].extra = {"logical_date": day}
        return day

    stage_task("models", extra_env={"REDCLOUD_MODELS__RETRAIN": RETRAIN}) >> announce(DAY)
