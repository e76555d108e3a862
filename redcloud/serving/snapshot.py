"""Published serving snapshots: one DuckDB file per publish, and a ``current.duckdb`` symlink.

Layout under ``[serving] duckdb_dir``::

    snapshots/<snapshot_id>.duckdb   one consistent copy of gold + marts (read-only once renamed)
    current.duckdb -> snapshots/<id>.duckdb   swapped atomically (new symlink + os.replace)

A reader that opens ``current.duckdb`` (or :func:`connect`) gets one whole snapshot: files are
built aside and never modified after the rename, so readers never see half a run. Roll back by
configuration: ``[serving] pin = "<snapshot_id>"`` makes :func:`connect` use that snapshot, and the
next ``publish`` (or :meth:`Snapshots.apply_pin`) points ``current.duckdb`` at it for every other
reader. A :class:`Snapshots` is built from a ``[serving]`` configuration (the publish stage's run
context, or the API's settings).
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

CURRENT = "current.duckdb"
SNAPSHOT_ID_RE = re.compile(r"^[0-9a-z_]{1,60}$")


class SnapshotNotFound(RuntimeError):
    """No snapshot has been published yet, or the pinned one does not exist."""


def new_snapshot_id(now: dt.datetime | None = None) -> str:
    """Sortable by publish time, and a valid PostgreSQL identifier suffix."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.strftime("%Y%m%d_%H%M%S_%f")


@dataclass
class SnapshotInfo:
    snapshot_id: str
    path: Path
    size_bytes: int
    is_current: bool


class Snapshots:
    """The snapshots of one serving folder (``[serving]``: ``duckdb_dir``, ``pin``, ``keep_snapshots``)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.dir = Path(cfg.duckdb_dir)

    @property
    def snapshots_dir(self) -> Path:
        return self.dir / "snapshots"

    def path(self, snapshot_id: str) -> Path:
        if not SNAPSHOT_ID_RE.match(snapshot_id):
            raise ValueError(f"bad snapshot id {snapshot_id!r}")
        return self.snapshots_dir / f"{snapshot_id}.duckdb"

    @property
    def current_path(self) -> Path:
        """The path readers open: ``<duckdb_dir>/current.duckdb`` (a symlink to the latest snapshot)."""
        return self.dir / CURRENT

    def resolve_current(self) -> Path:
        """The snapshot file readers should use now: the pinned one if configured, else current's target."""
        if self.cfg.pin:
            p = self.path(self.cfg.pin)
            if not p.exists():
                raise SnapshotNotFound(f"pinned snapshot {self.cfg.pin!r} not found in {self.snapshots_dir}")
            return p
        link = self.current_path
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            raise SnapshotNotFound(f"no published snapshot yet: {link} missing (run `redcloud run publish`)") from None
        except OSError:  # a plain file (copied folder): use it as is
            return link
        p = Path(target)
        return p if p.is_absolute() else (link.parent / p)

    def current_id(self) -> str:
        return self.resolve_current().name.removesuffix(".duckdb")

    def connect(self, read_only: bool = True, snapshot_id: str | None = None):
        """A DuckDB connection to the current (or pinned, or named) snapshot.

        The symlink is resolved once, so every query on this connection sees the same snapshot even if
        a publish swaps ``current.duckdb`` meanwhile."""
        import duckdb

        path = self.path(snapshot_id) if snapshot_id else self.resolve_current()
        if not path.exists():
            raise SnapshotNotFound(f"snapshot file {path} missing")
        return duckdb.connect(str(path), read_only=read_only)

    def list(self) -> list[SnapshotInfo]:
        """Published snapshots, oldest first."""
        d = self.snapshots_dir
        if not d.is_dir():
            return []
        try:
            cur = self.resolve_current().resolve()
        except SnapshotNotFound:
            cur = None
        return [SnapshotInfo(p.name.removesuffix(".duckdb"), p, p.stat().st_size, p.resolve() == cur)
                for p in sorted(d.glob("*.duckdb"))]

    def swap_current(self, snapshot_id: str) -> Path:
        """Point ``current.duckdb`` at a snapshot atomically (rename of a fresh symlink)."""
        target = self.path(snapshot_id)
        if not target.exists():
            raise SnapshotNotFound(f"snapshot {snapshot_id!r} not found in {self.snapshots_dir}")
        link = self.current_path
        tmp = link.parent / f".current.{os.getpid()}.{snapshot_id}"
        tmp.unlink(missing_ok=True)
        os.symlink(Path("snapshots") / target.name, tmp)  # relative: the serving folder can move
        os.replace(tmp, link)
        return target

    def rollback(self, snapshot_id: str) -> Path:
        """Point readers at an earlier snapshot now (until the next publish; use ``pin`` to make it stick)."""
        return self.swap_current(snapshot_id)

    def apply_pin(self) -> str | None:
        """If ``[serving] pin`` is set, point ``current.duckdb`` at it. Returns the pinned id or None."""
        if self.cfg.pin:
            self.swap_current(self.cfg.pin)
            return self.cfg.pin
        return None

    def apply_retention(self, keep: int | None = None) -> list[str]:
        """Delete all but the newest ``keep`` snapshots; never the current or the pinned one.

        Open readers keep working on a deleted file (POSIX unlink semantics)."""
        keep = self.cfg.keep_snapshots if keep is None else keep
        snaps = self.list()
        protected = {i.snapshot_id for i in snaps if i.is_current}
        if self.cfg.pin:
            protected.add(self.cfg.pin)
        removable = [i for i in snaps[: max(0, len(snaps) - max(keep, 1))] if i.snapshot_id not in protected]
        for i in removable:
            i.path.unlink(missing_ok=True)
        # stale temporary files from a crashed publish
        for tmp in self.snapshots_dir.glob("*.tmp"):
            if tmp.stat().st_mtime < (dt.datetime.now().timestamp() - 3600):
                tmp.unlink(missing_ok=True)
        return [i.snapshot_id for i in removable]


def read_stamp(con) -> dict:
    """``_snapshot`` as a dict (snapshot_id, run_id, logical_date, published_at)."""
    row = con.execute("select snapshot_id, run_id, logical_date, published_at from _snapshot").fetchone()
    return dict(zip(("snapshot_id", "run_id", "logical_date", "published_at"), row))
