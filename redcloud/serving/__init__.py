"""Serving: the published snapshot of gold + marts (``snapshot``), built by the ``publish`` stage."""

from redcloud.serving.snapshot import connect, current_path  # noqa: F401
