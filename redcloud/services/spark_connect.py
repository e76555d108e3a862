"""The warm engine: a long-lived Spark Connect server on loopback, so a short job pays no JVM start.

The server is pyspark's own ``SparkConnectServer`` (``spark-submit --class ...``), started with the
same configuration as an in-process session (:func:`redcloud.spark.builder_conf`: Delta, time zone,
shuffle partitions, driver memory, ``[spark] master``, so it can front a cluster too). It binds
``127.0.0.1:[spark] connect_port``; PID file ``<run_dir>/pids/spark-connect-<port>.pid``,
log ``<run_dir>/logs/spark-connect-<port>.log``.

A process uses it when ``[spark] remote`` is set (``REDCLOUD_SPARK__REMOTE=sc://127.0.0.1:15002``):
:func:`redcloud.spark.get_spark` then returns a Spark Connect session instead of starting a JVM.
The micro-batch (Airflow's ``microbatch`` DAG and ``redcloud microbatch``) is the job it is
for: 15-minute batches of a few thousand rows, where a JVM start and a cold JIT cost more than the
batch (see ``benchmarks/microbatch.py``).

    python -m redcloud.services.spark_connect start|stop|status

At start the server is warmed up (:func:`warm_up`): every lake table's Delta snapshot read once and one
MERGE run, so the day's first micro-batch does not pay for a cold JVM.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from redcloud.config import Settings, get_settings
from redcloud.services import procs
from redcloud.spark import TIMEZONE, builder_conf

HOST = "127.0.0.1"
NAME = "spark-connect"   # PID file and log: <NAME>-<port>
MAIN_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
ROOT = Path(__file__).resolve().parents[2]


def url(s: Settings | None = None) -> str:
    """The Spark Connect URL of this project's server (whether it runs or not)."""
    return f"sc://{HOST}:{(s or get_settings()).spark.connect_port}"


def name(s: Settings | None = None) -> str:
    """The process's name (PID file, log): one server per port."""
    return f"{NAME}-{(s or get_settings()).spark.connect_port}"


def running(s: Settings | None = None) -> bool:
    return bool(procs.read_pid(name(s))) and procs.port_open(HOST, (s or get_settings()).spark.connect_port)


def argv(s: Settings | None = None) -> list[str]:
    """``spark-submit`` of the Connect server with the session configuration of an in-process run."""
    import pyspark

    s = s or get_settings()
    submit = Path(pyspark.__file__).resolve().parent / "bin" / "spark-submit"
    conf = builder_conf(s)
    conf.update({"spark.connect.grpc.binding.address": HOST,
                 "spark.connect.grpc.binding.port": str(s.spark.connect_port)})
    memory = conf.pop("spark.driver.memory")
    java_opts = conf.pop("spark.driver.extraJavaOptions")
    out = [str(submit), "--class", MAIN_CLASS, "--name", "redcloud Spark Connect", "--master", s.spark.master,
           "--driver-memory", memory, "--driver-java-options", java_opts]
    for k, v in conf.items():
        out += ["--conf", f"{k}={v}"]
    return out


def env(s: Settings | None = None) -> dict[str, str]:
    s = s or get_settings()
    run = Path(s.paths.run_dir)
    (run / "spark" / "tmp").mkdir(parents=True, exist_ok=True)
    return {
        "SPARK_LOCAL_IP": HOST,                             # bind loopback only
        "SPARK_LOCAL_DIRS": str(run / "spark" / "tmp"),
        "PYSPARK_PYTHON": sys.executable,                   # Python workers = the pipeline venv's
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p),
        "TZ": TIMEZONE,
    }


def warm_up(remote: str, lake_root: str, run_dir: str) -> str:
    """Make the server's first job not also its JVM's first: read one row of every Delta table of the
    lake (its snapshot then sits in the server's Delta log cache; a later job only reads the commits
    added since) and run one small MERGE (its code paths compiled). Returns one line. Run in a process
    of its own (:func:`start` does): run in a process that already had a classic session (the test
    suite's), it failed the micro-batch test; the cause was not pinned down."""
    import time

    from pyspark.sql import SparkSession

    from redcloud.lake import LAYERS, Lake

    t0 = time.perf_counter()
    lake = Lake(lake_root)
    spark = SparkSession.builder.remote(remote).create()
    try:
        n = 0
        for layer in LAYERS:
            for table in lake.tables(layer):
                lake.read(spark, layer, table).limit(1).collect()
                n += 1
        path = str(Path(run_dir) / "spark" / "warm_up")
        spark.range(2000).selectExpr("id", "id % 7 as v").write.format("delta").mode("overwrite").save(path)
        spark.range(1000, 3000).selectExpr("id", "id % 5 as v").createOrReplaceTempView("_warm_up")
        spark.sql(f"merge into delta.`{path}` t using _warm_up s on t.id = s.id "
                  "when matched then update set * when not matched then insert *")
        spark.read.format("delta").load(path).groupBy("v").count().collect()
    finally:
        spark.stop()
    return f"warmed up in {time.perf_counter() - t0:.1f} s ({n} lake tables read, one MERGE)"


def _warm_up_process(s: Settings, timeout: float = 1800) -> str:
    import subprocess

    cp = subprocess.run([sys.executable, "-m", "redcloud.services.spark_connect", "warm", url(s), s.paths.lake_root,
                         s.paths.run_dir], cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
    if cp.returncode:
        raise RuntimeError(f"Spark Connect warm-up failed:\n{cp.stderr[-3000:]}")
    return cp.stdout.strip().splitlines()[-1]


def start(s: Settings | None = None, timeout: float = 120, warm: bool = True) -> str:
    """Start the server (idempotent) and, with ``warm``, :func:`warm_up` it; returns one line: where it
    listens."""
    s = s or get_settings()
    if running(s):
        return f"Spark Connect: already up at {url(s)}"
    procs.start(name(s), argv(s), env=env(s), cwd=str(ROOT))
    try:
        procs.wait_for_port(HOST, s.spark.connect_port, timeout, "Spark Connect", procs.log_dir() / f"{name(s)}.log")
        warmed = f"; {_warm_up_process(s)}" if warm else ""
    except Exception:
        procs.stop(name(s))
        raise
    return f"Spark Connect: {url(s)} (master {s.spark.master}, driver memory {s.spark.driver_memory}{warmed}; " \
           f"use it with REDCLOUD_SPARK__REMOTE={url(s)})"


def stop(s: Settings | None = None) -> bool:
    return procs.stop(name(s))


def status(s: Settings | None = None) -> str:
    return f"Spark Connect {url(s)}: {'up' if running(s) else 'down'}"


if __name__ == "__main__":   # start | stop | status | warm <sc://...> <lake_root> <run_dir>
    action = sys.argv[1] if len(sys.argv) > 1 else "status"
    if action == "warm":
        print(warm_up(*sys.argv[2:5]))
    else:
        print({"start": start, "stop": stop, "status": status}[action]())
