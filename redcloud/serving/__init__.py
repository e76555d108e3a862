"""Serving: the published snapshot of gold + marts (``snapshot``), built by the ``publish`` stage."""
