"""Shared fixtures: one SparkSession per test session, a private lake, a small city in real PostgreSQL.

The lake, landing folder and synthetic city used by tests live in a fresh folder under
``.run/test/`` so tests never touch the demo's lake. Source systems are real PostgreSQL databases
(``rc_test_org``/``rc_test_cadre``/``rc_test_app``) on the project's own cluster, which
``make test`` starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
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


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(RUN, ignore_errors=True)
