"""Background processes with PID files under .run/pids, so `make down` ends only what we started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from redcloud.config import get_settings


def pid_dir() -> Path:
    d = Path(get_settings().paths.run_dir) / "pids"
    d.mkdir(parents=True, exist_ok=True)
    return d


def log_dir() -> Path:
    d = Path(get_settings().paths.run_dir) / "logs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_for_port(host: str, port: int, timeout: float, name: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(host, port):
            return
        time.sleep(0.2)
    tail = ""
    if log and log.exists():
        tail = "\n" + "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"{name} did not listen on {host}:{port} within {timeout:.0f}s{tail}")


def _group_alive(pgid: int) -> bool:
    """Whether a live process (not a zombie) is left in the process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs: ask the kernel (a zombie counts as alive there)
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()   # after "pid (comm)": state ppid pgrp ...
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


def read_pid(name: str) -> int | None:
    f = pid_dir() / f"{name}.pid"
    if not f.exists():
        return None
    try:
        pid = int(f.read_text().strip())
    except ValueError:
        return None
    # the leader, or what is left of its process group (Linux reuses no PID while it names a group)
    if not _group_alive(pid):
        f.unlink(missing_ok=True)
        return None
    return pid


def start(name: str, argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> int:
    """Start argv in its own process group, detached, logging to .run/logs/<name>.log."""
    existing = read_pid(name)
    if existing:
        return existing
    log = log_dir() / f"{name}.log"
    with open(log, "ab") as out:
        p = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        )
    (pid_dir() / f"{name}.pid").write_text(str(p.pid))
    return p.pid


def stop(name: str, timeout: float = 20) -> bool:
    """Stop a process we started and everything in its process group: SIGTERM to the group, then
    SIGKILL to whatever of the group is left after ``timeout``. True if one was running.

    The whole group is waited for, not only its leader: a server's worker that outlives its parent
    (Airflow's api-server after an interrupted test session did) would otherwise keep the port while
    the PID file says the service is down."""
    pid = read_pid(name)
    if not pid:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:  # reap the leader if it is our child (a zombie leader keeps the group "alive")
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        if not _group_alive(pid):
            break
        time.sleep(0.2)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill_deadline = time.monotonic() + 5
        while _group_alive(pid) and time.monotonic() < kill_deadline:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.05)
    (pid_dir() / f"{name}.pid").unlink(missing_ok=True)
    return True


def started() -> list[str]:
    """Names of the processes with a PID file (started by the project), sorted."""
    return sorted(p.stem for p in pid_dir().glob("*.pid"))
