"""The organisation databases (org/member, cadre, app-activity systems) in PostgreSQL or MySQL/MariaDB.

``load_city`` creates each system's tables from the synthetic city's parquet files and bulk-loads
them (COPY on PostgreSQL). A load is recorded in ``_redcloud_load`` with the city's checksum, so
loading the same city again is a no-op.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import sqlalchemy as sa

from redcloud.synth import PRIMARY_KEYS, SYSTEMS


def engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True)


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


# --------------------------------------------------------------------------------------------
# Extraction (used by the bronze stage)
# --------------------------------------------------------------------------------------------

_ARROW = {"bigint": pa.int64(), "integer": pa.int64(), "smallint": pa.int64(), "double precision": pa.float64(),
          "double": pa.float64(), "real": pa.float64(), "numeric": pa.float64(), "boolean": pa.bool_(),
          "tinyint": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("us"),
          "datetime": pa.timestamp("us")}


def arrow_schema(conn, table: str) -> pa.Schema:
    """The table's columns as an Arrow schema (the canonical bronze schema of that table)."""
    fields = []
    for col in sa.inspect(conn).get_columns(table):
        t = str(col["type"]).lower().split("(")[0].strip()
        if t.startswith("timestamp") or t.startswith("datetime"):
            t = "timestamp"
        fields.append(pa.field(col["name"], _ARROW.get(t, pa.string())))
    return pa.schema(fields)


def jdbc_url(url: str) -> tuple[str, dict[str, str]]:
    """A Spark JDBC URL and connection properties for a SQLAlchemy URL."""
    u = sa.engine.make_url(url)
    backend = u.get_backend_name()
    if backend == "postgresql":
        jurl, driver = f"jdbc:postgresql://{u.host}:{u.port or 5432}/{u.database}", "org.postgresql.Driver"
    elif backend in ("mysql", "mariadb"):
        # the mysql scheme makes Spark pick its MySQL dialect (backtick quoting); the MariaDB driver accepts it
        jurl = f"jdbc:mysql://{u.host}:{u.port or 3306}/{u.database}?permitMysqlScheme"
        driver = "org.mariadb.jdbc.Driver"
    else:
        raise ValueError(f"unsupported source database {backend!r} in {u.render_as_string(hide_password=True)}")
    return jurl, {"user": u.username or "", "password": u.password or "", "driver": driver}


def _window(lo, hi) -> tuple[str, dict]:
    cond, params = ["updated_at < :hi"], {"hi": hi}
    if lo is not None:
        cond.append("updated_at > :lo")
        params["lo"] = lo
    return " and ".join(cond), params


def _jdbc_key_ranges(spark, url: str, query: str, pk: str, kmin, kmax, partitions: int):
    """``query`` read by Spark JDBC in ``partitions`` parallel ranges of the primary key ``pk``."""
    jurl, props = jdbc_url(url)
    return (spark.read.format("jdbc").option("url", jurl).options(**props)
            .option("dbtable", f"({query}) q")
            .option("partitionColumn", pk).option("lowerBound", str(kmin)).option("upperBound", str(int(kmax) + 1))
            .option("numPartitions", str(partitions)).option("fetchsize", "10000").load())


def extract(spark, url: str, table: str, lo, hi, jdbc_threshold: int, partitions: int = 4):
    """Rows of ``table`` with ``lo < updated_at < hi`` as a Spark DataFrame with the canonical schema.

    Small windows go through SQLAlchemy (one query, Arrow into Spark); large ones through Spark JDBC,
    read in ``partitions`` parallel ranges of the primary key. Returns (DataFrame, source row count, method).
    """
    from pyspark.sql import functions as F

    pk = PRIMARY_KEYS[table]
    cond, params = _window(lo, hi)
    eng = engine(url)
    with eng.connect() as conn:
        schema = arrow_schema(conn, table)
        n, kmin, kmax = conn.execute(sa.text(f"select count(*), min({pk}), max({pk}) from {table} where {cond}"), params).one()
        if n <= jdbc_threshold:
            res = conn.execute(sa.text(f"select * from {table} where {cond} order by {pk}"), params)
            cols = list(res.keys())
            rows = res.fetchall()
            data = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
            for f in schema:  # MySQL/MariaDB booleans arrive as tinyint 0/1
                if pa.types.is_boolean(f.type):
                    data[f.name] = [None if v is None else bool(v) for v in data[f.name]]
            tbl = pa.table({f.name: pa.array(data[f.name], type=f.type) for f in schema}, schema=schema)
            eng.dispose()
            return spark.createDataFrame(tbl), int(n), "sqlalchemy"
    eng.dispose()
    lit = lambda v: f"'{v.isoformat(sep=' ')}'"  # noqa: E731
    where = f"updated_at < {lit(hi)}" + (f" and updated_at > {lit(lo)}" if lo is not None else "")
    df = _jdbc_key_ranges(spark, url, f"select * from {table} where {where}", pk, kmin, kmax, partitions)
    from pyspark.sql.types import (BooleanType, DateType, DoubleType, LongType, StringType, TimestampType)

    spark_type = {pa.int64(): LongType(), pa.float64(): DoubleType(), pa.bool_(): BooleanType(),
                  pa.date32(): DateType(), pa.timestamp("us"): TimestampType(), pa.string(): StringType()}
    df = df.select([F.col(f.name).cast(spark_type[f.type]).alias(f.name) for f in schema])
    return df, int(n), "spark-jdbc"


def source_keys(spark, url: str, table: str, jdbc_threshold: int = 50000, partitions: int = 4):
    """Every primary key currently in the source table, as a one-column DataFrame (delete detection).

    Small tables: one SQLAlchemy query. Large ones: Spark JDBC in ``partitions`` key ranges, so the keys
    never pass through Python lists (a 300k-member city has millions of answer and attendance keys)."""
    from pyspark.sql import functions as F

    pk = PRIMARY_KEYS[table]
    eng = engine(url)
    with eng.connect() as conn:
        n, kmin, kmax = conn.execute(sa.text(f"select count(*), min({pk}), max({pk}) from {table}")).one()
        if n <= jdbc_threshold:
            keys = conn.execute(sa.text(f"select {pk} from {table}")).scalars().all()
    eng.dispose()
    if n <= jdbc_threshold:
        return spark.createDataFrame(pa.table({pk: pa.array(keys, type=pa.int64())}))
    df = _jdbc_key_ranges(spark, url, f"select {pk} from {table}", pk, kmin, kmax, partitions)
    return df.select(F.col(pk).cast("long").alias(pk))
