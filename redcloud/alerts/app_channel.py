"""The phone app as a second delivery channel of the outbox.

The app polls ``GET /api/v1/inbox`` with its user's credential (subject = the user's app account,
the local part of the outbox recipient: ``cadre-<id>``, ``member-<id>`` or ``org-<id>``) and gets
that person's messages from the published snapshot's ``alert_outbox``; ``POST /api/v1/inbox/{id}/ack``
records that the person saw one. Acknowledgements go to an append-only JSON-lines file
(``[api] inbox_acks``, one line per first acknowledgement, written with O_APPEND so several API
workers can share it). The alerts stage copies them into the outbox's ``app_read_at`` column, so the
outbox records delivery per channel: ``sent_at`` (e-mail accepted by the SMTP server) and
``app_read_at`` (seen in the app). A message is acknowledged once: a second acknowledgement, or a
rerun of the same day (which enqueues nothing new), changes nothing on either channel.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from redcloud.lake import Lake

_lock = threading.Lock()
ACCOUNT = re.compile(r"(cadre|member|org)-(\d{1,15})")


def parse_account(account: str) -> tuple[str, int] | None:
    m = ACCOUNT.fullmatch(account or "")
    return (m.group(1), int(m.group(2))) if m else None


def acks_path(settings) -> Path:
    a = settings.api
    return Path(a.inbox_acks) if a.inbox_acks else Path(settings.paths.run_dir) / "api" / "inbox_acks.jsonl"


def read_acks(path: Path, account: str | None = None) -> dict[str, dict]:
    """message_id -> its first acknowledgement ({"message_id", "account", "read_at"})."""
    out: dict[str, dict] = {}
    if not path.exists():
        return out
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                r = json.loads(line)
            except ValueError:   # a torn last line of a crashed writer: the ack is simply not recorded
                continue
            if (account is None or r.get("account") == account) and r.get("message_id") not in out:
                out[r["message_id"]] = r
    return out


def acknowledge(path: Path, message_id: str, account: str) -> dict:
    """Record that ``account`` saw ``message_id``; returns the (first) acknowledgement."""
    with _lock:
        first = read_acks(path, account).get(message_id)
        if first is not None:
            return first
        rec = {"message_id": message_id, "account": account,
               "read_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(rec, ensure_ascii=False) + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return rec


def sync(lake: Lake, path: Path, outbox_table: str = "alert_outbox") -> int:
    """Copy acknowledgements into the outbox's ``app_read_at`` (only where still empty); returns how
    many messages were marked."""
    acks = read_acks(path)
    if not acks or not lake.exists("ops", outbox_table):
        return 0
    data = pa.table({"message_id": list(acks),
                     "app_read_at": [dt.datetime.fromisoformat(a["read_at"]) for a in acks.values()]},
                    schema=pa.schema([("message_id", pa.string()), ("app_read_at", pa.timestamp("us", tz="UTC"))]))
    res = (DeltaTable(lake.path("ops", outbox_table))
           .merge(data, "t.message_id = s.message_id", source_alias="s", target_alias="t")
           .when_matched_update({"app_read_at": "s.app_read_at"}, predicate="t.app_read_at is null")
           .execute())
    return int(res.get("num_target_rows_updated", 0))
