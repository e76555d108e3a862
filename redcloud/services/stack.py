"""Start, stop and list the project's processes (everything runs on 127.0.0.1)."""

from __future__ import annotations

import importlib
import sys

from redcloud.config import get_settings
from redcloud.services import postgres, procs
from redcloud.synth import city_dir


def web_data_dir(scale: int, seed: int):
    return city_dir(get_settings().paths.synth_dir, scale, seed) / "web"


def start_web(scale: int, seed: int) -> str:
    s = get_settings()
    if procs.read_pid("web") or procs.port_open(s.web.host, s.web.port):
        return f"web reference server: already up on http://{s.web.host}:{s.web.port}"
    procs.start("web", [sys.executable, "-m", "redcloud.sources.web_server", "--data-dir", str(web_data_dir(scale, seed)),
                        "--host", s.web.host, "--port", str(s.web.port), "--seed", str(seed),
                        "--fault-rate", str(s.web.fault_rate), "--slow-rate", str(s.web.slow_rate),
                        "--slow-seconds", str(s.web.slow_seconds)])
    procs.wait_for_port(s.web.host, s.web.port, 20, "web reference server", procs.log_dir() / "web.log")
    return f"web reference server: http://{s.web.host}:{s.web.port} (data {web_data_dir(scale, seed)})"


# Application services, each a module redcloud.services.<name> with start() -> str (one line:
# where it listens and how to log in), stop() -> bool and status() -> str. Started by `make up`.
APP_SERVICES = ("mlflow", "smtp", "api", "superset", "airflow")


def _app(name: str):
    try:
        return importlib.import_module(f"redcloud.services.{name}")
    except ModuleNotFoundError as e:
        if e.name == f"redcloud.services.{name}":
            return None
        raise


def up(scale: int, seed: int, apps: bool = False) -> list[str]:
    s = get_settings()
    postgres.ensure_running()
    lines = [f"PostgreSQL: {s.postgres.host}:{s.postgres.port} user {s.postgres.user} "
             f"(databases {', '.join(postgres.DATABASES)}; data {postgres.data_dir().resolve()})"]
    lines.append(start_web(scale, seed))
    if apps:
        for name in APP_SERVICES:
            mod = _app(name)
            if mod is not None:
                lines.append(mod.start())
    return lines


def down() -> list[str]:
    out = []
    for name in reversed(APP_SERVICES):
        mod = _app(name)
        if mod is not None:
            out.append(f"{name}: {'stopped' if mod.stop() else 'not running'}")
    for name in ("web",):
        out.append(f"{name}: {'stopped' if procs.stop(name) else 'not running'}")
    out.append(f"postgres: {'stopped' if postgres.stop() else 'not running'}")
    return out


def status() -> list[str]:
    s = get_settings()
    return [f"postgres {s.postgres.host}:{s.postgres.port}: {'up' if procs.port_open(s.postgres.host, s.postgres.port) else 'down'}",
            f"web {s.web.host}:{s.web.port}: {'up' if procs.port_open(s.web.host, s.web.port) else 'down'}"] + [
        mod.status() for mod in map(_app, APP_SERVICES) if mod is not None]
