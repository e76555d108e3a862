"""The dbt marts DAG: ``dbt_project/`` rendered by Cosmos, one Airflow task per model and per test.

dbt runs from the pipeline virtualenv (``dbt_executable_path``) as a subprocess, so a failing model
or test is visible as its own red task and everything downstream of it in the dbt graph is not run.
Scheduled on gold and the model scores; announces the marts asset that the publish DAG waits for.
If ``dbt_project/dbt_project.yml`` is missing (a checkout without the dbt project), the DAG still
parses and runs the marts stage through the CLI instead (``redcloud run marts``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import (
    DAY,
    DBT_PROJECT,
    DBT_VOCAB,
    DEFAULT_ARGS,
    GOLD,
    MACROS,
    MARTS,
    MODEL_SCORES,
    PIPELINE_BIN,
    REPO,
    START,
    stage_task,
)
from airflow.sdk import DAG, Param, task


def _profile_name() -> str:
    m = re.search(r"^profile:\s*['\"]?([\w-]+)", (DBT_PROJECT / "dbt_project.yml").read_text(), re.M)
    return m.group(1) if m else "redcloud"


def _dbt_group(day: str):
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior

    dbt = str(PIPELINE_BIN / "dbt")
    run_dir = os.environ.get("REDCLOUD_PATHS__RUN_DIR", str(REPO / ".run"))
    jars_dir = Path(os.environ.get("REDCLOUD_PATHS__JARS_DIR", str(REPO / ".run" / "jars")))
    # what `python -m redcloud.marts env` sets for a stand-alone dbt (dbt_project/profiles.yml)
    env = {"REDCLOUD_HOME": str(REPO), "PYTHONUNBUFFERED": "1",
           "REDCLOUD_DBT_SPARK_JARS": ",".join(sorted(str(j) for j in jars_dir.glob("*.jar"))),
           "REDCLOUD_DBT_RUN_DIR": f"{run_dir}/dbt", "DBT_TARGET_PATH": f"{run_dir}/dbt/target",
           "DBT_LOG_PATH": f"{run_dir}/dbt/logs",
           "REDCLOUD_PATHS__LAKE_ROOT": os.environ.get("REDCLOUD_PATHS__LAKE_ROOT", str(REPO / ".run" / "lake")),
           "REDCLOUD_LOGICAL_DATE": day, "REDCLOUD_DBT_VOCAB": DBT_VOCAB}
    return DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(DBT_PROJECT, env_vars=env),
        profile_config=ProfileConfig(profile_name=_profile_name(),
                                     target_name=os.environ.get("REDCLOUD_DBT__TARGET", "session"),
                                     profiles_yml_filepath=DBT_PROJECT / "profiles.yml"),
        execution_config=ExecutionConfig(dbt_executable_path=dbt, invocation_mode=InvocationMode.SUBPROCESS),
        render_config=RenderConfig(load_method=LoadMode.DBT_LS,
                                   dbt_executable_path=dbt, invocation_mode=InvocationMode.SUBPROCESS,
                                   test_behavior=TestBehavior.AFTER_EACH),
        operator_args={"install_deps": False, "append_env": True},
        default_args={"retries": 0},
    )



# what the Airflow UI shows on the DAG page (users read Chinese); the module docstring is for developers
DOC_ZH = """### dbt 统计集市

由 Cosmos 渲染 `dbt_project/`：每个模型、每个测试各是一个任务，失败的模型或测试单独标红，其下游不再运行。在黄金层与模型评分更新后运行，完成后发出集市资产事件，供发布快照使用。

*English:* the dbt marts, one task per model and test (Cosmos); scheduled on gold and the model scores."""

with DAG(
    dag_id="dbt_marts",
    description="dbt 数据集市 (Cosmos: 每个模型/测试一个任务)",
    doc_md=DOC_ZH,
    schedule=GOLD & MODEL_SCORES,
    start_date=START,
    catchup=False,
    max_active_runs=1,
    max_active_tasks=1,  # dbt-spark's session method keeps a Derby metastore: one dbt process at a time
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    params={"date": Param(None, type=["null", "string"], format="date", title="业务日期")},
    tags=["redcloud", "dbt", "marts"],
) as dag:

    @task(task_id="announce_marts", outlets=[MARTS])
    def announce(day: str, **context):
        context["outlet_events"][MARTS].extra = {"logical_date": day}
        return day

    build = _dbt_group(DAY) if (DBT_PROJECT / "dbt_project.yml").exists() else stage_task("marts")
    build >> announce(DAY)
