"""Shared by every test: a private run folder, the session's settings, one SparkSession, helpers.

Everything a test run writes lives in a fresh folder under ``.run/test/`` (the demo's lake, databases
and ports are never touched): the environment below points the configuration there before anything
reads it. Code under test gets its settings through a :class:`redcloud.context.RunContext`; a test
that wants another lake or other rules builds one with :func:`make_ctx` (never by mutating globals).

``tests/unit`` needs no service (Spark in local mode at most); ``tests/integration`` uses the real
ones (PostgreSQL, the web reference server, SMTP, MLflow, Airflow, Superset, Chromium) and one shared
lake built once per session (``tests/integration/conftest.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_base = ROOT / ".run" / "test"
_base.mkdir(parents=True, exist_ok=True)
RUN = Path(tempfile.mkdtemp(prefix="session-", dir=_base))
os.environ["REDCLOUD_PATHS__RUN_DIR"] = str(RUN)
os.environ["REDCLOUD_PATHS__LAKE_ROOT"] = str(RUN / "lake")
os.environ["REDCLOUD_PATHS__LANDING_DIR"] = str(RUN / "landing")
os.environ["REDCLOUD_PATHS__SYNTH_DIR"] = str(_base / "synth")  # cities are deterministic: reuse across sessions
os.environ["REDCLOUD_SPARK__SHUFFLE_PARTITIONS"] = "1"
os.environ["REDCLOUD_SPARK__DRIVER_MEMORY"] = "4g"   # the configured default (one JVM, 24 GiB machine)
# The test city's tables are tiny: compiling generated Java for every query (whole-stage codegen) costs
# far more than it saves there. Interpreted evaluation gives the same results and builds the shared city
# lake in about three quarters of the time (measured: 361 s vs 488 s). The demo and benchmarks keep
# Spark's defaults.
os.environ["REDCLOUD_SPARK__EXTRA"] = json.dumps({
    "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    **json.loads(os.environ.get("REDCLOUD_SPARK__EXTRA") or "{}")})
for system in ("org", "cadre", "app"):
    os.environ[f"REDCLOUD_SOURCES__{system.upper()}_URL"] = (
        "postgresql+psycopg2://{user}:{password}@{host}:{port}/rc_test_" + system)
os.environ["REDCLOUD_MLFLOW__TRACKING_URI"] = f"sqlite:///{RUN}/mlflow/mlflow.db"
os.environ["REDCLOUD_MLFLOW__ARTIFACT_ROOT"] = str(RUN / "mlflow" / "artifacts")
os.environ["REDCLOUD_SERVING__DUCKDB_DIR"] = str(RUN / "serving")
os.environ["REDCLOUD_BRIEF__OUT_DIR"] = str(RUN / "briefs")
os.environ["REDCLOUD_AIRFLOW__HOME"] = str(RUN / "airflow")
os.environ["REDCLOUD_SUPERSET__HOME"] = str(RUN / "superset")
for section, port in (("API", 28000), ("AIRFLOW", 28081), ("SUPERSET", 28088), ("SMTP", 28025), ("WEB", 28080)):
    os.environ[f"REDCLOUD_{section}__PORT"] = str(port)

from redcloud.config import Settings, get_settings, reset_settings  # noqa: E402

reset_settings()

from helpers import D2, make_ctx, settings_for  # noqa: E402


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
def spark(settings):
    """One SparkSession for the whole test session (local mode, 2 shuffle partitions, UI off)."""
    from redcloud.spark import get_spark, stop_spark

    session = get_spark(settings)
    yield session
    stop_spark()


@pytest.fixture(scope="module", autouse=True)
def _spark_memory_between_modules(request):
    """After each test module: drop what it left cached in the shared SparkSession (a test that fails
    between ``persist`` and ``unpersist`` would otherwise hold its blocks for the rest of the session)
    and log the driver's live heap, so a leak shows as a rising line in ``.run/test/spark-memory.log``."""
    yield
    import redcloud.spark as rs

    if rs._session is None:
        return
    sc = rs._session.sparkContext
    cached = sc._jsc.getPersistentRDDs().size()
    rs._session.catalog.clearCache()
    # Delta keeps every table's snapshot state cached (a persisted RDD per snapshot, in the half of
    # storage memory that execution cannot evict): hundreds of test lakes' snapshots would crowd out
    # the memory a broadcast join needs (seen once: "Not enough memory to build and broadcast the table")
    sc._jvm.org.apache.spark.sql.delta.DeltaLog.clearCache()
    for rdd in list(sc._jsc.getPersistentRDDs().values()):
        rdd.unpersist(False)
    rt = sc._jvm.java.lang.Runtime.getRuntime()
    sc._jvm.java.lang.System.gc()
    used_mb = (rt.totalMemory() - rt.freeMemory()) // 2**20
    with open(_base / "spark-memory.log", "a") as log:
        log.write(f"{RUN.name} {request.module.__name__} cached_rdds={cached} heap_used_mb={used_mb} "
                  f"heap_max_mb={rt.maxMemory() // 2**20}\n")


@pytest.fixture()
def tmp_ctx(tmp_path, settings, spark):
    """A context on an empty lake of its own, for the logical date D2."""
    return make_ctx(settings_for(tmp_path, settings), D2, spark)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("REDCLOUD_TEST_KEEP"):   # keep the session's lake and snapshots to look at
        print(f"\nREDCLOUD_TEST_KEEP: session files kept in {RUN}")
        return
    shutil.rmtree(RUN, ignore_errors=True)
