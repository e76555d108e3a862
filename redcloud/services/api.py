"""The operational API as a background uvicorn process on ``[api] host:port`` (``make up`` starts it)."""

from __future__ import annotations

import sys

from redcloud.config import PROJECT_ROOT, get_settings
from redcloud.services import procs

NAME = "api"


def _url() -> str:
    s = get_settings().api
    return f"http://{s.host}:{s.port}"


def start(env: dict[str, str] | None = None) -> str:
    """Start the API process (``env``: extra environment, e.g. another serving folder for a test)."""
    s = get_settings().api
    how = (f"API {_url()}/docs — 凭证：`redcloud api token --org <组织ID> --sub <调用方>` "
           f"(Authorization: Bearer …) 或 `redcloud api key --org <组织ID> --sub <调用方>` (X-API-Key)")
    if procs.read_pid(NAME) or procs.port_open(s.host, s.port):
        return f"{how} (already up)"
    procs.start(NAME, [sys.executable, "-m", "uvicorn", "--factory", "redcloud.api.app:create_app",
                       "--host", s.host, "--port", str(s.port), "--workers", str(max(1, s.workers)),
                       "--no-access-log", "--log-level", "info"], env=env, cwd=str(PROJECT_ROOT))
    procs.wait_for_port(s.host, s.port, 60, "API", procs.log_dir() / f"{NAME}.log")
    return how


def stop() -> bool:
    return procs.stop(NAME)


def status() -> str:
    s = get_settings().api
    up = procs.port_open(s.host, s.port)
    return f"api {s.host}:{s.port}: {'up' if up else 'down'}" + (f" ({_url()}/docs)" if up else "")
