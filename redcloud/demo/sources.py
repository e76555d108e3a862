"""Demo: load the synthetic city into the organisation databases (PostgreSQL, or MySQL/MariaDB).

``load_city`` creates each system's tables (:mod:`redcloud.contracts`) from the city's parquet files
and bulk-loads them (COPY on PostgreSQL). A load is recorded in ``_redcloud_load`` with the city's
checksum, so loading the same city again is a no-op.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from redcloud.contracts import PRIMARY_KEYS, SYSTEMS
from redcloud.sources.orgdb import engine


def _sql_type(t: pa.DataType, dialect: str) -> str:
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_integer(t):
        return "bigint"
    if pa.types.is_floating(t):
        return "double precision" if dialect == "postgresql" else "double"
    if pa.types.is_timestamp(t):
        return "timestamp" if dialect == "postgresql" else "datetime(6)"
    if pa.types.is_date(t):
        return "date"
    return "text" if dialect == "postgresql" else "varchar(512)"


def ddl(table: str, schema: pa.Schema, dialect: str) -> str:
    cols = [f"{f.name} {_sql_type(f.type, dialect)}" for f in schema]
    cols.append(f"primary key ({PRIMARY_KEYS[table]})")
    return f"create table {table} (\n  " + ",\n  ".join(cols) + "\n)"


def _normalise(tbl: pa.Table) -> pa.Table:
    """Timestamps to microseconds without zone (the source systems store local time)."""
    fields = []
    for f in tbl.schema:
        if pa.types.is_timestamp(f.type):
            fields.append(pa.field(f.name, pa.timestamp("us")))
        else:
            fields.append(f)
    return tbl.cast(pa.schema(fields))


def _already_loaded(conn, checksum: str) -> bool:
    insp = sa.inspect(conn)
    if "_redcloud_load" not in insp.get_table_names():
        return False
    row = conn.execute(sa.text("select checksum from _redcloud_load order by loaded_at desc limit 1")).first()
    return bool(row and row[0] == checksum)


def load_system(url: str, system: str, city: Path, checksum: str, force: bool = False) -> dict[str, int]:
    """(Re)create and fill one system's tables. Returns row counts; empty when nothing changed."""
    eng = engine(url)
    dialect = eng.dialect.name
    with eng.begin() as conn:
        if not force and _already_loaded(conn, checksum):
            return {}
        counts = {}
        for table in SYSTEMS[system]:
            tbl = _normalise(pq.read_table(city / "source" / system / f"{table}.parquet"))
            conn.execute(sa.text(f"drop table if exists {table}"))
            conn.execute(sa.text(ddl(table, tbl.schema, dialect)))
            _bulk_insert(conn, table, tbl, dialect)
            if "updated_at" in tbl.column_names:
                conn.execute(sa.text(f"create index ix_{table}_updated_at on {table} (updated_at)"))
            counts[table] = tbl.num_rows
        conn.execute(sa.text("drop table if exists _redcloud_load"))
        conn.execute(sa.text("create table _redcloud_load (checksum varchar(80), counts text, loaded_at timestamp)"))
        conn.execute(sa.text("insert into _redcloud_load values (:c, :n, current_timestamp)"),
                     dict(c=checksum, n=json.dumps(counts)))
    eng.dispose()
    return counts


def _bulk_insert(conn, table: str, tbl: pa.Table, dialect: str) -> None:
    if dialect == "postgresql":
        import pyarrow.csv as pacsv

        buf = io.BytesIO()
        # nulls are written unquoted and empty, strings quoted: exactly PostgreSQL's CSV convention
        pacsv.write_csv(tbl, buf, pacsv.WriteOptions(include_header=False))
        buf.seek(0)
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur:
            cols = ",".join(tbl.column_names)
            cur.copy_expert(f"copy {table} ({cols}) from stdin with (format csv)", buf)
        return
    # MySQL/MariaDB and others: batched executemany
    cols = tbl.column_names
    stmt = sa.text(f"insert into {table} ({','.join(cols)}) values ({','.join(':' + c for c in cols)})")
    for batch in tbl.to_batches(max_chunksize=5000):
        conn.execute(stmt, batch.to_pylist())


def load_city(urls: dict[str, str], city: Path, force: bool = False) -> dict[str, dict[str, int]]:
    """Load every system of the city into its database; ``urls`` maps system -> SQLAlchemy URL."""
    checksum = json.loads((city / "manifest.json").read_text())["checksum"]
    return {system: load_system(urls[system], system, city, checksum, force) for system in SYSTEMS}
