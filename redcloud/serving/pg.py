"""``[serving] target = "postgres"``: publish the snapshot into the project's PostgreSQL.

Each publish loads every table into a new schema ``serving_<snapshot_id>`` (COPY from CSV made by
DuckDB), then, in ONE transaction, drops and recreates schema ``serving`` as views over it, so a
reader sees either the old or the new snapshot. List columns become PostgreSQL arrays (numeric)
or jsonb; struct/map columns jsonb. Old ``serving_*`` schemas beyond ``keep_snapshots`` are dropped;
``pin`` points the views at an older schema.
"""

from __future__ import annotations

import datetime as dt
import io
import re

import pyarrow as pa

from redcloud.serving.publish import read_sources

SCHEMA_RE = re.compile(r"^serving_[0-9a-z_]+$")


def _pg_type(t: pa.DataType) -> tuple[str, str]:
    """(PostgreSQL type, DuckDB expression template for the CSV) of an Arrow type."""
    if pa.types.is_boolean(t):
        return "boolean", "{c}"
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_int32(t):
        return "integer", "{c}"
    if pa.types.is_integer(t):
        return "bigint", "{c}"
    if pa.types.is_floating(t):
        return "double precision", "{c}"
    if pa.types.is_decimal(t):
        return "numeric", "{c}"
    if pa.types.is_date(t):
        return "date", "{c}"
    if pa.types.is_timestamp(t):
        if t.tz:
            return "timestamptz", "strftime({c} at time zone 'UTC', '%Y-%m-%d %H:%M:%S.%f') || '+00'"
        return "timestamp", "{c}"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        v = t.value_type
        if pa.types.is_integer(v):
            return "bigint[]", "'{{' || array_to_string({c}, ',') || '}}'"
        if pa.types.is_floating(v):
            return "double precision[]", "'{{' || array_to_string({c}, ',') || '}}'"
        return "jsonb", "to_json({c})"
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return "jsonb", "to_json({c})"
    return "text", "{c}"


def _connect(settings, dbname: str):
    from redcloud.services import postgres

    return postgres.connect(dbname, settings.postgres)


def ensure_database(settings) -> str:
    db = settings.serving.postgres_database
    conn = _connect(settings, "postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select 1 from pg_database where datname = %s", [db])
        if cur.fetchone() is None:
            cur.execute(f'create database "{db}"')
    conn.close()
    return db


def _load_table(cur, schema: str, name: str, arrow: pa.Table) -> None:
    import duckdb

    cols, exprs = [], []
    for f in arrow.schema:
        pgt, tmpl = _pg_type(f.type)
        cols.append(f'"{f.name}" {pgt}')
        exprs.append(tmpl.format(c=f'"{f.name}"') + f' as "{f.name}"')
    cur.execute(f'create table "{schema}"."{name}" ({", ".join(cols)})')
    if arrow.num_rows == 0:
        return
    con = duckdb.connect()
    con.register("_src", arrow)
    csv = con.sql(f"select {', '.join(exprs)} from _src").to_arrow_table()
    con.close()
    import pyarrow.csv as pcsv

    buf = io.BytesIO()
    pcsv.write_csv(csv, buf, pcsv.WriteOptions(include_header=False, quoting_style="needed"))
    buf.seek(0)
    cur.copy_expert(f'copy "{schema}"."{name}" from stdin with (format csv, null \'\')', buf)


def _point_views(cur, schema: str) -> None:
    cur.execute("select table_name from information_schema.tables where table_schema = %s", [schema])
    tables = [r[0] for r in cur.fetchall()]
    cur.execute("drop schema if exists serving cascade")
    cur.execute("create schema serving")
    for t in tables:
        cur.execute(f'create view serving."{t}" as select * from "{schema}"."{t}"')


def _has_serving(cur) -> bool:
    cur.execute("select 1 from information_schema.tables where table_schema = 'serving' and table_name = '_snapshot'")
    return cur.fetchone() is not None


def publish(ctx, snapshot_id: str, published_at: dt.datetime) -> list[dict]:
    """The run's gold and marts into schema ``serving_<id>``; the ``serving`` views swapped to it."""
    s, run_id, day = ctx.settings.serving, ctx.run_id, ctx.day
    db = ensure_database(ctx.settings)
    schema = f"serving_{snapshot_id}"
    assert SCHEMA_RE.match(schema), schema
    conn = _connect(ctx.settings, db)
    sources = []
    try:
        with conn.cursor() as cur:
            cur.execute(f'drop schema if exists "{schema}" cascade')
            cur.execute(f'create schema "{schema}"')
            for name, layer, version, arrow in read_sources(ctx.lake):
                _load_table(cur, schema, name, arrow)
                sources.append(dict(table_name=name, layer=layer, delta_version=version, rows=arrow.num_rows))
            cur.execute(f'create table "{schema}"._snapshot (snapshot_id text not null, run_id text, '
                        'logical_date date, published_at timestamptz)')
            cur.execute(f'insert into "{schema}"._snapshot values (%s, %s, %s, %s)',
                        [snapshot_id, run_id, day, published_at])
            cur.execute(f'create table "{schema}"._snapshot_sources (table_name text, layer text, '
                        'delta_version bigint, rows bigint)')
            for x in sources:
                cur.execute(f'insert into "{schema}"._snapshot_sources values (%s, %s, %s, %s)',
                            [x["table_name"], x["layer"], x["delta_version"], x["rows"]])
        conn.commit()  # the snapshot schema is complete before anyone is pointed at it
        with conn.cursor() as cur:  # the swap: one transaction
            target = f"serving_{s.pin}" if s.pin else schema
            cur.execute("select 1 from information_schema.schemata where schema_name = %s", [target])
            if cur.fetchone() is None:
                raise RuntimeError(f"pinned serving schema {target} does not exist")
            _point_views(cur, target)
        conn.commit()
        with conn.cursor() as cur:  # retention
            cur.execute("select schema_name from information_schema.schemata where schema_name like 'serving\\_%' "
                        "order by schema_name")
            schemas = [r[0] for r in cur.fetchall() if SCHEMA_RE.match(r[0])]
            keep = set(schemas[-max(s.keep_snapshots, 1):]) | {target}
            for old in schemas:
                if old not in keep:
                    cur.execute(f'drop schema "{old}" cascade')
        conn.commit()
    finally:
        conn.close()
    return sources
