"""Airflow 3 as four processes on loopback: api-server, scheduler, dag-processor and triggerer.

Metadata lives in the project's PostgreSQL (database ``[airflow] database``), the executor is the
LocalExecutor with a few slots, DAGs come from the repository's ``dags/`` folder, and the admin
logs in through the simple auth manager with ``[airflow] admin_password`` (generated at set-up into
``.run/secrets.env``). Every REDCLOUD_* setting that tasks need (lake, landing folder, sources,
SMTP, serving...) is passed down in the environment, so tasks hit the same lake as the CLI.

``python -m redcloud.services.airflow env`` prints the environment (for running the ``airflow``
command by hand: ``set -a; eval "$(...)"; .run/venv/airflow/bin/airflow dags list``).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import subprocess
import sys
from pathlib import Path

from redcloud.config import PROJECT_ROOT, get_settings
from redcloud.services import procs

PROCESSES = ("airflow-api", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def venv_bin() -> Path:
    return Path(os.environ.get("REDCLOUD_AIRFLOW_VENV", PROJECT_ROOT / ".run" / "venv" / "airflow")) / "bin"


def pipeline_bin() -> Path:
    return Path(sys.executable).parent


def _settings_env() -> dict[str, str]:
    """The REDCLOUD_* settings tasks must see: the resolved paths and every overridden value."""
    s = get_settings()
    env = {k: v for k, v in os.environ.items() if k.startswith("REDCLOUD_")}
    for name in type(s.paths).model_fields:
        env[f"REDCLOUD_PATHS__{name.upper()}"] = str(getattr(s.paths, name))
    env["REDCLOUD_SOURCES__WEB_BASE_URL"] = s.sources.web_base_url
    env["REDCLOUD_SMTP__HOST"], env["REDCLOUD_SMTP__PORT"] = s.smtp.host, str(s.smtp.port)
    env["REDCLOUD_SERVING__DUCKDB_DIR"] = s.serving.duckdb_dir
    env["REDCLOUD_MLFLOW__TRACKING_URI"] = s.mlflow.tracking_uri
    env["REDCLOUD_AIRFLOW__END_DATE"] = s.airflow.end_date
    env["REDCLOUD_HOME"] = str(PROJECT_ROOT)
    env["REDCLOUD_PIPELINE_BIN"] = str(pipeline_bin())
    return env


def _secret(home: Path, name: str) -> str:
    """A per-installation random key kept in AIRFLOW_HOME (api-server and workers must share it)."""
    f = home / f".{name}"
    if not f.exists():
        home.mkdir(parents=True, exist_ok=True)
        f.write_text(secrets.token_urlsafe(64))
        f.chmod(0o600)
    return f.read_text().strip()


def env() -> dict[str, str]:
    """The complete environment of every airflow process (and of ``airflow`` commands run by hand)."""
    s = get_settings()
    a = s.airflow
    home = Path(a.home)
    base = f"http://{a.host}:{a.port}"
    return {
        **_settings_env(),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(a.parallelism),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": str(a.parallelism),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # dbt_marts renders the dbt graph with `dbt ls` (Cosmos caches it afterwards): allow time for that
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "240",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": "utc",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{a.admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "simple_auth_manager_passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__CORE__FERNET_KEY": _fernet(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": s.postgres.url(a.database),
        "AIRFLOW__API__HOST": a.host,
        "AIRFLOW__API__PORT": str(a.port),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret(home, "jwt_secret"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": str(a.dag_refresh_seconds),
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": str(a.dag_refresh_seconds),
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__WEBSERVER__EXPOSE_CONFIG": "False",
        "AIRFLOW__COSMOS__CACHE_DIR": str(home / "cosmos"),
        "PYTHONUNBUFFERED": "1",
    }


def _fernet(home: Path) -> str:
    f = home / ".fernet_key"
    if not f.exists():
        import base64

        home.mkdir(parents=True, exist_ok=True)
        f.write_text(base64.urlsafe_b64encode(os.urandom(32)).decode())
        f.chmod(0o600)
    return f.read_text().strip()


def _write_password() -> None:
    """The simple auth manager reads passwords from a JSON file: write ours (from the settings)."""
    a = get_settings().airflow
    if a.admin_password is None:
        raise RuntimeError("REDCLOUD_AIRFLOW__ADMIN_PASSWORD is not set: run `make setup` (writes .run/secrets.env)")
    f = Path(a.home) / "simple_auth_manager_passwords.json"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps({a.admin_user: a.admin_password.get_secret_value()}) + "\n")
    f.chmod(0o600)


def ensure_database() -> None:
    """Create the metadata database on the project's PostgreSQL if it is missing."""
    from redcloud.services import postgres

    name = get_settings().airflow.database
    postgres.ensure_running()
    conn = postgres.connect("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'create database "{name}"')
    finally:
        conn.close()


def airflow(*args: str, check: bool = True, timeout: float = 600, extra_env: dict | None = None,
            capture: bool = True) -> subprocess.CompletedProcess:
    """Run the ``airflow`` command of the Airflow virtualenv with the project's environment."""
    return subprocess.run([str(venv_bin() / "airflow"), *args], env={**os.environ, **env(), **(extra_env or {})},
                          cwd=str(PROJECT_ROOT), check=check, timeout=timeout, text=True,
                          capture_output=capture)


def migrate() -> None:
    ensure_database()
    r = airflow("db", "migrate", check=False, timeout=900)
    if r.returncode:
        raise RuntimeError(f"airflow db migrate failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")


def run_dag(dag_id: str, day: str, conf: dict | None = None, timeout: float = 7200,
            echo=print) -> tuple[str, str]:
    """Run ``dag_id`` for the logical date ``day`` as production does: the services up (idempotent),
    the DAG unpaused, a run triggered through the REST API (an earlier run of that date is cleared and
    runs again), the scheduler and its executor running the tasks. Each task's command output is
    echoed as it is written. Returns the run's final state and id; the UI shows the run, each task's
    state, duration and log."""
    import time


    start()
    unpause([dag_id])
    outputs = Path(env()["AIRFLOW_HOME"]) / "stage_output" / dag_id
    t0, seen = time.time(), {}
    with rest_client() as c:
        at = f"{day}T00:00:00Z"
        old = c.get(f"/api/v2/dags/{dag_id}/dagRuns",
                    params={"logical_date_gte": at, "logical_date_lte": at}).json().get("dag_runs", [])
        if old:
            run_id = old[0]["dag_run_id"]
            c.post(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/clear", json={"dry_run": False}).raise_for_status()
        else:
            resp = c.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": at, "conf": conf or {}})
            resp.raise_for_status()
            run_id = resp.json()["dag_run_id"]
        state = "queued"
        while state not in ("success", "failed") and time.time() - t0 < timeout:
            time.sleep(2)
            _echo_new_lines(outputs, t0, seen, echo)
            state = c.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json().get("state", state)
        _echo_new_lines(outputs, t0, seen, echo)
    return state, run_id


def _echo_new_lines(outputs: Path, since: float, seen: dict, echo) -> None:
    """Lines added to the task output files written after ``since`` (offsets kept in ``seen``)."""
    if not outputs.is_dir():
        return
    for f in sorted(outputs.glob("*/*.log"), key=lambda f: f.stat().st_mtime):
        if f.stat().st_mtime < since:
            continue
        with open(f, "rb") as fh:
            fh.seek(seen.get(f, 0))
            chunk = fh.read()
        complete = chunk[:chunk.rfind(b"\n") + 1]   # whole lines only; the rest on the next look
        seen[f] = seen.get(f, 0) + len(complete)
        for line in complete.decode("utf-8", errors="replace").splitlines():
            echo(f"  {f.stem.split('.')[0]:<8} {line}")


def metadata(sql: str, *params) -> list[tuple]:
    """Rows from the metadata database (what the CLI's list commands read, without an Airflow process)."""
    from redcloud.services import postgres

    conn = postgres.connect(get_settings().airflow.database)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall()
    finally:
        conn.close()


def run_summary(dag_id: str, run_id: str) -> str:
    """One line per task of a recorded run: state and seconds, in the order they started."""
    rows = metadata("""select task_id, coalesce(state, 'none'), extract(epoch from end_date - start_date)
                       from task_instance where dag_id = %s and run_id = %s and map_index = -1
                       order by start_date nulls last, task_id""", dag_id, run_id)
    return "\n".join(f"  {t:<20} {st:<8} {'' if sec is None else f'{float(sec):.0f}s'}" for t, st, sec in rows)


def start(extra_env: dict | None = None, migrate_db: bool = True) -> str:
    """Migrate the metadata DB (unless the caller just did), then start the api-server, scheduler,
    dag-processor and triggerer (idempotent)."""
    a = get_settings().airflow
    if all(procs.read_pid(p) for p in PROCESSES):
        return status()
    _write_password()
    if migrate_db:
        migrate()
    e = {**env(), **(extra_env or {})}
    ab = str(venv_bin() / "airflow")
    procs.start("airflow-api", [ab, "api-server", "--host", a.host, "--port", str(a.port), "--workers", "1"],
                env=e, cwd=str(PROJECT_ROOT))
    procs.start("airflow-scheduler", [ab, "scheduler", "--skip-serve-logs"], env=e, cwd=str(PROJECT_ROOT))
    procs.start("airflow-dag-processor", [ab, "dag-processor"], env=e, cwd=str(PROJECT_ROOT))
    # no DAG defers a task today; the triggerer runs so deferrable operators work and the UI's health is green
    procs.start("airflow-triggerer", [ab, "triggerer", "--skip-serve-logs"], env=e, cwd=str(PROJECT_ROOT))
    procs.wait_for_port(a.host, a.port, 180, "airflow api-server", procs.log_dir() / "airflow-api.log")
    unpaused = unpause(a.unpause) if a.unpause else ""
    return (f"Airflow: http://{a.host}:{a.port} (login {a.admin_user} / REDCLOUD_AIRFLOW__ADMIN_PASSWORD in "
            f".run/secrets.env; metadata db {a.database}; DAGs {PROJECT_ROOT / 'dags'}){unpaused}")


def rest_client():
    """An httpx client on the api-server's REST API, logged in as the admin (a JWT from /auth/token)."""
    import httpx

    a = get_settings().airflow
    base = f"http://{a.host}:{a.port}"
    r = httpx.post(f"{base}/auth/token", json={"username": a.admin_user,
                                               "password": a.admin_password.get_secret_value()}, timeout=30)
    r.raise_for_status()
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {r.json()['access_token']}"}, timeout=60)


def unpause(dag_ids: list[str], timeout: float = 240) -> str:
    """Unpause ``dag_ids`` through the REST API (as the UI's toggle does), once the dag-processor has
    registered each; returns a short note for the start line."""
    import time


    done, deadline = [], time.monotonic() + timeout
    with rest_client() as c:
        for dag_id in dag_ids:
            while c.get(f"/api/v2/dags/{dag_id}").status_code == 404 and time.monotonic() < deadline:
                time.sleep(2)
            if c.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code == 200:
                done.append(dag_id)
    missing = [d for d in dag_ids if d not in done]
    return (f"; unpaused {', '.join(done) or 'none'}"
            + (f" (not registered within {timeout:.0f}s, still paused: {', '.join(missing)})" if missing else ""))


def stop() -> bool:
    stopped = [procs.stop(p, timeout=30) for p in reversed(PROCESSES)]
    return any(stopped)


def status() -> str:
    a = get_settings().airflow
    pids = {p: procs.read_pid(p) for p in PROCESSES}
    up = procs.port_open(a.host, a.port)
    parts = ", ".join(f"{p.removeprefix('airflow-')} {'pid ' + str(pid) if pid else 'down'}" for p, pid in pids.items())
    return f"airflow http://{a.host}:{a.port}: {'up' if up else 'down'} ({parts})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd = argv[0] if argv else "status"
    if cmd == "env":
        for k, v in sorted(env().items()):
            print(f"export {k}={shlex.quote(v)}")
    elif cmd == "start":
        print(start())
    elif cmd == "stop":
        print("stopped" if stop() else "not running")
    else:
        print(status())
    return 0


if __name__ == "__main__":
    sys.exit(main())
