"""Read access to the published snapshot for the API: one open DuckDB database per snapshot file,
one cursor per request (so a request sees exactly one snapshot, even across a swap)."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from redcloud.api.errors import ApiError, table_unavailable
from redcloud.privacy import mask_name
from redcloud.serving import snapshot as snap

# organisation columns a table may be scoped by, most specific first
ORG_COLUMNS = ("org_id", "unit_org_id", "branch_org_id", "village_org_id", "town_org_id", "county_org_id")
# person names: masked unless the caller has the pii role
NAME_COLUMNS = ("member_name", "cadre_name", "person_name", "handler_name", "full_name", "recipient_name", "name")
# personal data removed (set to null) unless the caller has the pii role
PII_COLUMNS = ("birth_date", "id_number_pseudonym", "phone_pseudonym", "person_key", "recipient_email",
               "recipient_phone")


@dataclass
class Snapshot:
    snapshot_id: str
    path: Path
    con: duckdb.DuckDBPyConnection
    stamp: dict
    columns: dict[str, list[str]]  # table -> columns
    orgs: dict[int, tuple[tuple[int, ...], str]]  # org_id -> (path, org_name): scope checks without SQL
    users: int = 0                 # requests reading it now
    evicted: bool = False
    cache: RowCache = field(default_factory=lambda: RowCache(0))


class RowCache:
    """Least-recently-used point reads of one snapshot: a published snapshot never changes, so a row
    read once is the row; the cache goes with the snapshot when it is swapped out. Bounded
    (``[api] row_cache_size`` entries); thread-safe."""

    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            v = self._d.get(key)
            if v is not None:
                self._d.move_to_end(key)
            return v

    def put(self, key, value) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


class Pool:
    """Caches an open read-only database per snapshot file; re-resolves ``current`` per request.

    Closing a DuckDB connection invalidates its cursors, so a snapshot pushed out of the cache is
    closed only when the last request reading it has finished (reference count)."""

    def __init__(self, keep: int = 2, snapshots: snap.Snapshots | None = None):
        self._snapshots = snapshots
        self._lock = threading.Lock()
        self._open: dict[Path, Snapshot] = {}
        self._order: list[Path] = []
        self._keep = keep

    @property
    def snapshots(self) -> snap.Snapshots:
        """The serving folder (``[serving]`` of the API process's settings unless given)."""
        if self._snapshots is None:
            from redcloud.config import get_settings

            self._snapshots = snap.Snapshots(get_settings().serving)
        return self._snapshots

    def acquire(self) -> Snapshot:
        try:
            path = self.snapshots.resolve_current()
        except snap.SnapshotNotFound:
            raise ApiError(503, "snapshot_unavailable", "尚未发布任何数据快照，请先运行发布（publish）") from None
        with self._lock:
            s = self._open.get(path)
            if s is None:
                s = self._open_locked(path)
            s.users += 1
            return s

    def release(self, s: Snapshot) -> None:
        with self._lock:
            s.users -= 1
            if s.evicted and s.users <= 0:
                _close(s)

    def current(self) -> Snapshot:
        """The current snapshot without holding it (for metadata only)."""
        s = self.acquire()
        self.release(s)
        return s

    def _open_locked(self, path: Path) -> Snapshot:
        try:
            con = duckdb.connect(str(path), read_only=True)
        except duckdb.Error:
            raise ApiError(503, "snapshot_unavailable", "数据快照暂不可用，请稍后重试") from None
        cols: dict[str, list[str]] = {}
        for t, c in con.execute("select table_name, column_name from information_schema.columns "
                                "where table_schema = 'main' order by table_name, ordinal_position").fetchall():
            cols.setdefault(t, []).append(c)
        stamp = snap.read_stamp(con)
        orgs = {}
        if "dim_organization" in cols:
            orgs = {r[0]: (tuple(r[1] or ()), r[2]) for r in
                    con.execute("select org_id, path, org_name from dim_organization").fetchall()}
        s = Snapshot(stamp["snapshot_id"], path, con, stamp, cols, orgs, cache=RowCache(_cache_size()))
        self._open[path] = s
        self._order.append(path)
        while len(self._order) > self._keep:
            gone = self._open.pop(self._order.pop(0))
            gone.evicted = True
            if gone.users <= 0:
                _close(gone)
        return s

    def close(self) -> None:
        with self._lock:
            for s in self._open.values():
                _close(s)
            self._open.clear()
            self._order.clear()


def _cache_size() -> int:
    from redcloud.config import get_settings

    return get_settings().api.row_cache_size


def _close(s: Snapshot) -> None:
    try:
        s.con.close()
    except duckdb.Error:
        pass


POOL = Pool()


class Reader:
    """One request's view of one snapshot."""

    def __init__(self, pool: Pool | None = None):
        self.pool = pool or POOL
        self.snapshot = self.pool.acquire()
        try:
            self.cur = self.snapshot.con.cursor()
        except BaseException:
            self.pool.release(self.snapshot)
            raise

    @property
    def snapshot_id(self) -> str:
        return self.snapshot.snapshot_id

    def has(self, table: str) -> bool:
        return table in self.snapshot.columns

    def cols(self, table: str) -> list[str]:
        if table not in self.snapshot.columns:
            raise table_unavailable(table)
        return self.snapshot.columns[table]

    def rows(self, sql: str, params=()) -> list[dict]:
        res = self.cur.execute(sql, list(params))
        names = [d[0] for d in res.description]
        out = [dict(zip(names, map(jsonable, r))) for r in res.fetchall()]
        for c in JSON_COLUMNS.intersection(names):
            for row in out:
                row[c] = _json_value(row[c])
        return out

    def point_rows(self, sql: str, params=()) -> list[dict]:
        """``rows`` for a point read (a few rows by key), remembered for the snapshot's lifetime; the
        caller gets its own copies of the row dicts (scope checks and masking still run per request)."""
        key = (sql, tuple(params))
        hit = self.snapshot.cache.get(key)
        if hit is None:
            hit = self.rows(sql, params)
            self.snapshot.cache.put(key, hit)
        return [dict(r) for r in hit]

    def scalar(self, sql: str, params=()):
        r = self.cur.execute(sql, list(params)).fetchone()
        return None if r is None else r[0]

    def close(self) -> None:
        try:
            self.cur.close()
        except duckdb.Error:
            pass
        finally:
            self.pool.release(self.snapshot)


# text columns that hold JSON in the lake (a model's top factors, an alert's evidence): served as JSON
# objects or arrays, not as a string
JSON_COLUMNS = frozenset({"top_factors", "evidence"})


def _json_value(v):
    if not isinstance(v, str) or not v.lstrip().startswith(("{", "[")):
        return v
    try:
        return json.loads(v)
    except ValueError:
        return v


def jsonable(v):
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.hex()
    return v


def protect(row: dict, sees_pii: bool) -> dict:
    if sees_pii:
        return row
    for c in NAME_COLUMNS:
        if c in row:
            row[c] = mask_name(row[c])
    for c in PII_COLUMNS:
        if c in row:
            row[c] = None
    return row


def quote(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


def member_org_sql(member_id: str) -> str:
    """SQL for the organisation a member belongs to (``member_id``: an SQL expression or ``?``)."""
    return f"(select m.org_id from dim_member m where m.member_id = {member_id})"


def cadre_org_sql(cadre_id: str) -> str:
    """SQL for the organisation a cadre belongs to: the unit of the cadre's latest year."""
    return f"(select arg_max(c.unit_org_id, c.year) from fct_cadre_year c where c.cadre_id = {cadre_id})"


def scope_expr(reader: Reader, table: str, alias: str = "t") -> str:
    """SQL expression giving the organisation that scopes a row of ``table``."""
    cols = reader.cols(table)
    for c in ORG_COLUMNS:
        if c in cols:
            return f"{alias}.{quote(c)}"
    if "member_id" in cols and reader.has("dim_member"):
        return member_org_sql(f"{alias}.member_id")
    if "cadre_id" in cols and reader.has("fct_cadre_year"):
        return cadre_org_sql(f"{alias}.cadre_id")
    raise ApiError(503, "table_unscoped", f"数据表 {table} 缺少可用于授权范围的组织字段")


SUBTREE = "(select o.org_id from dim_organization o where list_contains(o.path, ?))"


def page(reader: Reader, table: str, scope_org: int, where: list[tuple[str, list]], order: list[str],
         limit: int, offset: int, sees_pii: bool, select: str = "t.*",
         scope_sql: str | None = None) -> tuple[list[dict], int]:
    """Rows of ``table`` within the subtree of ``scope_org`` (plus ``where`` clauses), one page.

    ``scope_sql``: the expression giving a row's organisation, when :func:`scope_expr` cannot tell."""
    reader.cols("dim_organization")
    clauses = [f"{scope_sql or scope_expr(reader, table)} in {SUBTREE}"]
    params: list = [scope_org]
    for sql, p in where:
        clauses.append(sql)
        params.extend(p)
    base = f"from {quote(table)} t where " + " and ".join(clauses)
    total = reader.scalar(f"select count(*) {base}", params)
    cols = reader.cols(table)
    order_sql = ", ".join(f"t.{quote(c)}" + (" desc" if d else "") for c, d in
                          ((o.lstrip("-"), o.startswith("-")) for o in order) if c in cols) or "1"
    items = reader.rows(f"select {select} {base} order by {order_sql} limit ? offset ?", params + [limit, offset])
    return [protect(r, sees_pii) for r in items], int(total or 0)


def in_scope(reader: Reader, scope_org: int, org_id: int | None) -> bool:
    o = reader.snapshot.orgs.get(org_id)
    return o is not None and scope_org in o[0]
