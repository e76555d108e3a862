"""The FastAPI application: ``create_app()``; serve with ``uvicorn --factory redcloud.api.app:create_app``."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi_offline import FastAPIOffline
from starlette.datastructures import MutableHeaders

from redcloud.api import audit, errors
from redcloud.api.routes import api_router

log = logging.getLogger("redcloud.api.access")

DESCRIPTION = """党建红云 · 运营数据接口（只读）。

数据来自最新发布的快照（gold 层事实/维度表、dbt 统计集市与模型结果），每个响应的 `ETag`
与 `X-Snapshot-Id` 标明所读快照；带 `If-None-Match` 重复请求且快照未变时返回 304。

**认证**：`Authorization: Bearer <JWT>`（`redcloud api token --org <组织ID> --sub <调用方>`）或
`X-API-Key: <密钥>`（`redcloud api key --org <组织ID> --sub <调用方>`）。凭证携带组织范围：
调用方只能看到该组织及其下级的数据；范围外的对象一律 403/404，不返回数据。

**个人信息**：姓名默认脱敏（如 张*明），出生日期与假名标识置空；`pii` 角色可见全文。
诚信画像接口需要 `integrity` 角色。每次访问（含读取了哪些人员的数据）写入审计日志。

**错误**：`{"error": {"code": "稳定的英文代码", "message": "中文说明"}}`。
"""


def _logging() -> None:
    root = logging.getLogger("redcloud.api")
    if not root.handlers:
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        root.addHandler(h)
        root.setLevel(logging.INFO)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: ``*`` or a list of entity tags (weak comparison)."""
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


def _audit(request: Request, status: int, ms: float) -> bool:
    """Log the request and, for ``/api/``, append its audit line; False when that line could not be written."""
    st = request.state
    p = getattr(st, "principal", None)
    log.info("%s %s %s %.1fms sub=%s", request.method, request.url.path, status, ms, p.sub if p else "-")
    if not request.url.path.startswith("/api/"):
        return True
    try:
        audit.write({
            "sub": p.sub if p else None, "auth": p.auth if p else None,
            "scope_org_id": p.org_id if p else None, "roles": sorted(p.roles) if p else [],
            "method": request.method, "path": request.url.path, "query": str(request.url.query),
            "status": status, "auth_error": getattr(st, "auth_error", None),
            "snapshot_id": getattr(st, "snapshot_id", None), "persons": getattr(st, "persons", []), "ms": ms,
            "client": request.client.host if request.client else None})
        return True
    except OSError:
        log.exception("audit write failed: %s %s not served", request.method, request.url.path)
        return False


class AccessMiddleware:
    """ETag/304, snapshot header, access log and the audit trail, as a plain ASGI middleware (no extra
    task or stream per request). The response's start is held until its audit line is written: when
    that line cannot be written, the caller gets 503, never unaudited data."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        st = scope.setdefault("state", {})
        request = Request(scope)
        replaced = False   # the app's response was replaced (304 or 503): its body is dropped

        async def send_audited(message):
            nonlocal replaced
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(raw=message["headers"])
                etag = st.get("etag")
                if etag and status == 200:
                    if _matches(request.headers.get("if-none-match"), etag):
                        # only a request that passed every check (credential, scope, role, parameters)
                        status, replaced = 304, True
                        headers = MutableHeaders()
                    headers["ETag"] = etag
                    headers["Cache-Control"] = "private, no-cache"
                if st.get("snapshot_id"):
                    headers["X-Snapshot-Id"] = st["snapshot_id"]
                if not _audit(request, status, round((time.perf_counter() - t0) * 1000, 2)):
                    replaced = True
                    resp = errors.error_json(503, "audit_unavailable",
                                             "审计日志暂不可写，为保证留痕本次请求未予响应，请稍后重试")
                    return await resp(scope, receive, send)
                await send({"type": "http.response.start", "status": status, "headers": headers.raw})
                if status == 304:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
            elif not replaced:
                await send(message)

        try:
            await self.app(scope, receive, send_audited)
        except Exception:
            _audit(request, 500, round((time.perf_counter() - t0) * 1000, 2))
            raise


def create_app(snapshots=None) -> FastAPI:
    """The app; it reads the snapshots of ``[serving]`` (the process's settings), or of ``snapshots``
    (a :class:`redcloud.serving.snapshot.Snapshots`, e.g. another serving folder in a test)."""
    from redcloud.api.db import POOL, Pool

    _logging()
    # Swagger UI loads its script and styles from this server (fastapi-offline's copies): an intranet
    # deployment reaches no CDN. No ReDoc page: its standalone bundle always fetches a logo from a CDN.
    app = FastAPIOffline(title="党建红云 运营数据接口", version="1.0.0", description=DESCRIPTION,
                         openapi_url="/openapi.json", docs_url="/docs", redoc_url=None,
                         static_url="/docs-assets")
    app.state.pool = POOL if snapshots is None else Pool(snapshots=snapshots)
    errors.install(app)
    app.include_router(api_router, prefix="/api/v1")

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/docs")

    app.add_middleware(AccessMiddleware)
    return app
