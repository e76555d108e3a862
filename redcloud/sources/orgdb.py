"""The organisation databases (org/member, cadre, app-activity systems) in PostgreSQL or MySQL/MariaDB:
incremental extraction for the bronze stage. The tables and keys are :mod:`redcloud.contracts`."""

from __future__ import annotations

import pyarrow as pa
import sqlalchemy as sa

from redcloud.contracts import PRIMARY_KEYS
from redcloud.spark import from_arrow


def engine(url: str) -> sa.Engine:
    return sa.create_engine(url, pool_pre_ping=True)


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
            return from_arrow(spark, tbl), int(n), "sqlalchemy"
    eng.dispose()
    lit = lambda v: f"'{v.isoformat(sep=' ')}'"  # noqa: E731
    where = f"updated_at < {lit(hi)}" + (f" and updated_at > {lit(lo)}" if lo is not None else "")
    df = _jdbc_key_ranges(spark, url, f"select * from {table} where {where}", pk, kmin, kmax, partitions)
    from pyspark.sql.types import BooleanType, DateType, DoubleType, LongType, StringType, TimestampType

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
        return from_arrow(spark, pa.table({pk: pa.array(keys, type=pa.int64())}))
    df = _jdbc_key_ranges(spark, url, f"select {pk} from {table}", pk, kmin, kmax, partitions)
    return df.select(F.col(pk).cast("long").alias(pk))
