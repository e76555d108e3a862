"""Append-only audit trail: one JSON line per API request, naming whose personal data was read.

File: ``[api] audit_log`` (default ``<run_dir>/audit/api_access.jsonl``). Each line: time, caller
(subject, auth kind, scope org, roles), method, path, query, status, snapshot id, duration and
``persons`` (the member/cadre ids whose rows were returned). Opened with O_APPEND; never rewritten.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path

from redcloud.config import get_settings

_lock = threading.Lock()


def audit_path() -> Path:
    s = get_settings()
    return Path(s.api.audit_log) if s.api.audit_log else Path(s.paths.run_dir) / "audit" / "api_access.jsonl"


def write(record: dict) -> None:
    record = {"ts": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds"), **record}
    line = (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode()
    p = audit_path()
    with _lock:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def read_all(path: Path | None = None) -> list[dict]:
    p = path or audit_path()
    if not p.exists():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
