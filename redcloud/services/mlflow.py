"""MLflow tracking UI for `make up`: the project's SQLite store and artifact root, on loopback only."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

from redcloud.config import get_settings
from redcloud.services import procs

NAME = "mlflow"


def _url() -> str:
    s = get_settings().mlflow
    return f"http://{s.ui_host}:{s.ui_port}"


def argv() -> list[str]:
    s = get_settings().mlflow
    if s.tracking_uri.startswith("sqlite:///"):
        Path(s.tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    Path(s.artifact_root).mkdir(parents=True, exist_ok=True)
    exe = Path(sys.executable).with_name("mlflow")
    return [str(exe), "server", "--host", s.ui_host, "--port", str(s.ui_port),
            "--backend-store-uri", s.tracking_uri, "--artifacts-destination", s.artifact_root, "--workers", "1"]


def healthy(timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{_url()}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


def start(timeout: float = 180) -> str:
    s = get_settings().mlflow
    if procs.read_pid(NAME) or procs.port_open(s.ui_host, s.ui_port):
        return f"MLflow UI: already up on {_url()} (no login)"
    procs.start(NAME, argv())
    procs.wait_for_port(s.ui_host, s.ui_port, timeout, "MLflow UI", procs.log_dir() / f"{NAME}.log")
    return f"MLflow UI: {_url()} (no login; store {s.tracking_uri})"


def stop() -> bool:
    return procs.stop(NAME)


def status() -> str:
    pid = procs.read_pid(NAME)
    if pid and healthy():
        return f"MLflow UI: up (pid {pid}) on {_url()}"
    if pid:
        return f"MLflow UI: starting or unhealthy (pid {pid}) on {_url()}"
    return "MLflow UI: down"
