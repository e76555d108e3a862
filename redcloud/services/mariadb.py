"""A private MariaDB server on loopback, for exercising the MySQL/MariaDB source path.

The organisation databases of some districts run on MySQL/MariaDB; the connectors must work
against both. ``ensure_running`` initialises a data folder once and starts ``mariadbd`` bound to
127.0.0.1 (as root it runs with ``--user=root``; the data never leaves the given folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from redcloud.services import procs


def _bin(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if not path:
        raise RuntimeError(f"{name} not found: install the Debian package 'mariadb-server' (make setup does)")
    return path


def ensure_running(data_dir: Path, port: int, user: str, password: str, databases: list[str]) -> str:
    """Start (if needed) and return the SQLAlchemy URL template ``mysql+pymysql://user:pw@127.0.0.1:port/{db}``."""
    import pymysql

    data_dir = Path(data_dir)
    as_root = ["--user=root"] if os.geteuid() == 0 else []
    if not (data_dir / "mysql").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([_bin("mariadb-install-db"), f"--datadir={data_dir}", "--auth-root-authentication-method=normal",
                        "--skip-test-db", *as_root], check=True, capture_output=True, text=True)
    if not procs.port_open("127.0.0.1", port):
        procs.start(f"mariadb-{port}", [_bin("mariadbd"), "--no-defaults", f"--datadir={data_dir}", f"--port={port}",
                                        "--bind-address=127.0.0.1", f"--socket={data_dir}/mysqld.sock",
                                        f"--pid-file={data_dir}/mysqld.pid", "--skip-name-resolve",
                                        "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
                                        "--innodb-buffer-pool-size=128M", *as_root])
        procs.wait_for_port("127.0.0.1", port, 60, "mariadbd", procs.log_dir() / f"mariadb-{port}.log")
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", autocommit=True)
            break
        except pymysql.err.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    with conn.cursor() as cur:
        cur.execute(f"create user if not exists '{user}'@'127.0.0.1' identified by %s", (password,))
        for db in databases:
            cur.execute(f"create database if not exists `{db}` character set utf8mb4")
            cur.execute(f"grant all on `{db}`.* to '{user}'@'127.0.0.1'")
    conn.close()
    return f"mysql+pymysql://{user}:{password}@127.0.0.1:{port}/{{db}}"


def stop(port: int) -> bool:
    return procs.stop(f"mariadb-{port}")
