"""Airflow orchestrates the pipeline: the DAGs parse, the daily DAG runs the stages a run selects,
the auto-flow runs on working days only, a quality failure stops the chain loudly (the layer is put
back, nothing downstream runs, an e-mail goes out), and a REST backfill equals running the dates one
by one.

Everything runs on real components: the Airflow virtualenv (``.run/venv/airflow``), its metadata in
the project's PostgreSQL (database ``airflow_test``), the pipeline CLI called by the tasks, Spark +
Delta, an aiosmtpd sink for the failure e-mails, and, for the backfill and the failure, the
api-server, scheduler and dag-processor started by ``redcloud.services.airflow``. Each test works on
its own copy of the city lake. The stages run through Airflow are the light ones (alerts, publish,
brief) except the gold stage of the planted failure: the heavy stages' own tests cover them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from helpers import D2, free_port, make_ctx
from lakes import copy_lake

from redcloud.config import PROJECT_ROOT, get_settings
from redcloud.stages import registry

pytestmark = pytest.mark.slow

AIRFLOW_BIN = PROJECT_ROOT / ".run" / "venv" / "airflow" / "bin"
EXPECTED_DAGS = {"ingest_orgdb", "ingest_ironcage", "ingest_web", "lakehouse", "dbt_marts", "models", "publish",
                 "autoflow", "weekly_brief", "redcloud_daily", "microbatch"}
TEST_DB = "airflow_test"
PLAIN_ID = "520102199003078515"
LIGHT = ["alerts", "publish", "brief"]   # stages without Spark: cheap to run as Airflow tasks


def _drop_test_db() -> None:
    from redcloud.services import postgres

    postgres.ensure_running()
    conn = postgres.connect("postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'drop database if exists "{TEST_DB}" with (force)')
    finally:
        conn.close()


@pytest.fixture(scope="module")
def af():
    """The Airflow service module pointed at the test metadata database (migrated once)."""
    from redcloud.services import airflow as svc

    old_env = os.environ.get("REDCLOUD_AIRFLOW__DATABASE")
    live = get_settings()
    old_db = live.airflow.database
    os.environ["REDCLOUD_AIRFLOW__DATABASE"] = TEST_DB
    live.airflow.database = TEST_DB
    _drop_test_db()   # runs left queued by an interrupted session would otherwise run when the scheduler starts
    t = time.perf_counter()
    svc.migrate()
    print(f"airflow db migrate ({TEST_DB}): {time.perf_counter() - t:.0f}s")
    yield svc
    live.airflow.database = old_db
    if old_env is None:
        os.environ.pop("REDCLOUD_AIRFLOW__DATABASE", None)
    else:
        os.environ["REDCLOUD_AIRFLOW__DATABASE"] = old_env


@pytest.fixture(scope="module")
def failure_sink():
    """A real SMTP server on a free port that keeps every message it receives."""
    from aiosmtpd.controller import Controller

    class Sink:
        def __init__(self):
            self.messages: list[dict] = []

        async def handle_DATA(self, server, session, envelope):
            from email import message_from_bytes, policy

            msg = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append({"to": envelope.rcpt_tos, "subject": str(msg["Subject"]),
                                  "body": msg.get_body(("plain",)).get_content()})
            return "250 OK"

    handler = Sink()
    port = free_port()
    ctl = Controller(handler, hostname="127.0.0.1", port=port)
    ctl.start()
    handler.port = port
    yield handler
    ctl.stop()


def _task_env(settings, smtp_port: int, **extra) -> dict[str, str]:
    """What a task's pipeline command must see to work on ``settings``'s lake (a copy of the city's)."""
    return {"REDCLOUD_PATHS__RUN_DIR": settings.paths.run_dir, "REDCLOUD_PATHS__LAKE_ROOT": settings.paths.lake_root,
            "REDCLOUD_PATHS__LANDING_DIR": settings.paths.landing_dir,
            "REDCLOUD_SERVING__DUCKDB_DIR": settings.serving.duckdb_dir, "REDCLOUD_BRIEF__OUT_DIR": settings.brief.out_dir,
            "REDCLOUD_MLFLOW__TRACKING_URI": settings.mlflow.tracking_uri,
            "REDCLOUD_SMTP__HOST": "127.0.0.1", "REDCLOUD_SMTP__PORT": str(smtp_port),
            "REDCLOUD_AIRFLOW__DATABASE": TEST_DB, **extra}


def _dags_test(af, dag_id: str, day: dt.date, conf: dict, env: dict, timeout: float) -> subprocess.CompletedProcess:
    """``airflow dags test`` (the metadata database is the session's own: no earlier runs to delete)."""
    t = time.perf_counter()
    r = af.airflow("dags", "test", dag_id, day.isoformat(), "-c", json.dumps(conf), check=False,
                   extra_env=env, timeout=timeout)
    print(f"airflow dags test {dag_id} {day} {conf}: exit {r.returncode} in {time.perf_counter() - t:.0f}s")
    return r


def _metadata(sql: str, *params) -> list[tuple]:
    """Rows from the test run's Airflow metadata database (the af fixture points the settings at it)."""
    from redcloud.services import airflow

    assert get_settings().airflow.database == TEST_DB
    return airflow.metadata(sql, *params)


def _run_ids(dag_id: str) -> list[str]:
    """The DAG's runs, newest first."""
    return [r[0] for r in _metadata("select run_id from dag_run where dag_id = %s order by id desc", dag_id)]


def _task_states(dag_id: str) -> dict[str, str]:
    """The task states of the DAG's latest run."""
    runs = _run_ids(dag_id)
    assert runs, f"no run of {dag_id} recorded"
    return dict(_metadata("select task_id, coalesce(state, 'none') from task_instance "
                          "where dag_id = %s and run_id = %s and map_index = -1", dag_id, runs[0]))


def _delta(path: Path):
    from deltalake import DeltaTable

    return DeltaTable(str(path)).to_pandas()


# --------------------------------------------------------------------------------------------- parse

def test_dags_parse_without_import_errors_and_follow_the_rules(af):
    """Every DAG file imports in the Airflow virtualenv; the expected DAGs are there, and each one has
    the properties the issue asks for (tags, one run at a time, no catchup, failure callback, params,
    retries with backoff on ingestion only, no retries on quality-gated stages)."""
    script = r"""
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(sys.argv[1])
out = {"errors": {k: v[-800:] for k, v in bag.import_errors.items()}, "dags": {}}
for d in bag.dags.values():
    out["dags"][d.dag_id] = {
        "tags": sorted(d.tags), "max_active_runs": d.max_active_runs, "catchup": d.catchup,
        "params": sorted(d.params.keys()), "timetable": type(d.timetable).__name__,
        "schedule": getattr(d.timetable, "expression", ""),
        "tasks": {t.task_id: {"retries": t.retries, "backoff": t.retry_exponential_backoff,
                              "callback": bool(t.on_failure_callback), "type": type(t).__name__}
                  for t in d.tasks}}
print("JSON" + json.dumps(out))
"""
    t = time.perf_counter()
    r = subprocess.run([str(AIRFLOW_BIN / "python"), "-c", script, str(PROJECT_ROOT / "dags")],
                       env={**os.environ, **af.env()}, capture_output=True, text=True, timeout=900)
    print(f"DagBag parse: {time.perf_counter() - t:.0f}s")
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.split("JSON", 1)[1].strip().splitlines()[0])
    assert out["errors"] == {}, out["errors"]
    dags = out["dags"]
    assert EXPECTED_DAGS <= set(dags), EXPECTED_DAGS - set(dags)
    for dag_id, d in dags.items():
        assert d["tags"] and "redcloud" in d["tags"], dag_id
        assert d["max_active_runs"] == 1 and d["catchup"] is False, dag_id
        assert "date" in d["params"], dag_id
        for task_id, t in d["tasks"].items():
            assert t["callback"], f"{dag_id}.{task_id} has no failure callback"
    # transient sources retry with exponential backoff; quality-gated stages never retry
    for kind in ("orgdb", "ironcage", "web"):
        t = dags[f"ingest_{kind}"]["tasks"][f"bronze_{kind}"]
        assert t["retries"] >= 2 and t["backoff"] > 1, t
    daily = dags["redcloud_daily"]["tasks"]
    assert daily["bronze"]["retries"] >= 2 and daily["bronze"]["backoff"] > 1
    for gated in ("silver", "gold"):
        assert daily[gated]["retries"] == 0 and dags["lakehouse"]["tasks"][gated]["retries"] == 0
    assert [k for k in daily if k != "announce_snapshot"] == list(registry.NAMES)   # the registry's order
    # the models DAG: the life cycle as four tasks (mlops-stacks), then the announcement
    assert [k for k in dags["models"]["tasks"] if k != "announce_scores"] == list(registry.get("models").parts)
    assert dags["lakehouse"]["timetable"] == "AssetTriggeredTimetable"
    assert dags["redcloud_daily"]["timetable"] == "CronDataIntervalTimetable"
    # the brief every Monday; the auto-flow after each gold refresh (its first task skips non-working days)
    assert dags["weekly_brief"]["schedule"] == "0 0 * * 1", dags["weekly_brief"]
    assert dags["autoflow"]["timetable"] == "AssetTriggeredTimetable"
    assert {"is_workday", "alerts"} <= set(dags["autoflow"]["tasks"])
    # the 学习问答 micro-batch every 15 minutes in working hours (Beijing time)
    assert dags["microbatch"]["timetable"] == "CronTriggerTimetable"
    assert dags["microbatch"]["schedule"] == "*/15 8-17 * * *" and "at" in dags["microbatch"]["params"]
    # dbt through Cosmos: one task per dbt model when the dbt project is there
    marts = dags["dbt_marts"]["tasks"]
    if (PROJECT_ROOT / "dbt_project" / "dbt_project.yml").exists():
        dbt_tasks = [k for k in marts if k.startswith("dbt.")]
        assert any("mart_member_composition" in k for k in dbt_tasks), sorted(marts)
        assert len(dbt_tasks) >= 11
    else:
        assert "marts" in marts


def test_logical_day_of_scheduled_manual_and_asset_triggered_runs():
    """The day a run works on: the ``date`` param, else the logical date, else (asset-triggered runs
    have none) the latest ``logical_date`` carried by the triggering asset events."""
    script = r"""
import datetime as dt, sys, types
sys.path.insert(0, sys.argv[1])
from _common import logical_day
utc = dt.timezone.utc
sched = types.SimpleNamespace(logical_date=dt.datetime(2025, 12, 30, tzinfo=utc), run_after=None)
asset_run = types.SimpleNamespace(logical_date=None, run_after=dt.datetime(2026, 1, 3, 1, tzinfo=utc))
ev = lambda d: types.SimpleNamespace(extra={"logical_date": d})
print(logical_day({"date": "2025-12-01"}, sched, {}))
print(logical_day({"date": None}, sched, {}))
print(logical_day({}, asset_run, {"a": [ev("2025-12-29")], "b": [ev("2025-12-31"), ev("2025-12-30")]}))
print(logical_day({}, asset_run, {}))
"""
    r = subprocess.run([str(AIRFLOW_BIN / "python"), "-c", script, str(PROJECT_ROOT / "dags")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split() == ["2025-12-01", "2025-12-30", "2025-12-31", "2026-01-02"]


# ---------------------------------------------------------------------------------- the daily chain

@pytest.mark.timeout(1800)
def test_daily_dag_runs_the_selected_stages_and_skips_the_others(af, city_lake, failure_sink, tmp_path):
    """``airflow dags test redcloud_daily 2025-12-31`` with ``stages: alerts, publish, brief`` on a copy
    of the city lake: those three run as real tasks (the pipeline CLI in the pipeline virtualenv), every
    other stage is skipped without blocking the next, and the run's id is stamped on the snapshot."""
    import duckdb

    settings = copy_lake(city_lake, tmp_path, alerts={"deliver": False})
    env = _task_env(settings, failure_sink.port, REDCLOUD_ALERTS__DELIVER="false")
    r = _dags_test(af, "redcloud_daily", D2, {"stages": LIGHT}, env, timeout=1500)
    assert r.returncode == 0, (r.stdout + r.stderr)[-5000:]
    states = _task_states("redcloud_daily")
    for st in registry.NAMES:
        assert states[st] == ("success" if st in LIGHT else "skipped"), (st, states)
    assert states["announce_snapshot"] == "success"
    with duckdb.connect(str(Path(settings.serving.duckdb_dir) / "current.duckdb"), read_only=True) as con:
        run_id, day = con.execute("select run_id, logical_date from _snapshot").fetchone()
    airflow_runs = set(_run_ids("redcloud_daily"))
    assert day == D2 and run_id in airflow_runs, (run_id, airflow_runs)   # Airflow's run, not the city's
    week = Path(settings.brief.out_dir) / "2025-W52"
    assert (week / "brief-2025-W52.html").exists() and (week / "brief-2025-W52.pdf").exists()
    failures = [m["subject"] for m in failure_sink.messages if m["subject"].startswith("[redcloud] ")]
    assert failures == [], "a successful run sent failure notifications"


# ------------------------------------------------------------------------- auto-flow and weekly brief

@pytest.mark.timeout(3600)
def test_autoflow_runs_on_working_days_only_and_the_brief_on_mondays(af, city_lake, failure_sink, tmp_path):
    """The auto-flow DAG skips a Saturday (its first task checks the official calendar) and runs the
    alerts stage on a working day; the weekly brief DAG is scheduled on Mondays and, run for a
    Monday, writes the brief of the ISO week that just ended from the published snapshot."""
    import shutil

    import duckdb

    settings = copy_lake(city_lake, tmp_path)
    shutil.rmtree(Path(settings.paths.lake_root) / "gold" / "alerts")   # the city lake ran the alerts already
    shutil.rmtree(Path(settings.brief.out_dir))
    base = tmp_path
    env = _task_env(settings, failure_sink.port)
    saturday, workday = dt.date(2025, 12, 27), D2  # 2025-12-31 is a Wednesday
    assert saturday.weekday() == 5 and workday.weekday() == 2
    r = _dags_test(af, "autoflow", saturday, {}, env, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert _task_states("autoflow") == {"is_workday": "skipped", "alerts": "skipped", "announce_alerts": "skipped"}
    assert not (base / "lake" / "gold" / "alerts").exists()
    r = _dags_test(af, "autoflow", workday, {}, env, timeout=1200)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert set(_task_states("autoflow").values()) == {"success"}
    alerts = _delta(base / "lake" / "gold" / "alerts")
    assert len(alerts) > 0 and (alerts["rule"].astype(str).str.len() > 0).all()
    # the brief DAG: cron on Mondays; run for Monday 2025-12-29 from the snapshot the city's run published
    monday = dt.date(2025, 12, 29)
    r = _dags_test(af, "weekly_brief", monday, {}, env, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert set(_task_states("weekly_brief").values()) == {"success"}
    week_dir = Path(settings.brief.out_dir) / "2025-W52"
    assert (week_dir / "brief-2025-W52.html").exists() and (week_dir / "brief-2025-W52.pdf").exists(), \
        list(base.rglob("brief*"))
    con = duckdb.connect(str(Path(settings.serving.duckdb_dir) / "current.duckdb"), read_only=True)
    try:
        assert str(con.execute("select logical_date from _snapshot").fetchone()[0])[:10] == str(workday)
    finally:
        con.close()


# ----------------------------------------------------------------------------------------- backfill

VOLATILE = {"checked_at", "_loaded_at", "published_at", "etl_inserted", "run_id", "_run_id", "created_run_id"}


def _content(path: Path):
    df = _delta(path)
    df = df[[c for c in df.columns if c not in VOLATILE]]
    df = df.astype(str)
    return df.sort_values(list(df.columns)).reset_index(drop=True)


@pytest.fixture(scope="module")
def services(af, city_lake, failure_sink, tmp_path_factory):
    """api-server + scheduler + dag-processor on the test port, tasks pointed at a lake copy, DAGs
    scheduling nothing after the city's last day (so unpausing only lets the backfill run)."""
    base = tmp_path_factory.mktemp("airflow_services")
    settings = copy_lake(city_lake, base)
    env = _task_env(settings, failure_sink.port, REDCLOUD_AIRFLOW__END_DATE=str(D2),
                    REDCLOUD_AIRFLOW__DAG_REFRESH_SECONDS="10", REDCLOUD_ALERTS__DELIVER="false")
    os.environ["REDCLOUD_AIRFLOW__UNPAUSE"] = json.dumps(["redcloud_daily"])   # what [airflow] unpause says
    get_settings().airflow.unpause = ["redcloud_daily"]
    af.airflow("dags", "delete", "redcloud_daily", "-y", check=False, extra_env=env, timeout=300)
    t = time.perf_counter()
    line = af.start(extra_env=env, migrate_db=False)   # the af fixture migrated this database
    print(f"{line} (started in {time.perf_counter() - t:.0f}s)")
    s = get_settings().airflow
    yield {"base": base, "settings": settings, "url": f"http://{s.host}:{s.port}", "env": env}
    af.stop()
    os.environ.pop("REDCLOUD_AIRFLOW__UNPAUSE", None)
    get_settings().airflow.unpause = []


def _token(url: str) -> str:
    s = get_settings().airflow
    r = httpx.post(f"{url}/auth/token", json={"username": s.admin_user,
                                              "password": s.admin_password.get_secret_value()}, timeout=30)
    assert r.status_code in (200, 201), r.text
    return r.json()["access_token"]


def _wait_for_dag(client: httpx.Client, dag_id: str) -> None:
    """Wait for the dag-processor to register the DAG."""
    deadline = time.monotonic() + 600
    while True:
        r = client.get(f"/api/v2/dags/{dag_id}")
        if r.status_code == 200:
            return
        assert time.monotonic() < deadline, f"{dag_id} never appeared: {r.status_code} {r.text[:300]}"
        time.sleep(2)


@pytest.mark.timeout(1800)
def test_backfill_of_two_dates_through_the_rest_api_equals_running_them_one_by_one(af, services, city_lake,
                                                                                  spark, tmp_path):
    """``POST /api/v2/backfills`` (what the UI's Backfill dialog calls) for 2 logical dates completes,
    and the lake equals a lake where the same dates were run one by one. The backfill runs the alerts
    stage (``dag_run_conf: {"stages": ["alerts"]}``): per-date state in gold/alerts and the outbox."""
    from redcloud import pipeline

    url, settings = services["url"], services["settings"]
    lake = Path(settings.paths.lake_root)
    days = [D2 - dt.timedelta(days=1), D2]
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {_token(url)}"}, timeout=60)
    _wait_for_dag(client, "redcloud_daily")
    errors = client.get("/api/v2/importErrors").json()
    assert errors["total_entries"] == 0, errors
    health = client.get("/api/v2/monitor/health").json()   # the UI's health badges: all green
    assert {k: v["status"] for k, v in health.items()} == {k: "healthy" for k in health}, health
    assert {"scheduler", "triggerer", "dag_processor"} <= set(health), health
    # the start unpaused the DAGs [airflow] unpause names (everything else starts paused)
    _wait_for_dag(client, "weekly_brief")
    assert client.get("/api/v2/dags/redcloud_daily").json()["is_paused"] is False
    assert client.get("/api/v2/dags/weekly_brief").json()["is_paused"] is True
    body = {"dag_id": "redcloud_daily", "from_date": f"{days[0]}T00:00:00Z", "to_date": f"{days[-1]}T00:00:00Z",
            "dag_run_conf": {"stages": ["alerts"]}, "reprocess_behavior": "completed", "max_active_runs": 1}
    # the one-by-one lake starts from the same copy: take it before the backfill writes
    seq = copy_lake(city_lake, tmp_path, alerts={"deliver": False})
    r = client.post("/api/v2/backfills", json=body)
    assert r.status_code in (200, 201), r.text
    backfill = r.json()
    t = time.perf_counter()
    deadline = time.monotonic() + 1200
    while True:
        runs = client.get("/api/v2/dags/redcloud_daily/dagRuns", params={"run_type": "backfill"}).json()["dag_runs"]
        runs = [x for x in runs if x.get("backfill_id") in (None, backfill["id"])]
        if len(runs) == len(days) and all(x["state"] in ("success", "failed") for x in runs):
            break
        assert time.monotonic() < deadline, f"backfill did not finish: {runs}"
        time.sleep(2)
    print(f"backfill of {len(days)} dates (alerts only): {time.perf_counter() - t:.0f}s")
    assert sorted(x["logical_date"][:10] for x in runs) == [str(d) for d in days]
    assert all(x["state"] == "success" for x in runs), [(x["logical_date"], x["state"]) for x in runs]
    # the scheduler marks the backfill complete on a later loop than the last run's success
    deadline = time.monotonic() + 180
    while client.get(f"/api/v2/backfills/{backfill['id']}").json()["completed_at"] is None:
        assert time.monotonic() < deadline, "the backfill's runs finished but it was never marked complete"
        time.sleep(2)
    # the same dates one by one, in this process, on the other copy
    for d in days:
        pipeline.run_stage(make_ctx(seq, d, spark, f"sequential__{d}"), "alerts")
    seq_lake = Path(seq.paths.lake_root)
    for layer, name in (("gold", "alerts"), ("gold", "village_timeline"), ("ops", "alert_outbox")):
        a, b = _content(lake / layer / name), _content(seq_lake / layer / name)
        assert len(a) > 0 and a.equals(b), f"{layer}/{name} differs between the backfill and the one-by-one runs"
    outbox = _delta(lake / "ops" / "alert_outbox")
    assert {str(d) for d in days} <= set(outbox["created_for_date"].astype(str))


# ------------------------------------------------------------------------------ planted quality failure

def _wait_for_run(client: httpx.Client, dag_id: str, run_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        run = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}").json()
        if run.get("state") in ("success", "failed"):
            return run
        assert time.monotonic() < deadline, f"{dag_id} {run_id} did not finish: {run}"
        time.sleep(2)


@pytest.mark.timeout(1800)
def test_planted_quality_failure_fails_the_gate_task_and_nothing_downstream_publishes(af, services, spark,
                                                                                     failure_sink):
    """A plain 身份证号 planted in silver ``members.occupation`` reaches gold ``dim_member``. A run
    triggered through the REST API (scheduler + LocalExecutor; gold rebuilds only the two tables the
    ``gold_tables`` param names, the others stay as they are) fails the gold task at once (no
    retry), with the expectation and the row in its log, its task note and the failure e-mail; every
    gold table is back at its version from before the run; models, marts, alerts, publish and brief do
    not run and no new serving snapshot appears.

    Runs after the backfill test, on the same lake copy (the services' tasks are pointed at it)."""
    from redcloud.lake import Lake
    from redcloud.serving import snapshot

    url, settings = services["url"], services["settings"]
    lake = Lake(settings.paths.lake_root)
    members = lake.path("silver", "members")
    victim = spark.read.format("delta").load(members).where("not is_deleted").orderBy("member_id").first()["member_id"]
    spark.sql(f"update delta.`{members}` set occupation = '身份证{PLAIN_ID}' where member_id = {victim}")
    gold_before = {t: lake.version("gold", t) for t in lake.tables("gold")}
    snaps_before = [i.snapshot_id for i in snapshot.Snapshots(settings.serving).list()]
    n_mail = len(failure_sink.messages)
    client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {_token(url)}"}, timeout=60)
    _wait_for_dag(client, "redcloud_daily")
    # the start unpaused the DAGs [airflow] unpause names (everything else starts paused)
    _wait_for_dag(client, "weekly_brief")
    assert client.get("/api/v2/dags/redcloud_daily").json()["is_paused"] is False
    assert client.get("/api/v2/dags/weekly_brief").json()["is_paused"] is True
    downstream = ["models", "marts", "alerts", "publish", "brief"]
    r = client.post("/api/v2/dags/redcloud_daily/dagRuns",
                    json={"logical_date": None, "conf": {"date": str(D2), "stages": ["gold", *downstream],
                                                         "gold_tables": ["dim_organization", "dim_member"]}})
    assert r.status_code in (200, 201), r.text
    run_id = r.json()["dag_run_id"]
    run = _wait_for_run(client, "redcloud_daily", run_id, 1200)
    assert run["state"] == "failed", run
    tis = {t["task_id"]: t for t in client.get(
        f"/api/v2/dags/redcloud_daily/dagRuns/{quote(run_id, safe='')}/taskInstances").json()["task_instances"]}
    assert tis["gold"]["state"] == "failed" and tis["gold"]["try_number"] == 1, tis["gold"]  # no retry
    for st in downstream + ["announce_snapshot"]:
        assert tis[st]["state"] == "upstream_failed", (st, tis[st]["state"])
    # write-audit-publish: the gold layer holds what it held before the run (restored, content-wise)
    for t, v in gold_before.items():
        now = lake.version("gold", t)
        assert now == v or spark.sql(f"describe history delta.`{lake.path('gold', t)}` limit 1").first()[
            "operation"] == "RESTORE", t
    dm = lake.read(spark, "gold", "dim_member")
    assert dm.where(f"occupation like '%{PLAIN_ID}%'").count() == 0   # the bad row never stayed in gold
    assert [i.snapshot_id for i in snapshot.Snapshots(settings.serving).list()] == snaps_before
    # the gate's verdict names the table, the expectation, the column and the row: in the task's output ...
    out = Path(af.env()["AIRFLOW_HOME"]) / "stage_output" / "redcloud_daily"
    out_files = list((out / re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)).glob("gold.1.log"))
    assert out_files, sorted(str(f) for f in out.rglob("*.log"))
    text = out_files[0].read_text()
    assert "质量闸门未通过" in text and "dim_member" in text and "occupation" in text, text[-3000:]
    assert "no_plain_pii" in text and f"member_id={victim}" in text, text[-3000:]
    assert "已恢复到运行前的版本" in text, text[-3000:]
    assert not list(out_files[0].parent.glob("gold.2.log"))
    # ... in the task note shown in the UI (set by the failure callback) ...
    deadline, note = time.monotonic() + 120, None
    while not note and time.monotonic() < deadline:
        note = client.get(f"/api/v2/dags/redcloud_daily/dagRuns/{quote(run_id, safe='')}/taskInstances/gold").json()["note"]
        time.sleep(0 if note else 3)
    assert note and "质量闸门未通过" in note and "no_plain_pii" in note and f"member_id={victim}" in note, note
    # ... and in the one failure e-mail
    deadline = time.monotonic() + 60
    while not failure_sink.messages[n_mail:] and time.monotonic() < deadline:
        time.sleep(2)
    mails = [m for m in failure_sink.messages[n_mail:] if m["subject"].startswith("[redcloud] ")]
    assert len(mails) == 1, [m["subject"] for m in failure_sink.messages[n_mail:]]
    assert "质量闸门未通过" in mails[0]["subject"] and "redcloud_daily.gold" in mails[0]["subject"]
    assert "dim_member" in mails[0]["body"] and "occupation" in mails[0]["body"]
    assert get_settings().airflow.notify_to in mails[0]["to"]
