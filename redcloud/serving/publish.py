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

from redcloud.context import RunContext
from redcloud.lake import Lake
from redcloud.serving import snapshot as snap

log = logging.getLogger(__name__)

# layer -> tables published from it (None = every Delta table in the folder)
PUBLISHED = {"gold": None, "marts": None, "ops": ("alert_outbox",)}
# ART indexes for the API's point reads (table -> column), created when both exist
INDEXES = {"dim_member": "member_id", "dim_organization": "org_id"}


def discover(lake: Lake) -> list[tuple[str, str]]:
    """(table name, layer) of every table to publish, gold first."""
    out, seen = [], set()
    for layer, only in PUBLISHED.items():
        for name in lake.tables(layer):
            if only is not None and name not in only:
                continue
            if name in seen or name.startswith("_"):
                log.warning("publish: skipping %s/%s (name already published or reserved)", layer, name)
                continue
            seen.add(name)
            out.append((name, layer))
    return out


def read_sources(lake: Lake):
    """Yield (name, layer, delta_version, arrow table) for every published table."""
    from deltalake import DeltaTable

    for name, layer in discover(lake):
        t = DeltaTable(lake.path(layer, name))
        yield name, layer, t.version(), t.to_pyarrow_table()


def build_duckdb(snaps: snap.Snapshots, lake: Lake, snapshot_id: str, run_id: str, day: dt.date,
                 published_at: dt.datetime) -> tuple[Path, list[dict]]:
    """Build ``snapshots/<id>.duckdb`` aside; returns its path and the source list."""
    import duckdb

    snaps.snapshots_dir.mkdir(parents=True, exist_ok=True)
    final = snaps.path(snapshot_id)
    tmp = final.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    Path(str(tmp) + ".wal").unlink(missing_ok=True)
    sources = []
    con = duckdb.connect(str(tmp))
    try:
        for name, layer, version, arrow in read_sources(lake):
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


def run(ctx: RunContext) -> dict:
    """The ``publish`` stage (no Spark: delta-rs reads the Delta tables directly). Refused while a
    stage before it did not finish for the date (``ops/runs``: killed mid-way, failed or running)."""
    from redcloud import runs
    from redcloud.stages import registry

    upstream = registry.NAMES[:registry.NAMES.index("publish")]
    runs.check_complete(ctx.lake, ctx.day, upstream)
    s = ctx.settings.serving
    t0 = time.perf_counter()
    published_at = dt.datetime.now(dt.timezone.utc)
    snapshot_id = snap.new_snapshot_id(published_at)
    day, run_id = ctx.day, ctx.run_id
    if s.target == "postgres":
        from redcloud.serving import pg

        sources = pg.publish(ctx, snapshot_id, published_at)
        result = dict(target="postgres", database=s.postgres_database, schema=f"serving_{snapshot_id}")
    elif s.target == "duckdb":
        snaps = snap.Snapshots(s)
        path, sources = build_duckdb(snaps, ctx.lake, snapshot_id, run_id, day, published_at)
        pinned = snaps.apply_pin()
        if not pinned:
            snaps.swap_current(snapshot_id)
        removed = snaps.apply_retention()
        result = dict(target="duckdb", path=str(path), current=str(snaps.resolve_current()),
                      pinned=pinned, removed=removed)
    else:
        raise ValueError(f"[serving] target must be duckdb or postgres, not {s.target!r}")
    result.update(snapshot_id=snapshot_id, run_id=run_id, logical_date=day.isoformat(),
                  tables=[{"table": x["table_name"], "rows": x["rows"], "layer": x["layer"],
                           "delta_version": x["delta_version"]} for x in sources],
                  seconds=round(time.perf_counter() - t0, 2))
    ctx.progress.note(f"snapshot {snapshot_id}: {len(sources)} tables, "
                      f"{sum(x['rows'] for x in sources):,} rows ({result['seconds']} s)")
    return result


def main(argv: list[str] | None = None) -> int:
    """``python -m redcloud.serving.publish [--date D] [--run-id X] | --list | --rollback ID``: no Spark."""
    import argparse
    import json

    from redcloud.config import get_settings

    settings = get_settings()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--date", default=settings.synth.end)
    ap.add_argument("--run-id", default=None)
    ap.add_argument("--list", action="store_true", help="list snapshots and exit")
    ap.add_argument("--rollback", metavar="SNAPSHOT_ID", help="point current.duckdb at a snapshot and exit")
    a = ap.parse_args(argv)
    snaps = snap.Snapshots(settings.serving)
    if a.list:
        for i in snaps.list():
            print(f"{'*' if i.is_current else ' '} {i.snapshot_id}  {i.size_bytes / 1e6:8.1f} MB  {i.path}")
        return 0
    if a.rollback:
        print(snaps.rollback(a.rollback))
        return 0
    res = run(RunContext.create(a.date, settings, run_id=a.run_id))
    print(json.dumps(res, ensure_ascii=False, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
