"""Ingestion DAGs, one per source kind; each lands its part of bronze for the logical date and
announces an asset that the lakehouse DAG is scheduled on.

- ``ingest_orgdb``: the three organisation databases (incremental by watermark, deletes as tombstones)
- ``ingest_ironcage``: the 数据铁笼 landing folder (each export file loaded once, by content hash)
- ``ingest_web``: the web reference server (penalties, enforcement lists, news)

Sources fail transiently (a database restart, an HTTP 503), so these tasks retry with exponential
backoff. Each bronze write replaces the logical date's partition: reruns are idempotent.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # dags/_common.py

from _common import (
    BRONZE_IRONCAGE,
    BRONZE_ORGDB,
    BRONZE_WEB,
    DAILY,
    DAY,
    DEFAULT_ARGS,
    MACROS,
    REGISTRY,
    START,
    end_date,
    stage_task,
)
from airflow.sdk import DAG, Param, task

# what the Airflow UI shows on each DAG page (users read Chinese); the module docstring is for developers
_RETRY_ZH = "数据源偶有暂时故障（数据库重启、HTTP 503），任务按指数退避自动重试；每次写入替换当天分区，重跑幂等。"
DOC_ZH = {
    "orgdb": "### 采集：组织数据库\n\n按水位线增量抽取组织、党员、干部与 APP 三个数据库，删除记为墓碑，落地 bronze 后发出资产事件。"
             + _RETRY_ZH + "\n\n*English:* bronze from the three organisation databases (incremental, deletes as tombstones).",
    "ironcage": "### 采集：数据铁笼导出文件\n\n读取落地目录中的数据铁笼导出文件（CSV、Excel、JSON Lines，各部门表头别名见契约），每个文件按内容哈希只加载一次。"
                + _RETRY_ZH + "\n\n*English:* bronze from the 数据铁笼 landing folder (each export file loaded once).",
    "web": "### 采集：网络参考数据\n\n从网络参考服务抓取行政处罚、失信被执行人名单与新闻（遵守 robots.txt，分页与 ETag）。"
           + _RETRY_ZH + "\n\n*English:* bronze from the web reference server (penalties, enforcement lists, news).",
}

# source kind -> the asset it lands (its stage, bronze_<kind>, is a part of bronze in the registry)
SOURCES = {"orgdb": BRONZE_ORGDB, "ironcage": BRONZE_IRONCAGE, "web": BRONZE_WEB}


def _ingest_dag(kind: str) -> DAG:
    asset, stage = SOURCES[kind], REGISTRY.get(f"bronze_{kind}")
    title = stage.title
    with DAG(
        dag_id=f"ingest_{kind}",
        description=f"bronze 采集: {title}",
        doc_md=DOC_ZH[kind],
        schedule=DAILY,
        start_date=START,
        end_date=end_date(),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        user_defined_macros=MACROS,
        params={"date": Param(None, type=["null", "string"], format="date", title="业务日期",
                              description="手动运行时的业务日期 (YYYY-MM-DD)；留空则用运行的逻辑日期")},
        tags=["redcloud", "bronze", "ingestion"],
    ) as dag:
        load = stage_task(stage.name, retries=stage.retries)

        @task(task_id="announce", outlets=[asset])
        def announce(day: str, **context):
            """Emit the asset event carrying the logical date (the lakehouse run works on that day)."""
            context["outlet_events"][asset].extra = {"logical_date": day, "source": kind}
            return day

        load >> announce(DAY)
    return dag


ingest_orgdb = _ingest_dag("orgdb")
ingest_ironcage = _ingest_dag("ironcage")
ingest_web = _ingest_dag("web")
