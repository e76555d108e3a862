"""The organisation-database connector against a real MariaDB server (the MySQL path).

Both extraction methods (SQLAlchemy and partitioned Spark JDBC) must return exactly what the
PostgreSQL path returns for the same city.
"""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from redcloud.demo import sources
from redcloud.services import mariadb
from redcloud.sources import orgdb
from spark_jobs import bronze as B

pytestmark = pytest.mark.slow
PORT = 33069


@pytest.fixture(scope="module")
def maria(settings, city):
    from pathlib import Path

    template = mariadb.ensure_running(Path(settings.paths.run_dir) / "mariadb", PORT, "redcloud",
                                      secrets.token_urlsafe(12), ["rc_org", "rc_cadre"])
    urls = {s: template.format(db=f"rc_{s}") for s in ("org", "cadre")}
    checksum = __import__("json").loads((city / "manifest.json").read_text())["checksum"]
    for system, url in urls.items():
        sources.load_system(url, system, city, checksum, force=True)
    yield urls
    mariadb.stop(PORT)


def _content(df):
    return sorted(repr(tuple(r)) for r in df.collect())


@pytest.mark.parametrize("system,table,lo", [
    ("org", "members", dt.datetime(2024, 6, 30, 12, 0)),   # an incremental window
    ("org", "organizations", None),                         # a full initial load
    ("cadre", "cadre_posts", None),
])
def test_mariadb_extract_matches_postgresql_on_both_paths(spark, source_dbs, maria, system, table, lo):
    hi = dt.datetime(2025, 12, 31)
    pg, n_pg, _ = orgdb.extract(spark, source_dbs[system], table, lo, hi, jdbc_threshold=10**9)
    small, n_small, m_small = orgdb.extract(spark, maria[system], table, lo, hi, jdbc_threshold=10**9)
    big, n_big, m_big = orgdb.extract(spark, maria[system], table, lo, hi, jdbc_threshold=0)
    assert (m_small, m_big) == ("sqlalchemy", "spark-jdbc")
    assert n_pg == n_small == n_big > 0
    assert pg.schema == small.schema == big.schema
    expected = _content(pg)
    assert _content(small) == expected
    assert _content(big) == expected


def test_mariadb_rows_get_the_same_row_hash_as_postgresql(spark, source_dbs, maria):
    hi = dt.datetime(2026, 1, 1)
    day = dt.date(2025, 12, 31)
    now = dt.datetime(2026, 1, 1, 1, 0)
    a, _, _ = orgdb.extract(spark, source_dbs["org"], "members", None, hi, jdbc_threshold=0)
    b, _, _ = orgdb.extract(spark, maria["org"], "members", None, hi, jdbc_threshold=0)
    ha = {r._row_hash for r in B.with_load_metadata(a, "org.members", day, now).select("_row_hash").collect()}
    hb = {r._row_hash for r in B.with_load_metadata(b, "org.members", day, now).select("_row_hash").collect()}
    assert ha == hb and len(ha) > 1000


@pytest.mark.parametrize("system,table", [("org", "members"), ("cadre", "cadre_assessments")])
def test_source_keys_are_the_same_on_both_paths_and_both_databases(spark, source_dbs, maria, system, table):
    """Delete detection reads every source key: SQLAlchemy for small tables, Spark JDBC key ranges for big ones."""
    pk = orgdb.PRIMARY_KEYS[table]
    sets = [sorted(r[0] for r in orgdb.source_keys(spark, url, table, jdbc_threshold=t).collect())
            for url in (source_dbs[system], maria[system]) for t in (10**9, 0)]
    assert sets[0] and all(s == sets[0] for s in sets)
    assert orgdb.source_keys(spark, maria[system], table, jdbc_threshold=0).schema.names == [pk]
