"""每周决策参考: the latest weekly brief (index written by the brief stage).

The brief is city-wide (every county's figures, escalated cadres' units, suspicious branches): only a
credential scoped to the city may list or download it (403 ``city_scope_required`` otherwise)."""

from __future__ import annotations

import json
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse
from pydantic import BaseModel

from redcloud.api.deps import CtxDep
from redcloud.api.errors import ApiError
from redcloud.config import get_settings

router = APIRouter(prefix="/briefs", tags=["每周决策参考"])


class Brief(BaseModel):
    week: str
    snapshot_id: str | None = None
    html_url: str | None = None
    pdf_url: str | None = None
    extra: dict[str, Any] = {}


def _index() -> list[dict]:
    out = FsPath(get_settings().brief.out_dir)
    f = out / "index.json"
    if not f.exists():
        raise ApiError(404, "brief_not_found", "尚未生成每周决策参考")
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError):
        raise ApiError(503, "brief_index_unreadable", "决策参考索引暂不可读，请稍后重试") from None
    items = data.get("briefs", data) if isinstance(data, dict) else data
    items = [x for x in items if isinstance(x, dict) and x.get("week")]
    if not items:
        raise ApiError(404, "brief_not_found", "尚未生成每周决策参考")
    return sorted(items, key=lambda x: str(x["week"]))


def _brief(x: dict) -> Brief:
    w = str(x["week"])
    return Brief(week=w, snapshot_id=x.get("snapshot_id"),
                 html_url=f"/api/v1/briefs/{w}/html" if x.get("html") else None,
                 pdf_url=f"/api/v1/briefs/{w}/pdf" if x.get("pdf") else None,
                 extra={k: v for k, v in x.items() if k not in ("week", "html", "pdf", "snapshot_id")})


@router.get("", response_model=list[Brief], summary="已生成的决策参考（按周）")
def list_briefs(ctx: CtxDep) -> list[Brief]:
    ctx.require_city("每周决策参考")
    return [_brief(x) for x in _index()]


@router.get("/latest", response_model=Brief, summary="最新一期决策参考")
def latest(ctx: CtxDep) -> Brief:
    ctx.require_city("每周决策参考")
    return _brief(_index()[-1])


@router.get("/{week}/{fmt}", summary="下载某周决策参考（html 或 pdf）", response_class=FileResponse,
            responses={200: {"content": {"text/html": {}, "application/pdf": {}}}})
def download(ctx: CtxDep, week: Annotated[str, Path(pattern=r"^\d{4}-W\d{2}$", description="ISO 周，如 2025-W52")],
             fmt: Annotated[str, Path(pattern=r"^(html|pdf)$")]):
    ctx.require_city("每周决策参考")
    x = next((b for b in _index() if str(b["week"]) == week), None)
    if x is None or not x.get(fmt):
        raise ApiError(404, "brief_not_found", f"{week} 没有 {fmt} 格式的决策参考")
    out = FsPath(get_settings().brief.out_dir).resolve()
    p = FsPath(x[fmt])
    p = (p if p.is_absolute() else out / p).resolve()
    if not p.is_relative_to(out) or not p.is_file():
        raise ApiError(404, "brief_not_found", f"{week} 的决策参考文件缺失")
    return FileResponse(p, media_type="application/pdf" if fmt == "pdf" else "text/html; charset=utf-8")
