"""Shared pieces of the redcloud Airflow DAGs: assets, the stage task factory, the failure callback.

Nothing here imports the ``redcloud`` package: DAG files are parsed by the Airflow virtualenv, and
all pipeline work runs in the pipeline virtualenv through its ``redcloud`` command (or
``python -m redcloud.<module>``). Two standard-library-only modules of the package are loaded by
path: the stage registry (``redcloud/stages/registry.py``: which stages exist, in which order) and
the vocabulary (``redcloud/rules/vocab.py``, which the dbt DAG hands to dbt). No network, database
or heavy import happens at parse time.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import Asset, CronDataIntervalTimetable

log = logging.getLogger("redcloud.dags")

REPO = Path(__file__).resolve().parents[1]
PIPELINE_BIN = Path(os.environ.get("REDCLOUD_PIPELINE_BIN", str(REPO / ".run" / "venv" / "pipeline" / "bin")))
REDCLOUD = PIPELINE_BIN / "redcloud"
PIPELINE_PY = PIPELINE_BIN / "python"
DBT_PROJECT = REPO / "dbt_project"


def _load(name: str, relpath: str):
    """A standard-library-only module of the redcloud package, loaded by path (no package import)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / relpath)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


REGISTRY = _load("redcloud_stage_registry", "redcloud/stages/registry.py")
VOCAB = _load("redcloud_vocab", "redcloud/rules/vocab.py")
DBT_VOCAB = json.dumps(VOCAB.dbt_vocab(), ensure_ascii=False)

# Exit code of `redcloud run` when a quality gate fails (redcloud/cli.py); such a failure is final.
GATE_FAILED = 3
# Exit code that marks a task skipped (BashOperator's skip_on_exit_code).
SKIP = 99

# Scheduling: UTC midnight, so the data interval [D, D+1) has logical date D == the business day.
START = pendulum.datetime(2025, 1, 1, tz="UTC")
# Daily with data intervals: the run for business day D has logical date D and starts after D ends
# (a plain "@daily" in Airflow 3 is a trigger timetable whose logical date is the start time).
DAILY = CronDataIntervalTimetable("@daily", timezone="UTC")


def end_date():
    """Optional last logical date (``REDCLOUD_AIRFLOW__END_DATE``, set by the service from settings).

    The synthetic city ends on a fixed day; with an end date, unpausing a DAG never schedules runs for
    days that have no data, while backfills inside the range still work."""
    v = os.environ.get("REDCLOUD_AIRFLOW__END_DATE", "").strip()
    return pendulum.datetime(*map(int, v.split("-")), tz="UTC") if v else None


# One asset per lake area a DAG produces; consumers schedule on them.
BRONZE_ORGDB = Asset("redcloud://lake/bronze/orgdb", group="bronze")
BRONZE_IRONCAGE = Asset("redcloud://lake/bronze/ironcage", group="bronze")
BRONZE_WEB = Asset("redcloud://lake/bronze/web", group="bronze")
GOLD = Asset("redcloud://lake/gold", group="gold")
MARTS = Asset("redcloud://lake/marts", group="marts")
MODEL_SCORES = Asset("redcloud://lake/gold/scores", group="models")
SERVING = Asset("redcloud://serving/current", group="serving")
ALERTS = Asset("redcloud://lake/gold/alerts", group="alerts")
BRIEF = Asset("redcloud://briefs/weekly", group="brief")


def logical_day(params, dag_run, triggering_asset_events=None) -> str:
    """The business day a run works on, as YYYY-MM-DD.

    Order: the ``date`` param of a manual run; the run's logical date (scheduled runs, backfills,
    ``airflow dags test``); for asset-triggered runs (no logical date) the latest ``logical_date``
    carried in the triggering events' extra; else the day before the run was due."""
    if params and params.get("date"):
        return str(dt.date.fromisoformat(str(params["date"])))
    if dag_run is not None and getattr(dag_run, "logical_date", None):
        return dag_run.logical_date.in_timezone("UTC").date().isoformat() if hasattr(
            dag_run.logical_date, "in_timezone") else dag_run.logical_date.date().isoformat()
    days = []
    for events in (triggering_asset_events or {}).values():
        for ev in events:
            d = (getattr(ev, "extra", None) or {}).get("logical_date")
            if d:
                days.append(str(d))
    if days:
        return max(days)
    after = getattr(dag_run, "run_after", None) or pendulum.now("UTC")
    return (after - dt.timedelta(days=1)).date().isoformat()


def output_path(dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
    """Where a stage task keeps a copy of the command's output (read by the failure callback)."""
    home = Path(os.environ.get("AIRFLOW_HOME", REPO / ".run" / "airflow"))
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)
    return str(home / "stage_output" / dag_id / safe / f"{task_id}.{try_number}.log")


MACROS = {"logical_day": logical_day, "output_path": output_path}

DAY = "{{ logical_day(params, dag_run, triggering_asset_events) }}"


def _command(argv: str, task_id: str, gated_by_param: str | None) -> str:
    """A bash script: run ``argv`` (a pipeline command), keep its output for the failure callback,
    and keep its exit code (3 = quality gate failed)."""
    guard_open = guard_close = ""
    if gated_by_param:
        guard_open = (f"{{% if params.{gated_by_param} is not defined or '{task_id}' in params.{gated_by_param} %}}\n")
        guard_close = (f"{{% else %}}\necho '本次运行未选择阶段 {task_id}，跳过 (stage not selected in params.{gated_by_param})'\n"
                       f"exit {SKIP}\n{{% endif %}}\n")
    return (
        "set -o pipefail\n"
        + guard_open
        + 'OUT="{{ output_path(ti.dag_id, run_id, ti.task_id, ti.try_number) }}"\n'
        + 'mkdir -p "$(dirname "$OUT")"\n'
        + f"{argv} 2>&1 | tee \"$OUT\"\n"
        + guard_close
    )


def stage_task(stage: str, *, task_id: str | None = None, retries: int = 0, extra_env: dict | None = None,
               gated_by_param: str | None = None, extra_args: str = "", **kw) -> BashOperator:
    """One pipeline stage for the run's logical day: ``redcloud run <stage> --date D --run-id R``.

    ``retries`` only where failures can be transient (ingestion); stages ending in a quality gate get
    none: exit code 3 fails the task at once, with the failing expectations in the log."""
    task_id = task_id or stage
    argv = f'"{REDCLOUD}" run {stage} --date {DAY} --run-id "{{{{ run_id }}}}"{extra_args}'
    return python_task(argv, task_id=task_id, retries=retries, extra_env=extra_env, gated_by_param=gated_by_param,
                       raw=True, **kw)


def python_task(code_or_argv: str, *, task_id: str, retries: int = 0, extra_env: dict | None = None,
                gated_by_param: str | None = None, raw: bool = False, **kw) -> BashOperator:
    """A task running pipeline-venv code: ``raw`` argv, or ``python -m``/``-c`` arguments."""
    argv = code_or_argv if raw else f'"{PIPELINE_PY}" {code_or_argv}'
    env = {"PYTHONUNBUFFERED": "1", "REDCLOUD_HOME": str(REPO), **(extra_env or {})}
    if retries:
        kw.setdefault("retry_delay", dt.timedelta(seconds=30))
        kw.setdefault("retry_exponential_backoff", 2.0)
        kw.setdefault("max_retry_delay", dt.timedelta(minutes=10))
    return BashOperator(task_id=task_id, bash_command=_command(argv, task_id, gated_by_param), env=env,
                        append_env=True, cwd=str(REPO), retries=retries, skip_on_exit_code=SKIP, **kw)


def _tail(path: str, n: int = 60) -> str:
    try:
        lines = Path(path).read_text(errors="replace").splitlines()
    except OSError:
        return ""
    # a failed quality gate prints its verdict on stderr: keep it whole when present
    for i, line in enumerate(lines):
        if "质量闸门未通过" in line:
            return "\n".join(lines[i:i + 200])
    return "\n".join(lines[-n:])


def set_task_note(dag_id: str, run_id: str, task_id: str, note: str) -> bool:
    """Put ``note`` on a task instance through Airflow's REST API (what the UI's note field uses).

    Authenticates as the admin of the simple auth manager (its passwords file is Airflow's own
    configuration). Returns False, after logging why, when there is no API server to talk to (e.g.
    under ``airflow dags test``): a missing note must never mask the task's failure."""
    import json
    from urllib.parse import quote

    import httpx

    base = os.environ.get("AIRFLOW__API__BASE_URL", "").rstrip("/")
    pw_file = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "")
    try:
        user, password = next(iter(json.loads(Path(pw_file).read_text()).items()))
        with httpx.Client(base_url=base, timeout=15) as c:
            r = c.post("/auth/token", json={"username": user, "password": password})
            r.raise_for_status()
            url = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances/{quote(task_id, safe='')}"
            r = c.patch(url, params={"update_mask": "note"}, json={"note": note[:1000]},
                        headers={"Authorization": f"Bearer {r.json()['access_token']}"})
            r.raise_for_status()
        return True
    except Exception as e:  # noqa: BLE001 (no API server, no credentials, HTTP error: log and go on)
        log.warning("task note not set on %s.%s (%s): %s", dag_id, task_id, run_id, e)
        return False


def gate_note(detail: str) -> str:
    """The task note for a failed quality gate: the verdict lines (table, expectation, rows)."""
    lines = [ln.strip() for ln in detail.splitlines() if ln.strip()]
    return "\n".join(lines)[:1000]


def notify_failure(context) -> None:
    """Task failure callback: log, then notify through ``python -m redcloud.notify`` (log + e-mail to
    the configured SMTP server; channel chosen by ``[airflow] notify``)."""
    ti = context.get("ti") or context.get("task_instance")
    dag_id, task_id = ti.dag_id, ti.task_id
    run_id = context.get("run_id") or getattr(ti, "run_id", "")
    try_number = getattr(ti, "try_number", 1)
    out = output_path(dag_id, run_id, task_id, try_number)
    detail = _tail(out)
    gate = "质量闸门未通过" in detail
    exc = context.get("exception")
    subject = f"[redcloud] {'质量闸门未通过' if gate else '任务失败'}: {dag_id}.{task_id} ({run_id})"
    body = "\n".join([
        f"DAG: {dag_id}", f"任务: {task_id}", f"运行: {run_id}", f"尝试次数: {try_number}",
        f"异常: {exc}", f"输出文件: {out}", "", "命令输出 (末尾):", detail or "(无输出)",
    ])
    log.error("redcloud task failed: %s\n%s", subject, body)
    if gate:  # the failing expectations, where a person looking at the task in the UI sees them first
        set_task_note(dag_id, run_id, task_id, gate_note(detail))
    try:
        r = subprocess.run([str(PIPELINE_PY), "-m", "redcloud.notify", "--subject", subject], input=body,
                           text=True, capture_output=True, timeout=60, cwd=str(REPO))
        if r.returncode:
            log.error("failure notification did not go out (exit %s): %s", r.returncode, r.stderr[-2000:])
        else:
            log.info("failure notification sent: %s", r.stdout.strip())
    except (OSError, subprocess.SubprocessError) as e:  # never let the callback mask the task's own failure
        log.error("failure notification could not run: %s", e)


DEFAULT_ARGS = {
    "owner": "redcloud",
    "retries": 0,
    "on_failure_callback": notify_failure,
}
