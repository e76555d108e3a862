"""Integration fixtures: the test city in real services, and ONE city lake built once per session.

``city_lake`` runs the real main job on the test city (1,500 members, seed 4242) with the real
services: PostgreSQL source databases, the 数据铁笼 landing folder, the web reference server over
HTTP, MLflow, dbt on Spark, the SMTP sink. The organisation databases are loaded into bronze and
silver for 2025-12-30, and then the whole main job runs for 2025-12-31, so bronze and silver are
incremental (watermarks, tombstones, merges into existing tables).
Tests that only read share it; a test that changes a lake works on a copy (:func:`copy_lake`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from helpers import D1, D2, make_ctx, settings_for
from lakes import TEST_SCALE, TEST_SEED, CityLake, WebServer, start_web_server, web_records


@pytest.fixture(scope="session")
def city(settings) -> Path:
    """The small test city (generated once, reused while the generator is unchanged)."""
    from redcloud.demo.synth import generate

    man = generate(TEST_SCALE, TEST_SEED, settings.paths.synth_dir, start=settings.synth.start,
                   end=settings.synth.end)
    return Path(man["path"])


@pytest.fixture(scope="session")
def source_dbs(city, settings) -> dict[str, str]:
    """The test city loaded into real PostgreSQL databases; returns system -> SQLAlchemy URL."""
    from redcloud.demo import sources
    from redcloud.services import postgres

    conn = postgres.connect("postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select datname from pg_database")
        have = {r[0] for r in cur.fetchall()}
        for system in ("org", "cadre", "app"):
            if f"rc_test_{system}" not in have:
                cur.execute(f"create database rc_test_{system}")
    conn.close()
    urls = {system: settings.source_url(system) for system in ("org", "cadre", "app")}
    sources.load_city(urls, city, force=True)  # pristine sources every session (tests may change rows)
    return urls


@pytest.fixture(scope="session")
def web_server(city, tmp_path_factory) -> WebServer:
    """The city's web data (with the planted duplicate and the leaked 身份证号) over real HTTP."""
    d = tmp_path_factory.mktemp("web")
    for ds, records in web_records(city).items():
        (d / f"{ds}.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    srv = start_web_server(d, d / "server.log", "--fault-rate", "0", "--slow-rate", "0")
    yield srv
    srv.proc.terminate()
    srv.proc.wait(10)


@pytest.fixture(scope="session")
def smtp_sink(settings) -> Path:
    """The project's SMTP sink service on the test port for the whole session; its mail folder."""
    from redcloud.services import procs, smtp

    started = not procs.read_pid("smtp")
    smtp.start()
    yield smtp.mail_dir()
    if started:
        smtp.stop()


@pytest.fixture(scope="session")
def city_lake(spark, settings, city, source_dbs, web_server, smtp_sink) -> CityLake:
    """The real main job on the test city, once: bronze+silver for D1, then every stage for D2."""
    from redcloud import pipeline
    from redcloud.demo import landing

    base = Path(settings.paths.run_dir) / "city"
    s = settings_for(base, settings, sources={"web_base_url": web_server.url},
                     models={"truth_dir": str(city / "truth")})
    landing.drop_exports(city, Path(s.paths.landing_dir))
    t0 = time.perf_counter()
    ctx1 = make_ctx(s, D1, spark, "test__d1")
    from redcloud.stages import silver

    bronze_d1 = pipeline.run_stage(ctx1, "bronze_orgdb")
    # the previous day's organisation-database silver, so D2's silver merges into existing tables; the
    # rest of silver (external sources, history, identity) is rebuilt whole by every run, so D2 does it
    t1 = time.perf_counter()
    silver_d1 = {**silver.run_entities(ctx1), "seconds": round(time.perf_counter() - t1, 1)}
    summary = pipeline.run_main(make_ctx(s, D2, spark, "test__d2"))
    took = {"bronze_orgdb@D1": bronze_d1["seconds"], "silver_entities@D1": silver_d1["seconds"],
            **{f"{k}@D2": v["seconds"] for k, v in summary.items()}}
    print(f"\ncity lake built in {time.perf_counter() - t0:.0f} s ({took}): {base}")
    return CityLake(base, s, summary, silver_d1, bronze_d1, city)
