"""The project's own PostgreSQL cluster on loopback (never the system cluster).

The cluster's data lives under the run folder (``[postgres] data_dir``). PostgreSQL refuses to
run as root, so when we are root the server runs as the ``postgres`` OS user; if that user cannot
reach the run folder (a private temporary clone, say), the data lives in a per-project folder
under /var/tmp and ``data_dir`` is a symlink to it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

from redcloud.config import get_settings
from redcloud.services.procs import log_dir, port_open

DATABASES = ("rc_org", "rc_cadre", "rc_app", "airflow", "superset")


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"PostgreSQL binary {name!r} not found: install the Debian package 'postgresql'")
    return path


def _as_owner(argv: list[str], **kw) -> subprocess.CompletedProcess:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kw)


def _owner_can_reach(path: Path) -> bool:
    if os.geteuid() != 0:
        return True
    probe = path.parent
    r = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-w", str(probe)], capture_output=True)
    return r.returncode == 0


def data_dir() -> Path:
    return Path(get_settings().postgres.data_dir)


def _prepare_dir() -> Path:
    d = data_dir()
    if d.exists() or d.is_symlink():
        return d.resolve()
    d.parent.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        # give the postgres user a folder of its own under the run folder
        d.mkdir()
        shutil.chown(d, "postgres", "postgres")
        if not _owner_can_reach(d / "x"):
            d.rmdir()
            key = hashlib.sha1(str(d).encode()).hexdigest()[:10]
            target = Path(f"/var/tmp/redcloud-pg-{key}")
            target.mkdir(exist_ok=True)
            shutil.chown(target, "postgres", "postgres")
            d.symlink_to(target)
            return target
    else:
        d.mkdir()
    return d


def ensure_running() -> None:
    """Initialise (once), start (if down) and create the project's databases. Idempotent."""
    s = get_settings().postgres
    if s.password is None:
        raise RuntimeError("REDCLOUD_POSTGRES__PASSWORD is not set: run `make setup` first")
    root = _prepare_dir()
    pgdata = root / "data"
    if not (pgdata / "PG_VERSION").exists():
        pwfile = root / "pwfile"
        pwfile.write_text(s.password.get_secret_value() + "\n")
        if os.geteuid() == 0:
            shutil.chown(pwfile, "postgres", "postgres")
        pwfile.chmod(0o600)
        _as_owner([_bin("initdb"), "-D", str(pgdata), "-U", s.user, "--auth=scram-sha-256",
                   f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8"])
        pwfile.unlink()
    if not port_open(s.host, s.port):
        log = root / "server.log"
        _as_owner([_bin("pg_ctl"), "-D", str(pgdata), "-l", str(log), "-w", "-t", "60", "start",
                   "-o", f"-h {s.host} -p {s.port} -k {root} -c max_connections=200 "
                         f"-c shared_buffers=256MB -c fsync=off -c synchronous_commit=off"])
        deadline = time.monotonic() + 30
        while not port_open(s.host, s.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; see {log}")
            time.sleep(0.2)
    (log_dir() / "postgres.where").write_text(str(root))
    _create_databases()


def _connect(dbname: str = "postgres", cfg=None):
    import psycopg2

    s = cfg or get_settings().postgres
    return psycopg2.connect(host=s.host, port=s.port, user=s.user,
                            password=s.password.get_secret_value(), dbname=dbname)


def _create_databases() -> None:
    conn = _connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select datname from pg_database")
        have = {r[0] for r in cur.fetchall()}
        for db in DATABASES:
            if db not in have:
                cur.execute(f'create database "{db}"')
    conn.close()


def stop() -> bool:
    """Stop the project's cluster if it runs. True if it was running."""
    d = data_dir()
    pgdata = d.resolve() / "data"
    if not (pgdata / "postmaster.pid").exists():
        return False
    _as_owner([_bin("pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"])
    return True


def connect(dbname: str, cfg=None):
    """A psycopg2 connection to one of the project's databases (``cfg``: a ``[postgres]`` section;
    default: the process's settings)."""
    return _connect(dbname, cfg)


def execute(dbname: str, sql: str, *args) -> list:
    """Run one statement (autocommit) in one of the project's databases; its rows, if any."""
    conn = _connect(dbname)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def copy_database(template: str, name: str) -> None:
    """``name`` as a fresh copy of ``template`` (dropped first if it exists). A template must have
    no other sessions: idle ones (e.g. left by JDBC reads) are ended first."""
    execute("postgres", f'drop database if exists "{name}" with (force)')
    execute("postgres", "select pg_terminate_backend(pid) from pg_stat_activity "
                        "where datname = %s and pid <> pg_backend_pid()", template)
    execute("postgres", f'create database "{name}" template "{template}"')


def drop_database(name: str) -> None:
    execute("postgres", f'drop database if exists "{name}" with (force)')
