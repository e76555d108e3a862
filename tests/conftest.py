"""Shared fixtures: one SparkSession per test session, a private lake, a small city in real PostgreSQL.

The lake, landing folder and synthetic city used by tests live in a fresh folder under
``.run/test/`` so tests never touch the demo's lake. Source systems are real PostgreSQL databases
(``rc_test_org``/``rc_test_cadre``/``rc_test_app``) on the project's own cluster, which
``make test`` starts.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEST_SCALE = 1500
TEST_SEED = 4242

_base = ROOT / ".run" / "test"
_base.mkdir(parents=True, exist_ok=True)
RUN = Path(tempfile.mkdtemp(prefix="session-", dir=_base))
os.environ["REDCLOUD_PATHS__RUN_DIR"] = str(RUN)
os.environ["REDCLOUD_PATHS__LAKE_ROOT"] = str(RUN / "lake")
os.environ["REDCLOUD_PATHS__LANDING_DIR"] = str(RUN / "landing")
os.environ["REDCLOUD_PATHS__SYNTH_DIR"] = str(_base / "synth")  # cities are deterministic: reuse across sessions
os.environ["REDCLOUD_SPARK__SHUFFLE_PARTITIONS"] = "2"
os.environ["REDCLOUD_SPARK__DRIVER_MEMORY"] = "3g"
for system in ("org", "cadre", "app"):
    os.environ[f"REDCLOUD_SOURCES__{system.upper()}_URL"] = (
        "postgresql+psycopg2://{user}:{password}@{host}:{port}/rc_test_" + system)
# Everything else a test run writes stays in the session folder, and test servers use their own
# ports, so a running demo (`make up`) and the tests never meet.
os.environ["REDCLOUD_MLFLOW__TRACKING_URI"] = f"sqlite:///{RUN}/mlflow/mlflow.db"
os.environ["REDCLOUD_MLFLOW__ARTIFACT_ROOT"] = str(RUN / "mlflow" / "artifacts")
os.environ["REDCLOUD_SERVING__DUCKDB_DIR"] = str(RUN / "serving")
os.environ["REDCLOUD_BRIEF__OUT_DIR"] = str(RUN / "briefs")
os.environ["REDCLOUD_AIRFLOW__HOME"] = str(RUN / "airflow")
os.environ["REDCLOUD_SUPERSET__HOME"] = str(RUN / "superset")
for section, port in (("API", 28000), ("AIRFLOW", 28081), ("SUPERSET", 28088), ("SMTP", 28025), ("WEB", 28080)):
    os.environ[f"REDCLOUD_{section}__PORT"] = str(port)

from redcloud.config import get_settings, reset_settings  # noqa: E402

reset_settings()


@pytest.fixture(scope="session")
def settings():
    """The session's settings. Modules that point the lake elsewhere for a while reset the live
    settings (``redcloud.config.reset_settings``) and restore them; code under test always reads
    ``get_settings()``, so a helper that changes paths must change the live object, not this one."""
    return get_settings()


@pytest.fixture(scope="session")
def spark():
    from redcloud.spark import get_spark, stop_spark

    session = get_spark(get_settings())
    yield session
    stop_spark()


@pytest.fixture(scope="session")
def city() -> Path:
    """The small test city (generated once, reused while the generator is unchanged)."""
    from redcloud.synth import generate

    settings = get_settings()
    man = generate(TEST_SCALE, TEST_SEED, settings.paths.synth_dir, start=settings.synth.start, end=settings.synth.end)
    return Path(man["path"])


@pytest.fixture(scope="session")
def source_dbs(city) -> dict[str, str]:
    """The test city loaded into real PostgreSQL databases; returns system -> SQLAlchemy URL."""
    from redcloud.services import postgres
    from redcloud.sources import orgdb

    conn = postgres.connect("postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select datname from pg_database")
        have = {r[0] for r in cur.fetchall()}
        for system in ("org", "cadre", "app"):
            if f"rc_test_{system}" not in have:
                cur.execute(f"create database rc_test_{system}")
    conn.close()
    urls = {system: get_settings().source_url(system) for system in ("org", "cadre", "app")}
    orgdb.load_city(urls, city, force=True)  # pristine sources every session (tests may delete rows)
    return urls


@contextlib.contextmanager
def lake_at(path: Path, landing: Path | None = None):
    """Point the live settings (what redcloud reads) at another lake for the block.

    Code under test always reads ``get_settings()``; other modules may reset the settings, so this
    changes the live object and restores it afterwards."""
    live = get_settings()
    old = live.paths.lake_root, live.paths.landing_dir
    live.paths.lake_root = str(path)
    if landing is not None:
        live.paths.landing_dir = str(landing)
    try:
        yield live
    finally:
        live.paths.lake_root, live.paths.landing_dir = old


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class MainLake:
    """A lake built by the real main job (bronze -> silver -> gold) for the test city's last day."""
    root: Path          # lake root
    landing: Path
    day: dt.date
    run_id: str
    summary: dict

    def use(self):
        """Context manager: the live settings point at this lake while the block runs."""
        return lake_at(self.root, self.landing)


@pytest.fixture(scope="session")
def main_lake(spark, city, source_dbs) -> MainLake:
    """The main job through gold on the test city, in its own lake (``<session>/main/lake``).

    Downstream tests (dbt marts, models, serving, alerts, brief, Airflow) start from this lake; it
    is built once per session with the real stages: PostgreSQL sources, the 数据铁笼 landing folder
    and the web reference server (its own process on a free port, serving the test city)."""
    from redcloud import pipeline
    from redcloud.sources import ironcage_landing

    base = RUN / "main"
    root, landing = base / "lake", base / "landing"
    ironcage_landing.drop_exports(city, landing)
    port = _free_port()
    log = open(base / "web.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "redcloud.sources.web_server", "--data-dir", str(city / "web"),
                             "--port", str(port), "--seed", str(TEST_SEED), "--fault-rate", "0", "--slow-rate", "0"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    live = get_settings()
    old_web = live.sources.web_base_url
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sk:
                if sk.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"test web server did not start: {(base / 'web.log').read_text(errors='replace')}")
            time.sleep(0.1)
        live.sources.web_base_url = f"http://127.0.0.1:{port}"
        day = dt.date.fromisoformat(live.synth.end)
        run_id = f"test__{day.isoformat()}"
        with lake_at(root, landing):
            summary = {st: pipeline.run_stage(st, day, run_id) for st in ("bronze", "silver", "gold")}
    finally:
        get_settings().sources.web_base_url = old_web
        proc.terminate()
        proc.wait(10)
        log.close()
    return MainLake(root, landing, day, run_id, summary)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(RUN, ignore_errors=True)
