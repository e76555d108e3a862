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

# source kind -> the asset it lands (its stage, bronze_<kind>, is a part of bronze in the registry)
SOURCES = {"orgdb": BRONZE_ORGDB, "ironcage": BRONZE_IRONCAGE, "web": BRONZE_WEB}


def _ingest_dag(kind: str) -> DAG:
    asset, stage = SOURCES[kind], REGISTRY.get(f"bronze_{kind}")
    title = stage.title
    with DAG(
        dag_id=f"ingest_{kind}",
        description=f"bronze 采集: {title}",
        doc_md=__doc__,
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
