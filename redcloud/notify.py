"""Failure notifications for the orchestrator: always logged, and sent by e-mail when configured.

``[airflow] notify`` chooses the channels (``log`` or ``log+email``); e-mail goes through the SMTP
server at ``[smtp] host:port`` from ``[smtp] sender`` to ``[airflow] notify_to``. The Airflow failure
callback (``dags/_common.py``) runs ``python -m redcloud.notify --subject ...`` with the body on stdin,
so the Airflow virtualenv never imports this package.
"""

from __future__ import annotations

import argparse
import logging
import smtplib
import sys
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from redcloud.config import get_settings

log = logging.getLogger(__name__)


def notify(subject: str, body: str) -> list[str]:
    """Log the notification and deliver it on every configured channel; returns the channels used.

    Raises ``OSError``/``smtplib.SMTPException`` when e-mail is configured and cannot be delivered."""
    s = get_settings()
    log.error("%s\n%s", subject, body)
    channels = ["log"]
    if "email" in s.airflow.notify:
        msg = EmailMessage()
        msg["Subject"] = subject
        msg["From"] = s.smtp.sender
        msg["To"] = s.airflow.notify_to
        msg["Date"] = formatdate(localtime=True)
        msg["Message-ID"] = make_msgid(domain="redcloud.local")
        msg.set_content(body)
        with smtplib.SMTP(s.smtp.host, s.smtp.port, timeout=20) as smtp:
            smtp.send_message(msg)
        channels.append(f"email:{s.airflow.notify_to}@{s.smtp.host}:{s.smtp.port}")
    return channels


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m redcloud.notify", description="send a failure notification")
    p.add_argument("--subject", required=True)
    p.add_argument("--body", help="message body (default: read from stdin)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    body = args.body if args.body is not None else sys.stdin.read()
    try:
        channels = notify(args.subject, body)
    except (OSError, smtplib.SMTPException) as e:
        print(f"通知发送失败 (notification not delivered): {e}", file=sys.stderr)
        return 1
    print("notified via " + ", ".join(channels))
    return 0


if __name__ == "__main__":
    sys.exit(main())
