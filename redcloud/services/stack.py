"""Start, stop and list the project's processes (everything runs on 127.0.0.1)."""

from __future__ import annotations

import importlib

from redcloud.config import get_settings
from redcloud.services import postgres, procs

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


def up(apps: bool = False, engine: bool = False) -> list[str]:
    """PostgreSQL (the source systems and the metadata databases), then with ``apps`` every application
    service and with ``engine`` the warm engine (:mod:`redcloud.services.spark_connect`). The demo's
    web reference server is started by ``redcloud-demo up`` (redcloud.demo)."""
    s = get_settings()
    postgres.ensure_running()
    lines = [f"PostgreSQL: {s.postgres.host}:{s.postgres.port} user {s.postgres.user} "
             f"(databases {', '.join(postgres.DATABASES)}; data {postgres.data_dir().resolve()})"]
    if apps:
        for name in APP_SERVICES:
            mod = _app(name)
            if mod is not None:
                lines.append(mod.start())
            if name == "smtp":   # alert e-mails a run could not send (SMTP was down) go out now
                from redcloud.alerts import outbox

                sent = outbox.deliver_pending(s)
                if sent:
                    lines.append(sent)
    if engine:
        from redcloud.services import spark_connect

        lines.append(spark_connect.start())
    return lines


def down() -> list[str]:
    out = []
    for name in reversed(APP_SERVICES):
        mod = _app(name)
        if mod is not None:
            out.append(f"{name}: {'stopped' if mod.stop() else 'not running'}")
    for name in procs.started():   # anything else the project started (e.g. the demo's web server)
        if name != "postgres":
            out.append(f"{name}: {'stopped' if procs.stop(name) else 'not running'}")
    out.append(f"postgres: {'stopped' if postgres.stop() else 'not running'}")
    return out


def status() -> list[str]:
    s = get_settings()
    return [f"postgres {s.postgres.host}:{s.postgres.port}: {'up' if procs.port_open(s.postgres.host, s.postgres.port) else 'down'}",
            f"web {s.web.host}:{s.web.port}: {'up' if procs.port_open(s.web.host, s.web.port) else 'down'}"] + [
        mod.status() for mod in map(_app, (*APP_SERVICES, "spark_connect")) if mod is not None]
