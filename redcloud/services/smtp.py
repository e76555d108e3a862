"""Local SMTP sink (aiosmtpd) for the demo and tests: accepts every message on [smtp] host/port
and stores it as an .eml file under ``<run_dir>/mail/`` (or ``[smtp] mail_dir``).

File name: ``<received UTC time>-<Message-ID>.eml``; the envelope sender and recipients are
prepended as ``X-Envelope-From``/``X-Envelope-To`` headers. A message whose Message-ID was already
stored is stored again with a ``.dup`` suffix, so duplicates are visible, never hidden.

``python -m redcloud.services.smtp serve --host H --port P --dir D`` runs it in the foreground;
``start()``/``stop()``/``status()`` manage it as a background service (PID file, log).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import signal
import sys
import threading
from pathlib import Path

from redcloud.config import get_settings
from redcloud.services import procs

NAME = "smtp"


def mail_dir() -> Path:
    s = get_settings()
    d = Path(s.smtp.mail_dir) if s.smtp.mail_dir else Path(s.paths.run_dir) / "mail"
    d.mkdir(parents=True, exist_ok=True)
    return d


class SinkHandler:
    """aiosmtpd handler: one .eml file per accepted message."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        m = re.search(rb"^Message-ID:\s*<?([^>\r\n]+)>?", raw, re.IGNORECASE | re.MULTILINE)
        mid = m.group(1).decode("ascii", "replace") if m else "no-message-id"
        safe = re.sub(r"[^A-Za-z0-9_.@-]", "_", mid)[:120]
        head = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        with self._lock:
            stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
            dup = any(self.dir.glob(f"*-{safe}.eml"))
            path = self.dir / f"{stamp}-{safe}.eml{'.dup' if dup else ''}"
            tmp = path.with_suffix(path.suffix + ".part")
            tmp.write_bytes(head + raw)
            tmp.rename(path)
        return "250 Message accepted for delivery"


def serve(host: str, port: int, directory: Path) -> None:
    from aiosmtpd.controller import Controller

    ctl = Controller(SinkHandler(directory), hostname=host, port=port, decode_data=False)
    ctl.start()
    print(f"smtp sink on {host}:{port} -> {directory}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        ctl.stop()


def start() -> str:
    s = get_settings()
    d = mail_dir()
    if not procs.read_pid(NAME):
        if procs.port_open(s.smtp.host, s.smtp.port):
            raise RuntimeError(f"{s.smtp.host}:{s.smtp.port} is already in use by a process we did not start")
        procs.start(NAME, [sys.executable, "-m", "redcloud.services.smtp", "serve", "--host", s.smtp.host,
                           "--port", str(s.smtp.port), "--dir", str(d)])
        procs.wait_for_port(s.smtp.host, s.smtp.port, 20, NAME, procs.log_dir() / f"{NAME}.log")
    return f"SMTP sink: smtp://{s.smtp.host}:{s.smtp.port} (no login; messages stored as .eml in {d})"


def stop() -> bool:
    return procs.stop(NAME)


def status() -> str:
    s = get_settings()
    up = procs.port_open(s.smtp.host, s.smtp.port)
    pid = procs.read_pid(NAME)
    return f"smtp {s.smtp.host}:{s.smtp.port}: {'up' if up else 'down'}" + (f" (pid {pid})" if pid else "")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="redcloud.services.smtp")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--host", default=None)
    sv.add_argument("--port", type=int, default=None)
    sv.add_argument("--dir", default=None)
    args = ap.parse_args(argv)
    s = get_settings()
    serve(args.host or s.smtp.host, args.port or s.smtp.port, Path(args.dir) if args.dir else mail_dir())


if __name__ == "__main__":
    main()
