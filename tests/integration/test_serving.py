"""Publish stage and serving snapshots: the contract (on the city lake's snapshot), retention, roll
back, the PostgreSQL target, and that a swap during reads never gives a reader a mix of two snapshots
(those on a copy)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import duckdb
import pytest
from deltalake import DeltaTable
from helpers import D2, make_ctx
from lakes import copy_lake

from redcloud.serving import publish, snapshot


@pytest.fixture(scope="module")
def published(city_lake):
    return city_lake.summary["publish"]


def test_publish_follows_the_snapshot_contract(published, city_lake):
    snaps = snapshot.Snapshots(city_lake.settings.serving)
    d = snaps.dir
    link = d / "current.duckdb"
    assert snaps.current_path == link and link.is_symlink()
    sid = published["snapshot_id"]
    assert os.readlink(link) == f"snapshots/{sid}.duckdb"
    assert (d / "snapshots" / f"{sid}.duckdb").is_file()
    assert not list((d / "snapshots").glob("*.tmp"))

    lake = city_lake.ctx().lake
    gold = lake.tables("gold")
    assert {"dim_organization", "dim_member", "fct_member_month", "fct_branch_quarter",
            "fct_project_lifecycle"} <= set(gold)
    with snaps.connect() as con:
        stamp = snapshot.read_stamp(con)
        assert stamp["snapshot_id"] == sid and stamp["run_id"] == "test__d2"
        assert stamp["logical_date"] == D2 and stamp["published_at"] is not None
        tables = {r[0] for r in con.execute("select table_name from information_schema.tables "
                                            "where table_schema = 'main'").fetchall()}
        assert set(gold) | set(lake.tables("marts")) | {"_snapshot", "_snapshot_sources"} <= tables
        sources = {r[0]: r[1:] for r in con.execute(
            "select table_name, layer, delta_version, rows from _snapshot_sources").fetchall()}
        assert set(gold) <= set(sources)
        for name in gold:
            dt_ = DeltaTable(lake.path("gold", name))
            layer, version, rows = sources[name]
            assert (layer, version) == ("gold", dt_.version()), name
            assert rows == dt_.to_pyarrow_table().num_rows == con.execute(f'select count(*) from "{name}"').fetchone()[0]
        # tz-aware timestamps and list columns survive
        assert con.execute("select max(len(path)) from dim_organization").fetchone()[0] >= 3
    assert {t["table"] for t in published["tables"]} >= set(gold)


@pytest.fixture(scope="module")
def copy(city_lake, tmp_path_factory):
    return copy_lake(city_lake, tmp_path_factory.mktemp("serving_copy"))


def _publish(settings, run_id: str, **serving) -> dict:
    return publish.run(make_ctx(settings.replace(serving=serving) if serving else settings, D2, run_id=run_id))


def test_retention_keeps_n_and_pin_rolls_back(copy):
    snaps = snapshot.Snapshots(copy.serving)
    first = snaps.list()
    ids = [_publish(copy, f"retention-{i}", keep_snapshots=2)["snapshot_id"] for i in range(3)]
    have = [i.snapshot_id for i in snapshot.Snapshots(copy.serving).list()]
    assert have == ids[-2:] and first[0].snapshot_id not in have
    assert snaps.current_id() == ids[-1]

    pinned = snapshot.Snapshots(copy.replace(serving={"pin": ids[-2]}).serving)   # roll back by configuration
    assert pinned.current_id() == ids[-2]
    with pinned.connect() as con:
        assert snapshot.read_stamp(con)["run_id"] == "retention-1"
    res = _publish(copy, "while-pinned", keep_snapshots=2, pin=ids[-2])
    assert res["pinned"] == ids[-2]
    assert os.readlink(snaps.current_path) == f"snapshots/{ids[-2]}.duckdb"  # every reader rolled back
    assert ids[-2] in [i.snapshot_id for i in snaps.list()]                  # pinned survives retention
    with pytest.raises(snapshot.SnapshotNotFound):
        snapshot.Snapshots(copy.replace(serving={"pin": "20000101_000000_000000"}).serving).connect()
    _publish(copy, "unpinned")   # a fresh, unpinned current for the next test
    assert snaps.current_id() == snaps.list()[-1].snapshot_id


def _marked_snapshot(settings, run_id: str) -> str:
    """A published snapshot whose every organisation name is its own snapshot id (a marker per file)."""
    sid = _publish(settings, run_id, keep_snapshots=10)["snapshot_id"]
    with duckdb.connect(str(snapshot.Snapshots(settings.serving).path(sid))) as con:
        con.execute("update dim_organization set org_name = ?", [sid])
    return sid


def test_swap_during_reads_never_mixes_versions(copy):
    snaps = snapshot.Snapshots(copy.serving)
    a = _marked_snapshot(copy, "swap-a")
    b = _marked_snapshot(copy, "swap-b")
    stop = threading.Event()
    seen: dict[str, int] = {}
    bad: list = []
    swaps = [0]

    def reader():
        while not stop.is_set():
            with snaps.connect() as con:
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
                snaps.swap_current(sid)
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


def test_postgres_target(copy):
    from redcloud.services import postgres

    pg = copy.replace(serving={"target": "postgres", "postgres_database": "serving_pytest", "keep_snapshots": 1})
    try:
        r1 = publish.run(make_ctx(pg, D2, run_id="pg-1"))
        r2 = publish.run(make_ctx(pg, D2, run_id="pg-2"))
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
            assert cur.fetchone()[1] == DeltaTable(str(Path(copy.paths.lake_root) / "gold" / "dim_member")).version()
        conn.close()
        assert r1["snapshot_id"] != r2["snapshot_id"]
    finally:
        c = postgres.connect("postgres")
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("drop database if exists serving_pytest with (force)")
        c.close()
