"""Request dependencies: who is calling, which snapshot it reads, and the page/ETag plumbing."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, BeforeValidator

from redcloud.api import auth
from redcloud.api.db import Reader, in_scope
from redcloud.api.errors import ApiError
from redcloud.config import get_settings

bearer = HTTPBearer(auto_error=False, description="JWT：`redcloud api token --org <org_id> --sub <name>`")
api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="API 密钥：`redcloud api key --org <org_id> --sub <name>`")

MAX_ID = 2**53  # ids are JSON-safe integers; larger values are rejected (422), never passed to SQL


def _iso_date(v):
    """Dates are written YYYY-MM-DD: a number (``0`` would be 1970-01-01) or ``20251201`` is refused."""
    if isinstance(v, dt.date) or (isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", v)):
        return v
    raise ValueError("日期须写作 YYYY-MM-DD，例如 2025-12-01")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    snapshot_id: str


@dataclass
class Ctx:
    principal: auth.Principal
    reader: Reader
    request: Request
    persons: list = field(default_factory=list)

    @property
    def scope(self) -> int:
        return self.principal.org_id

    @property
    def snapshot_id(self) -> str:
        return self.reader.snapshot_id

    def saw(self, kind: str, rows: list[dict], col: str) -> None:
        """Record in the audit trail whose personal data this response carries."""
        ids = sorted({r[col] for r in rows if r.get(col) is not None})
        if ids:
            self.request.state.persons = getattr(self.request.state, "persons", []) + [{"kind": kind, "ids": ids}]

    def subtree_root(self, org_id: int | None) -> int:
        """The organisation a list is restricted to: the caller's own, or a descendant it names."""
        if org_id is None or org_id == self.scope:
            return self.scope
        if not in_scope(self.reader, self.scope, org_id):
            if org_id not in self.reader.snapshot.orgs:
                raise ApiError(404, "org_not_found", f"组织 {org_id} 不存在")
            raise ApiError(403, "out_of_scope", f"组织 {org_id} 不在您的授权范围内")
        return org_id

    @property
    def is_city(self) -> bool:
        """The credential covers the whole city (its organisation is the root of the tree)."""
        path = self.reader.snapshot.orgs.get(self.scope, ((),))[0]
        return len(path) == 1

    def require_city(self, what: str) -> None:
        """City-wide material (the weekly brief) is for city-scope credentials only."""
        if not self.is_city:
            raise ApiError(403, "city_scope_required", f"{what}为全市材料，仅限市级授权的凭证查看")

    def require_role(self, role: str) -> None:
        if role not in self.principal.roles:
            raise ApiError(403, "role_required", f"此接口需要“{role}”权限（受限数据）")

    def page(self, items: list[dict], total: int, limit: int, offset: int) -> Page:
        return Page(items=items, total=total, limit=limit, offset=offset, snapshot_id=self.snapshot_id)


def _principal(request: Request, creds: HTTPAuthorizationCredentials | None, key: str | None) -> auth.Principal:
    try:
        if key:
            return auth.lookup_api_key(key)
        if creds is not None and creds.scheme.lower() == "bearer" and creds.credentials:
            return auth.decode_token(creds.credentials)
    except auth.AuthError as e:
        request.state.auth_error = e.code    # the audit trail records why
        raise ApiError(401, e.code, e.message, {"WWW-Authenticate": "Bearer"}) from None
    request.state.auth_error = "unauthenticated"
    raise ApiError(401, "unauthenticated", "缺少身份凭证：请提供 Authorization: Bearer <令牌> 或 X-API-Key",
                   {"WWW-Authenticate": "Bearer"})


def etag_for(snapshot_id: str, principal: auth.Principal, request: Request) -> str:
    h = hashlib.sha1(f"{principal.key}|{request.url.path}|{sorted(request.query_params.multi_items())}".encode())
    return f'"{snapshot_id}.{h.hexdigest()[:16]}"'


async def get_ctx(request: Request,
            creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
            key: Annotated[str | None, Depends(api_key)]):
    """On the event loop (no thread hop): the credential check and the snapshot lookup are in-memory
    work (the first request after a publish opens the new snapshot, once per worker)."""
    principal = _principal(request, creds, key)
    request.state.principal = principal
    reader = Reader(request.app.state.pool)
    try:
        request.state.snapshot_id = reader.snapshot_id
        reader.cols("dim_organization")
        if principal.org_id not in reader.snapshot.orgs:
            raise ApiError(403, "scope_unknown", f"凭证的组织范围 {principal.org_id} 在当前快照中不存在")
        # If-None-Match is answered by the app (redcloud.api.app) after the route ran and returned 200:
        # a 304 never skips the scope, role or parameter checks
        request.state.etag = etag_for(reader.snapshot_id, principal, request)
        yield Ctx(principal, reader, request)
    finally:
        reader.close()


CtxDep = Annotated[Ctx, Depends(get_ctx)]


def page_params(limit: Annotated[int | None, Query(ge=1, le=1000, description="每页条数")] = None,
                offset: Annotated[int, Query(ge=0, le=10**9, description="偏移量")] = 0) -> tuple[int, int]:
    s = get_settings().api
    return min(limit or s.default_page_size, s.max_page_size), offset


PageDep = Annotated[tuple[int, int], Depends(page_params)]
OrgFilter = Annotated[int | None, Query(ge=1, le=MAX_ID, description="只看该组织（须在授权范围内）及其下级")]
