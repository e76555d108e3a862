"""Build a serving snapshot from a lake's gold (and marts) without ``redcloud.serving.publish``.

A stop-gap for developing the Superset bundle while the real publish stage is being written. It
follows the serving contract (``snapshots/<id>.duckdb`` + ``current.duckdb`` symlink, tables under
their gold/mart names, ``_snapshot`` and ``_snapshot_sources``) but is not the publish stage: it
does not validate, retain or pin. Run it in the pipeline venv::

    python infra/superset/dev_snapshot.py --lake .run/lake --out .run/dev/superset/serving
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
from pathlib import Path


def build(lake_root: Path, out_dir: Path, snapshot_id: str = "dev", run_id: str = "dev",
          logical_date: str = "2025-12-31") -> Path:
    import duckdb
    from deltalake import DeltaTable

    snaps = out_dir / "snapshots"
    snaps.mkdir(parents=True, exist_ok=True)
    final = snaps / f"{snapshot_id}.duckdb"
    tmp = snaps / f"{snapshot_id}.duckdb.tmp"
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    sources = []
    for layer in ("gold", "marts"):
        d = lake_root / layer
        if not d.is_dir():
            continue
        for t in sorted(p.name for p in d.iterdir() if (p / "_delta_log").is_dir()):
            dtab = DeltaTable(str(d / t))
            arrow = dtab.to_pyarrow_table()
            con.execute(f'create table "{t}" as select * from arrow')
            sources.append((t, layer, dtab.version(), arrow.num_rows))
    con.execute("create table _snapshot as select ? as snapshot_id, ? as run_id, cast(? as date) as logical_date, "
                "cast(? as timestamptz) as published_at",
                [snapshot_id, run_id, logical_date, dt.datetime.now(dt.timezone.utc).isoformat()])
    con.execute("create table _snapshot_sources (table_name varchar, layer varchar, delta_version bigint, rows bigint)")
    con.executemany("insert into _snapshot_sources values (?, ?, ?, ?)", sources)
    con.close()
    os.replace(tmp, final)
    link = out_dir / "current.duckdb"
    tmp_link = out_dir / f".current.{os.getpid()}"
    tmp_link.unlink(missing_ok=True)
    os.symlink(Path("snapshots") / final.name, tmp_link)
    os.replace(tmp_link, link)
    return link


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--lake", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--snapshot-id", default="dev")
    a = ap.parse_args()
    print(build(a.lake.resolve(), a.out.resolve(), a.snapshot_id))
