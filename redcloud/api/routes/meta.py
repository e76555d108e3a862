"""Snapshot metadata and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from redcloud.api.deps import CtxDep

router = APIRouter(tags=["快照"])


class Health(BaseModel):
    status: str
    snapshot_id: str


class SnapshotOut(BaseModel):
    snapshot_id: str
    run_id: str | None
    logical_date: str | None
    published_at: str | None
    sources: list[dict[str, Any]]


@router.get("/health", response_model=Health, summary="健康检查（无需认证）")
def health(request: Request) -> Health:
    s = request.app.state.pool.current()
    return Health(status="ok", snapshot_id=s.snapshot_id)


@router.get("/snapshot", response_model=SnapshotOut, summary="当前发布快照：运行批次、业务日期与各源表 Delta 版本")
def snapshot(ctx: CtxDep) -> SnapshotOut:
    r = ctx.reader
    st = r.rows("select snapshot_id, run_id, logical_date, published_at from _snapshot")[0]
    src = r.rows("select table_name, layer, delta_version, rows from _snapshot_sources order by layer, table_name")
    if not ctx.is_city:   # whole-table row counts are city-wide figures
        src = [{**x, "rows": None} for x in src]
    return SnapshotOut(**{k: (None if v is None else str(v)) for k, v in st.items()}, sources=src)
