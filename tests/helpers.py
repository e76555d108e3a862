"""Helpers shared by the tests (``tests/`` is on ``sys.path``: ``from helpers import make_ctx``)."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

from redcloud.config import Settings, get_settings

D1, D2 = dt.date(2025, 12, 30), dt.date(2025, 12, 31)   # the test city's last two days


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_for(base: Path, settings: Settings | None = None, **sections) -> Settings:
    """The session's settings with everything a run writes under ``base`` (lake, landing, serving,
    briefs, MLflow), plus any other section changes (e.g. ``rules={...}``)."""
    s = settings or get_settings()
    paths = {"run_dir": str(base / "run"), "lake_root": str(base / "lake"), "landing_dir": str(base / "landing"),
             **sections.pop("paths", {})}
    return s.replace(paths=paths,
                     mlflow={"tracking_uri": f"sqlite:///{base}/run/mlflow/mlflow.db",
                             "artifact_root": str(base / "run" / "mlflow" / "artifacts"),
                             **sections.pop("mlflow", {})},
                     serving={"duckdb_dir": str(base / "run" / "serving"), **sections.pop("serving", {})},
                     brief={"out_dir": str(base / "run" / "briefs"), **sections.pop("brief", {})},
                     **sections)


def make_ctx(settings: Settings, day: dt.date, spark=None, run_id: str | None = None):
    """A run context for ``day`` on ``settings`` (Spark shared with the session when given)."""
    from redcloud.context import RunContext

    return RunContext.create(day, settings, run_id=run_id or f"test__{day.isoformat()}", spark=spark)
