"""The FastAPI application: ``create_app()``; serve with ``uvicorn --factory redcloud.api.app:create_app``."""

from __future__ import annotations

import logging
import time

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse

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


def create_app(snapshots=None) -> FastAPI:
    """The app; it reads the snapshots of ``[serving]`` (the process's settings), or of ``snapshots``
    (a :class:`redcloud.serving.snapshot.Snapshots`, e.g. another serving folder in a test)."""
    from redcloud.api.db import POOL, Pool

    _logging()
    app = FastAPI(title="党建红云 运营数据接口", version="1.0.0", description=DESCRIPTION,
                  openapi_url="/openapi.json", docs_url="/docs", redoc_url="/redoc")
    app.state.pool = POOL if snapshots is None else Pool(snapshots=snapshots)
    errors.install(app)
    app.include_router(api_router, prefix="/api/v1")

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/docs")

    @app.middleware("http")
    async def access_log(request: Request, call_next):
        t0 = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            st = request.state
            if getattr(st, "etag", None) and status == 200:
                response.headers["ETag"] = st.etag
                response.headers["Cache-Control"] = "private, no-cache"
            if getattr(st, "snapshot_id", None):
                response.headers["X-Snapshot-Id"] = st.snapshot_id
            return response
        finally:
            ms = round((time.perf_counter() - t0) * 1000, 2)
            p = getattr(request.state, "principal", None)
            log.info("%s %s %s %.1fms sub=%s", request.method, request.url.path, status, ms, p.sub if p else "-")
            if request.url.path.startswith("/api/"):
                try:
                    audit.write({
                        "sub": p.sub if p else None, "auth": p.auth if p else None,
                        "scope_org_id": p.org_id if p else None, "roles": sorted(p.roles) if p else [],
                        "method": request.method, "path": request.url.path, "query": str(request.url.query),
                        "status": status, "snapshot_id": getattr(request.state, "snapshot_id", None),
                        "persons": getattr(request.state, "persons", []), "ms": ms,
                        "client": request.client.host if request.client else None})
                except OSError:
                    log.exception("audit write failed")

    return app
