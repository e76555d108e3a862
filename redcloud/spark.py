"""The Spark session factory: local by default, any master URL by configuration, Delta configured."""

from __future__ import annotations

import contextlib
import glob
import os
import sys
import time
from pathlib import Path

from redcloud.config import Settings, get_settings

TIMEZONE = "Asia/Shanghai"
_session = None


def jars(settings: Settings) -> list[str]:
    found = sorted(glob.glob(os.path.join(settings.paths.jars_dir, "*.jar")))
    if not any("delta-spark" in j for j in found):
        raise RuntimeError(f"Delta jars missing in {settings.paths.jars_dir}: run `make jars` (Maven, infra/maven/pom.xml)")
    return found


def builder_conf(settings: Settings) -> dict[str, str]:
    run = Path(settings.paths.run_dir)
    log4j = Path(__file__).resolve().parents[1] / "infra" / "spark" / "log4j2.properties"
    jvm = (f"-Duser.timezone={TIMEZONE} -Dderby.system.home={run / 'spark'} -Dfile.encoding=UTF-8"
           f" -Dlog4j2.configurationFile=file:{log4j}")
    conf = {
        "spark.jars": ",".join(jars(settings)),
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.session.timeZone": TIMEZONE,
        "spark.sql.shuffle.partitions": str(settings.spark.shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.warehouse.dir": str(run / "spark" / "warehouse"),
        "spark.driver.memory": settings.spark.driver_memory,
        "spark.driver.extraJavaOptions": jvm,
        "spark.executor.extraJavaOptions": jvm,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # with the UI off nobody reads the status store, yet by default it keeps 1000 jobs, stages and SQL
        # executions and 100k tasks in the driver's heap: a long-lived session (Airflow worker, the test
        # suite) would carry thousands of small Delta jobs' plans and metrics
        "spark.ui.retainedJobs": "50", "spark.ui.retainedStages": "50", "spark.ui.retainedTasks": "2000",
        "spark.sql.ui.retainedExecutions": "20", "spark.ui.dagGraph.retainedRootRDDs": "50",
        "spark.databricks.delta.snapshotPartitions": "2",
        "spark.databricks.delta.properties.defaults.enableChangeDataFeed": "false",
        # the .crc file beside each commit only lets Delta verify a snapshot's state; skipping it saves a
        # job per commit (about 0.4 s of a small write here) and readers (delta-rs too) do not need it
        "spark.databricks.delta.writeChecksumFile.enabled": "false",
        "spark.sql.sources.default": "delta",
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
    }
    conf.update(settings.spark.extra)
    return conf


def from_arrow(spark, table):
    """A Spark DataFrame of an Arrow table, with its schema given: a Spark Connect session cannot infer
    one from an empty table (a classic session can; both get the same types)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    return spark.createDataFrame(table, schema=from_arrow_schema(table.schema, prefer_timestamp_ntz=False))


@contextlib.contextmanager
def _jvm_stderr_to(path: Path):
    """Start the JVM with its stderr in ``path``: its start-up notice ("Using incubator modules"), log4j
    warnings and known-harmless internal stack traces (e.g. the executor heartbeater's
    NullPointerException at shutdown) go to the log file, not the user's console. Errors still reach
    Python as exceptions with the Java message."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def jvm_log(settings: Settings) -> Path:
    return Path(settings.paths.run_dir) / "logs" / "spark-jvm.log"


def get_spark(settings: Settings | None = None):
    """The process's SparkSession (created once): a JVM of its own, or with ``[spark] remote`` a Spark
    Connect session on that server (:mod:`redcloud.services.spark_connect`)."""
    global _session
    if _session is not None:
        return _session
    from pyspark.sql import SparkSession

    settings = settings or get_settings()
    if settings.spark.remote:   # the warm engine (redcloud.services.spark_connect): no JVM of our own
        os.environ["TZ"] = TIMEZONE
        time.tzset()
        _session = SparkSession.builder.remote(settings.spark.remote).getOrCreate()
        return _session
    (Path(settings.paths.run_dir) / "spark" / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # bind loopback only
    # One wall clock for the JVM, the session and this Python process: timestamps collected from
    # Spark (e.g. a watermark) and timestamps sent back (JDBC literals, Arrow) then mean the same instant.
    os.environ["TZ"] = TIMEZONE
    time.tzset()
    os.environ.setdefault("SPARK_LOCAL_DIRS", str(Path(settings.paths.run_dir) / "spark" / "tmp"))
    b = SparkSession.builder.master(settings.spark.master).appName(settings.spark.app_name)
    for k, v in builder_conf(settings).items():
        b = b.config(k, v)
    with _jvm_stderr_to(jvm_log(settings)):
        _session = b.getOrCreate()
    try:  # classic sessions only; a Spark Connect session has no SparkContext
        _session.sparkContext.setLogLevel("ERROR")
    except Exception:  # noqa: BLE001
        pass
    return _session


def stop_spark() -> None:
    global _session
    if _session is not None:
        _session.stop()
        _session = None
