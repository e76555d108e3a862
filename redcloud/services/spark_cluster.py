"""A Spark standalone cluster on loopback: one master and N workers, started with pyspark's ``spark-class``.

pip's pyspark ships ``bin/spark-class`` but not ``sbin/start-master.sh``, so the daemons are started
directly (``org.apache.spark.deploy.master.Master`` / ``...deploy.worker.Worker``), each as its own
process with a PID file under ``<run_dir>/pids`` (``spark-master``, ``spark-worker-1``, ...) and a log
under ``<run_dir>/logs``. Everything binds 127.0.0.1 (``SPARK_LOCAL_IP``; web UIs included).

Point the pipeline at it with ``REDCLOUD_SPARK__MASTER=<master_url()>``: the session factory
(:mod:`redcloud.spark`) ships the Delta jars with ``spark.jars`` and the executors run the same
Python (``PYSPARK_PYTHON``) in the same time zone. This is what ``tests/test_cluster.py`` does, and
what ``infra/cluster/`` scales out to a real cluster.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

from redcloud.config import get_settings
from redcloud.services import procs
from redcloud.spark import TIMEZONE

HOST = "127.0.0.1"
MASTER = "spark-master"
DEFAULT_WORKERS = 2
DEFAULT_WORKER_CORES = 1
DEFAULT_WORKER_MEMORY = "1536m"


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def _spark_class() -> str:
    return str(_spark_home() / "bin" / "spark-class")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _state_file() -> Path:
    return Path(get_settings().paths.run_dir) / "spark_cluster.json"


def _state() -> dict | None:
    f = _state_file()
    if not f.exists():
        return None
    return json.loads(f.read_text())


def _env(work: Path) -> dict[str, str]:
    """Environment of the daemons (and so of the executors they launch)."""
    return {
        "SPARK_HOME": str(_spark_home()),
        "SPARK_LOCAL_IP": HOST,                       # bind loopback only, web UIs included
        "SPARK_WORKER_DIR": str(work / "work"),       # executor stdout/stderr, fetched files
        "SPARK_LOCAL_DIRS": str(work / "tmp"),        # shuffle and spill
        "SPARK_LOG_DIR": str(work / "logs"),
        "SPARK_NO_DAEMONIZE": "1",
        "PYSPARK_PYTHON": sys.executable,             # executors' Python = the pipeline venv's
        "TZ": TIMEZONE,
        "SPARK_DAEMON_MEMORY": "512m",
        "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",   # no fixed REST port 6066
    }


def worker_names(n: int) -> list[str]:
    return [f"spark-worker-{i + 1}" for i in range(n)]


def master_url() -> str | None:
    """``spark://127.0.0.1:<port>`` of the running cluster, or None when none is running."""
    st = _state()
    if not st or not procs.read_pid(MASTER):
        return None
    return st["master_url"]


def _registered_workers(ui_port: int) -> int:
    """Number of ALIVE workers, from the master's JSON status page."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{HOST}:{ui_port}/json/", timeout=2) as r:
            data = json.loads(r.read())
    except OSError:
        return 0
    return sum(1 for w in data.get("workers", []) if w.get("state") == "ALIVE")


def start(workers: int = DEFAULT_WORKERS, cores: int = DEFAULT_WORKER_CORES, memory: str = DEFAULT_WORKER_MEMORY,
          timeout: float = 90) -> str:
    """Start the master and ``workers`` workers (idempotent); returns one line: the master URL and UI."""
    url = master_url()
    if url:
        st = _state()
        return f"Spark standalone: already up at {url} (UI http://{HOST}:{st['ui_port']}, {len(st['workers'])} workers)"
    work = Path(get_settings().paths.run_dir) / "spark-cluster"
    for sub in ("work", "tmp", "logs"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    env = _env(work)
    port, ui_port = _free_port(), _free_port()
    cls = _spark_class()
    procs.start(MASTER, [cls, "org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(port),
                         "--webui-port", str(ui_port)], env=env, cwd=str(work))
    procs.wait_for_port(HOST, port, timeout, "Spark master", procs.log_dir() / f"{MASTER}.log")
    url = f"spark://{HOST}:{port}"
    names = worker_names(workers)
    for name in names:
        procs.start(name, [cls, "org.apache.spark.deploy.worker.Worker", "--host", HOST, "--port", str(_free_port()),
                           "--webui-port", str(_free_port()), "--cores", str(cores), "--memory", memory, url],
                    env=env, cwd=str(work))
    _state_file().write_text(json.dumps({"master_url": url, "ui_port": ui_port, "workers": names,
                                         "cores": cores, "memory": memory}))
    deadline = time.monotonic() + timeout
    while _registered_workers(ui_port) < workers:
        dead = [n for n in names if not procs.read_pid(n)]
        if dead or time.monotonic() > deadline:
            logs = "\n".join((procs.log_dir() / f"{n}.log").read_text(errors="replace")[-2000:]
                             for n in names if (procs.log_dir() / f"{n}.log").exists())
            stop()
            raise RuntimeError(f"Spark workers did not register with {url} (dead: {dead}):\n{logs}")
        time.sleep(0.5)
    return f"Spark standalone: {url} (UI http://{HOST}:{ui_port}; {workers} workers x {cores} core, {memory})"


def stop() -> bool:
    """Stop the workers and the master we started (by PID file). True if anything was running."""
    st = _state() or {}
    names = st.get("workers") or worker_names(DEFAULT_WORKERS)
    stopped = [procs.stop(n) for n in names]
    stopped.append(procs.stop(MASTER))
    _state_file().unlink(missing_ok=True)
    return any(stopped)


def status() -> str:
    url = master_url()
    if not url:
        return "Spark standalone: not running"
    st = _state()
    alive = _registered_workers(st["ui_port"])
    return f"Spark standalone: {url} (UI http://{HOST}:{st['ui_port']}; {alive} workers alive)"


def session_env(url: str | None = None, executor_memory: str = "1g") -> dict[str, str]:
    """Environment for a pipeline process that should run its stages on the cluster."""
    url = url or master_url()
    if not url:
        raise RuntimeError("no Spark standalone cluster is running: start it with redcloud.services.spark_cluster.start()")
    return {
        "REDCLOUD_SPARK__MASTER": url,
        "REDCLOUD_SPARK__EXTRA": json.dumps({"spark.executor.memory": executor_memory,
                                             "spark.executorEnv.TZ": TIMEZONE,
                                             "spark.executorEnv.PYSPARK_PYTHON": sys.executable}),
        "PYSPARK_PYTHON": sys.executable,
        "TZ": TIMEZONE,
    }


if __name__ == "__main__":  # python -m redcloud.services.spark_cluster start|stop|status
    action = sys.argv[1] if len(sys.argv) > 1 else "status"
    print({"start": start, "stop": stop, "status": status}[action]())
