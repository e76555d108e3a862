"""The models DAG: the N models' life cycle as four tasks, train → validate → promote → score.

Scheduled on gold. On Mondays (or with ``retrain=always``) each model is retrained into a
``@candidate``; validation makes it ``@challenger`` only when it beats the champion; promotion moves
``@champion`` to it (mlops-stacks: the alias moves, nothing is copied); scoring re-scores the day
with the champions. On other days train finds nothing to do and the champions re-score the day.
Every task is idempotent for its logical date.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import DAY, DEFAULT_ARGS, GOLD, MACROS, MODEL_SCORES, REGISTRY, START, stage_task
from airflow.sdk import DAG, Param, chain, task

RETRAIN = ("{% set d = logical_day(params, dag_run, triggering_asset_events) %}"
           "{{ 'always' if (params.retrain == 'always' or "
           "macros.datetime.strptime(d, '%Y-%m-%d').weekday() == 0) else params.retrain }}")


# what the Airflow UI shows on the DAG page (users read Chinese); the module docstring is for developers
DOC_ZH = """### 模型：训练 → 验证 → 晋升 → 评分

在黄金层更新后运行。每周一（或参数 `retrain=always`）各模型重训为候选版本；只有优于当前冠军及最简单基线时才成为挑战者并晋升为冠军（别名移动），模型卡片写入 MLflow 版本说明；其他日子由冠军模型对当天评分。每个任务对逻辑日期幂等。

*English:* the N models' life cycle (train, validate against the champion, promote by alias, batch-score)."""

with DAG(
    dag_id="models",
    description="模型: 每日评分，每周一重训 (冠军/挑战者)",
    doc_md=DOC_ZH,
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

    steps = [stage_task(p, extra_env={"REDCLOUD_MODELS__RETRAIN": RETRAIN}) for p in REGISTRY.get("models").parts]
    chain(*steps, announce(DAY))
