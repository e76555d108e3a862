"""Operational API (FastAPI): org-scoped reads of the published serving snapshot.

``create_app()`` in :mod:`redcloud.api.app`; credentials in :mod:`redcloud.api.auth`; see docs/api.md."""
