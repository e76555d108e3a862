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


def read_pid(name: str) -> int | None:
    f = pid_dir() / f"{name}.pid"
    if not f.exists():
        return None
    try:
        pid = int(f.read_text().strip())
    except ValueError:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
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
    """Stop a process we started (SIGTERM to its group, then SIGKILL). True if one was running."""
    pid = read_pid(name)
    if not pid:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        try:  # reap if it is our child
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.2)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    (pid_dir() / f"{name}.pid").unlink(missing_ok=True)
    return True


def started() -> list[str]:
    """Names of the processes with a PID file (started by the project), sorted."""
    return sorted(p.stem for p in pid_dir().glob("*.pid"))
