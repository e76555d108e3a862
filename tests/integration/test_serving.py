"""Publish stage and serving snapshots: the contract, retention, roll back, PostgreSQL target, and
that a swap during reads never gives a reader a mix of two snapshots."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable

from redcloud.config import get_settings
from redcloud.serving import publish, snapshot


@pytest.fixture(scope="module")
def published(spark, main_lake):
    with main_lake.use():
        res = publish.run(spark, main_lake.day, main_lake.run_id)
        yield res


def test_publish_follows_the_snapshot_contract(published, main_lake):
    d = Path(get_settings().serving.duckdb_dir)
    link = d / "current.duckdb"
    assert snapshot.current_path() == link
    assert link.is_symlink()
    sid = published["snapshot_id"]
    assert os.readlink(link) == f"snapshots/{sid}.duckdb"
    assert (d / "snapshots" / f"{sid}.duckdb").is_file()
    assert not list((d / "snapshots").glob("*.tmp"))

    gold = sorted(p.name for p in (main_lake.root / "gold").iterdir() if (p / "_delta_log").is_dir())
    assert {"dim_organization", "dim_member", "fct_member_month", "fct_branch_quarter"} <= set(gold)
    with snapshot.connect() as con:
        stamp = snapshot.read_stamp(con)
        assert stamp["snapshot_id"] == sid and stamp["run_id"] == main_lake.run_id
        assert stamp["logical_date"] == main_lake.day and stamp["published_at"] is not None
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'main'").fetchall()}
        assert set(gold) | {"_snapshot", "_snapshot_sources"} <= tables
        sources = {r[0]: r[1:] for r in con.execute(
            "select table_name, layer, delta_version, rows from _snapshot_sources").fetchall()}
        assert set(gold) <= set(sources)
        for name in gold:
            dt_ = DeltaTable(str(main_lake.root / "gold" / name))
            layer, version, rows = sources[name]
            assert (layer, version) == ("gold", dt_.version()), name
            assert rows == dt_.to_pyarrow_table().num_rows == con.execute(f'select count(*) from "{name}"').fetchone()[0]
        # tz-aware timestamps and list columns survive
        assert con.execute("select max(len(path)) from dim_organization").fetchone()[0] >= 3
    assert {t["table"] for t in published["tables"]} >= set(gold)
    assert all(t["rows"] >= 0 for t in published["tables"])


def test_retention_keeps_n_and_pin_rolls_back(published, main_lake, spark):
    live = get_settings().serving
    old_keep, old_pin = live.keep_snapshots, live.pin
    live.keep_snapshots = 2
    try:
        with main_lake.use():
            ids = [publish.run(None, main_lake.day, f"retention-{i}")["snapshot_id"] for i in range(3)]
        have = [i.snapshot_id for i in snapshot.list_snapshots()]
        assert have == ids[-2:], have
        assert snapshot.current_id() == ids[-1]

        live.pin = ids[-2]  # roll back by configuration
        assert snapshot.current_id() == ids[-2]
        with snapshot.connect() as con:
            assert snapshot.read_stamp(con)["run_id"] == "retention-1"
        with main_lake.use():
            res = publish.run(None, main_lake.day, "while-pinned")
        assert res["pinned"] == ids[-2]
        assert os.readlink(snapshot.current_path()) == f"snapshots/{ids[-2]}.duckdb"  # every reader rolled back
        assert ids[-2] in [i.snapshot_id for i in snapshot.list_snapshots()]  # pinned survives retention

        live.pin = "20000101_000000_000000"
        with pytest.raises(snapshot.SnapshotNotFound):
            snapshot.connect()
    finally:
        live.keep_snapshots, live.pin = old_keep, old_pin
    with main_lake.use():
        publish.run(None, main_lake.day, main_lake.run_id)  # leave a fresh, unpinned current for later tests
    assert snapshot.current_id() == snapshot.list_snapshots()[-1].snapshot_id


def _marked_snapshot(main_lake, run_id: str) -> str:
    """A published snapshot whose every organisation name is its own snapshot id (a marker per file)."""
    with main_lake.use():
        sid = publish.run(None, main_lake.day, run_id)["snapshot_id"]
    with duckdb.connect(str(snapshot.snapshot_path(sid))) as con:
        con.execute("update dim_organization set org_name = ?", [sid])
    return sid


def test_swap_during_reads_never_mixes_versions(published, main_lake):
    live = get_settings().serving
    old_keep = live.keep_snapshots
    live.keep_snapshots = 10
    try:
        a = _marked_snapshot(main_lake, "swap-a")
        b = _marked_snapshot(main_lake, "swap-b")
    finally:
        live.keep_snapshots = old_keep
    stop = threading.Event()
    seen: dict[str, int] = {}
    bad: list = []
    swaps = [0]

    def reader():
        while not stop.is_set():
            with snapshot.connect() as con:
                sid = con.execute("select snapshot_id from _snapshot").fetchone()[0]
                names = {r[0] for r in con.execute("select distinct org_name from dim_organization").fetchall()}
                n_src = con.execute("select rows from _snapshot_sources where table_name = 'dim_organization'"
                                    ).fetchone()[0]
                n = con.execute("select count(*) from dim_organization").fetchone()[0]
            if names != {sid} or n != n_src:
                bad.append((sid, names, n, n_src))
            seen[sid] = seen.get(sid, 0) + 1

    def swapper():
        while not stop.is_set():
            for sid in (a, b):
                snapshot.swap_current(sid)
                swaps[0] += 1
                time.sleep(0.002)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=swapper)]
    for t in threads:
        t.start()
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join(30)
    assert not bad, bad[:3]
    assert swaps[0] > 100
    assert seen.get(a, 0) > 5 and seen.get(b, 0) > 5, seen
    with main_lake.use():
        publish.run(None, main_lake.day, main_lake.run_id)  # unmarked current for later tests


def test_postgres_target(main_lake):
    from redcloud.services import postgres

    live = get_settings().serving
    old = live.target, live.postgres_database, live.keep_snapshots
    live.target, live.postgres_database, live.keep_snapshots = "postgres", "serving_pytest", 1
    try:
        with main_lake.use():
            r1 = publish.run(None, main_lake.day, "pg-1")
            r2 = publish.run(None, main_lake.day, "pg-2")
        conn = postgres.connect("serving_pytest")
        with conn.cursor() as cur:
            cur.execute("select snapshot_id, run_id from serving._snapshot")
            assert cur.fetchall() == [(r2["snapshot_id"], "pg-2")]
            cur.execute("select schema_name from information_schema.schemata where schema_name like 'serving%' "
                        "order by 1")
            assert [x[0] for x in cur.fetchall()] == ["serving", f"serving_{r2['snapshot_id']}"]  # keep 1
            n = {t["table"]: t["rows"] for t in r2["tables"]}
            cur.execute("select count(*) from serving.dim_member")
            assert cur.fetchone()[0] == n["dim_member"] > 0
            cur.execute("select max(cardinality(path)) from serving.dim_organization")
            assert cur.fetchone()[0] >= 3
            cur.execute("select table_name, delta_version from serving._snapshot_sources where table_name = 'dim_member'")
            assert cur.fetchone()[1] == DeltaTable(str(main_lake.root / "gold" / "dim_member")).version()
        conn.close()
        assert r1["snapshot_id"] != r2["snapshot_id"]
    finally:
        live.target, live.postgres_database, live.keep_snapshots = old
        c = postgres.connect("postgres")
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("drop database if exists serving_pytest with (force)")
        c.close()
