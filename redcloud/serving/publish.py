"""Pipeline stage ``publish``: gold tables and dbt marts as one consistent serving snapshot.

Every Delta table under ``<lake_root>/gold/`` and ``<lake_root>/marts/`` (and the alert outbox in
``ops/``, when it exists) is read with delta-rs at its latest version, which is recorded. With the
default target (``[serving] target = "duckdb"``) the tables are written into a new DuckDB file built
aside (``snapshots/<id>.tmp``), renamed to ``snapshots/<id>.duckdb`` and then ``current.duckdb``
is swapped to it atomically; readers never see half a run. Stamps: ``_snapshot`` (snapshot_id,
run_id, logical_date, published_at) and ``_snapshot_sources`` (table_name, layer, delta_version,
rows). The newest ``keep_snapshots`` are kept; ``pin`` rolls back (see :mod:`.snapshot`).

With ``target = "postgres"`` the same tables go into schema ``serving_<id>`` of database
``[serving] postgres_database`` on the project's PostgreSQL, and the schema ``serving`` (views
over the snapshot schema) is rebuilt in one transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from pathlib import Path

from redcloud.config import get_settings
from redcloud.serving import snapshot as snap

log = logging.getLogger(__name__)

# layer -> tables published from it (None = every Delta table in the folder)
PUBLISHED = {"gold": None, "marts": None, "ops": ("alert_outbox",)}
# ART indexes for the API's point reads (table -> column), created when both exist
INDEXES = {"dim_member": "member_id", "dim_organization": "org_id"}


def _is_delta(p: Path) -> bool:
    return (p / "_delta_log").is_dir()


def discover(lake_root: str | None = None) -> list[tuple[str, str, Path]]:
    """(table name, layer, path) of every table to publish, gold first."""
    root = Path(lake_root or get_settings().paths.lake_root)
    out, seen = [], set()
    for layer, only in PUBLISHED.items():
        base = root / layer
        if not base.is_dir():
            continue
        for p in sorted(base.iterdir()):
            if not p.is_dir() or not _is_delta(p) or (only is not None and p.name not in only):
                continue
            if p.name in seen or p.name.startswith("_"):
                log.warning("publish: skipping %s/%s (name already published or reserved)", layer, p.name)
                continue
            seen.add(p.name)
            out.append((p.name, layer, p))
    return out


def read_sources(lake_root: str | None = None):
    """Yield (name, layer, delta_version, arrow table) for every published table."""
    from deltalake import DeltaTable

    for name, layer, path in discover(lake_root):
        t = DeltaTable(str(path))
        version = t.version()
        arrow = t.to_pyarrow_table()
        yield name, layer, version, arrow


def build_duckdb(snapshot_id: str, run_id: str, day: dt.date, published_at: dt.datetime,
                 lake_root: str | None = None) -> tuple[Path, list[dict]]:
    """Build ``snapshots/<id>.duckdb`` aside; returns its path and the source list."""
    import duckdb

    snaps = snap.snapshots_dir()
    snaps.mkdir(parents=True, exist_ok=True)
    final = snap.snapshot_path(snapshot_id)
    tmp = final.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    Path(str(tmp) + ".wal").unlink(missing_ok=True)
    sources = []
    con = duckdb.connect(str(tmp))
    try:
        for name, layer, version, arrow in read_sources(lake_root):
            con.register("_src", arrow)
            con.execute(f'create table "{name}" as select * from _src')
            con.unregister("_src")
            sources.append(dict(table_name=name, layer=layer, delta_version=version, rows=arrow.num_rows))
            col = INDEXES.get(name)
            if col and col in arrow.column_names:
                con.execute(f'create index "ix_{name}_{col}" on "{name}" ("{col}")')
        con.execute("create table _snapshot (snapshot_id varchar not null, run_id varchar, "
                    "logical_date date, published_at timestamptz)")
        con.execute("insert into _snapshot values (?, ?, ?, ?)", [snapshot_id, run_id, day, published_at])
        con.execute("create table _snapshot_sources (table_name varchar, layer varchar, delta_version bigint, "
                    "rows bigint)")
        if sources:
            con.executemany("insert into _snapshot_sources values (?, ?, ?, ?)",
                            [[s["table_name"], s["layer"], s["delta_version"], s["rows"]] for s in sources])
        con.execute("checkpoint")
    except BaseException:
        con.close()
        tmp.unlink(missing_ok=True)
        raise
    con.close()
    os.replace(tmp, final)
    return final, sources


def run(spark, day: dt.date, run_id: str) -> dict:
    """The ``publish`` stage. ``spark`` is unused: delta-rs reads the Delta tables directly."""
    s = get_settings().serving
    t0 = time.perf_counter()
    published_at = dt.datetime.now(dt.timezone.utc)
    snapshot_id = snap.new_snapshot_id(published_at)
    run_id = run_id or f"manual__{day.isoformat()}"
    if s.target == "postgres":
        from redcloud.serving import pg

        sources = pg.publish(snapshot_id, run_id, day, published_at)
        result = dict(target="postgres", database=s.postgres_database, schema=f"serving_{snapshot_id}")
    elif s.target == "duckdb":
        path, sources = build_duckdb(snapshot_id, run_id, day, published_at)
        pinned = snap.apply_pin()
        if not pinned:
            snap.swap_current(snapshot_id)
        removed = snap.apply_retention()
        result = dict(target="duckdb", path=str(path), current=str(snap.resolve_current()),
                      pinned=pinned, removed=removed)
    else:
        raise ValueError(f"[serving] target must be duckdb or postgres, not {s.target!r}")
    result.update(snapshot_id=snapshot_id, run_id=run_id, logical_date=day.isoformat(),
                  tables=[{"table": x["table_name"], "rows": x["rows"], "layer": x["layer"],
                           "delta_version": x["delta_version"]} for x in sources],
                  seconds=round(time.perf_counter() - t0, 2))
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m redcloud.serving.publish [--date D] [--run-id X]``: publish without Spark."""
    import argparse
    import json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", default=get_settings().synth.end)
    ap.add_argument("--run-id", default=None)
    ap.add_argument("--list", action="store_true", help="list snapshots and exit")
    ap.add_argument("--rollback", metavar="SNAPSHOT_ID", help="point current.duckdb at a snapshot and exit")
    a = ap.parse_args(argv)
    if a.list:
        for i in snap.list_snapshots():
            print(f"{'*' if i.is_current else ' '} {i.snapshot_id}  {i.size_bytes / 1e6:8.1f} MB  {i.path}")
        return 0
    if a.rollback:
        print(snap.rollback(a.rollback))
        return 0
    res = run(None, dt.date.fromisoformat(a.date), a.run_id)
    print(json.dumps(res, ensure_ascii=False, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
