"""Model outputs: member vitality, cadre evaluation (top factors), branch innovation (archetypes and
anomalies), integrity portrait with evidence (restricted: the ``integrity`` role)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from redcloud.api.db import page
from redcloud.api.deps import MAX_ID, CtxDep, IsoDate, OrgFilter, Page, PageDep
from redcloud.api.errors import ApiError, not_found

router = APIRouter(tags=["模型结果"])

CadreId = Annotated[int, Path(ge=1, le=MAX_ID, description="干部 ID")]
Text = Annotated[str | None, Query(max_length=40)]
Score = Annotated[float | None, Query(ge=-1e9, le=1e9)]

SCORE_COLUMNS = ("vitality_index", "score", "innovation_score", "risk_score", "predicted_score")


def _filters(ctx, table: str, **values) -> list[tuple[str, list]]:
    """Equality filters on columns that must exist in ``table`` (else 400 unsupported_filter)."""
    cols = ctx.reader.cols(table)
    out = []
    for col, v in values.items():
        if v is None:
            continue
        if col not in cols:
            raise ApiError(400, "unsupported_filter", f"数据表 {table} 不支持按 {col} 筛选")
        # compared as text: a filter never fails on a column type it did not expect
        text = v.isoformat() if isinstance(v, dt.date) else (str(v).lower() if isinstance(v, bool) else str(v))
        out.append((f'cast(t."{col}" as varchar) = ?', [text]))
    return out


def _score_range(ctx, table: str, lo, hi) -> list[tuple[str, list]]:
    if lo is None and hi is None:
        return []
    cols = ctx.reader.cols(table)
    col = next((c for c in SCORE_COLUMNS if c in cols), None)
    if col is None:
        raise ApiError(400, "unsupported_filter", f"数据表 {table} 没有可筛选的分值字段")
    out = []
    if lo is not None:
        out.append((f't."{col}" >= ?', [lo]))
    if hi is not None:
        out.append((f't."{col}" <= ?', [hi]))
    return out


def _person_col(ctx, table: str) -> str:
    cols = ctx.reader.cols(table)
    for c in ("cadre_id", "member_id"):
        if c in cols:
            return c
    raise ApiError(503, "table_unscoped", f"数据表 {table} 缺少人员字段")


def _list(ctx, table, root, where, order, pg, person=None) -> Page:
    limit, offset = pg
    items, total = page(ctx.reader, table, root, where, order, limit, offset, ctx.principal.sees_pii)
    for kind in (person,) if person else ("member", "cadre"):
        col = f"{kind}_id"
        if items and col in items[0]:
            ctx.saw(kind, items, col)
    return ctx.page(items, total, limit, offset)


@router.get("/vitality", response_model=Page, summary="党员活力指数列表")
def vitality(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, month: Annotated[IsoDate | None, Query()] = None,
             min_score: Score = None, max_score: Score = None) -> Page:
    t = "score_member_vitality"
    where = _filters(ctx, t, month=month) + _score_range(ctx, t, min_score, max_score)
    return _list(ctx, t, ctx.subtree_root(org_id), where, ["-month", "member_id"], pg, "member")


@router.get("/cadres/evaluations", response_model=Page, summary="干部考核评价（预测等级、得分与主要因素）")
def cadre_evaluations(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                      year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
                      grade_label: Annotated[str | None, Query(max_length=40, description="预测等级：优秀/称职/基本称职/不称职")] = None,
                      min_score: Score = None, max_score: Score = None) -> Page:
    t = "score_cadre_evaluation"
    where = _filters(ctx, t, year=year, grade_label=grade_label) + _score_range(ctx, t, min_score, max_score)
    return _list(ctx, t, ctx.subtree_root(org_id), where, ["-year", "cadre_id"], pg, "cadre")


@router.get("/cadres/{cadre_id}/evaluation", response_model=Page, summary="单个干部的考核评价（历年）")
def cadre_evaluation(ctx: CtxDep, cadre_id: CadreId, pg: PageDep) -> Page:
    t = "score_cadre_evaluation"
    res = _list(ctx, t, ctx.scope, [(f't."{_person_col(ctx, t)}" = ?', [cadre_id])], ["-year"], pg, "cadre")
    if res.total == 0:
        raise not_found("干部考核结果")
    return res


@router.get("/branches/innovation", response_model=Page, summary="基层党组织创新评分、类型（聚类）与异常")
def branch_innovation(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                      quarter_start: Annotated[IsoDate | None, Query(description="季度首日，如 2025-10-01")] = None,
                      archetype: Text = None,
                      anomalies_only: Annotated[bool, Query(description="只看异常")] = False) -> Page:
    t = "score_branch_innovation"
    where = _filters(ctx, t, quarter=quarter_start, archetype=archetype)   # the model writes ``quarter``
    if anomalies_only:
        cols = ctx.reader.cols(t)
        col = next((c for c in ("is_anomaly", "anomaly", "is_anomalous") if c in cols), None)
        if col is None:
            raise ApiError(400, "unsupported_filter", f"数据表 {t} 没有异常标记字段")
        where.append((f't."{col}"', []))
    return _list(ctx, t, ctx.subtree_root(org_id), where, ["-quarter", "org_id"], pg)


@router.get("/branches/signals", response_model=Page, summary="会议记录异常信号（非工作日、签到雷同、人数超员）")
def branch_signals(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                   suspicious_only: Annotated[bool, Query(description="只看可疑会议")] = True,
                   quarter_start: Annotated[IsoDate | None, Query()] = None) -> Page:
    t = "fct_meeting_signals"
    where = _filters(ctx, t, quarter_start=quarter_start)
    if suspicious_only:
        where.append(("t.is_suspicious", []))
    return _list(ctx, t, ctx.subtree_root(org_id), where, ["-meeting_date", "meeting_id"], pg)


class Portrait(BaseModel):
    portrait: list[dict[str, Any]]
    evidence: list[dict[str, Any]]
    snapshot_id: str


@router.get("/integrity", response_model=Page, summary="诚信画像列表（受限：需 integrity 权限）")
def integrity(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, min_score: Score = None,
              max_score: Score = None) -> Page:
    ctx.require_role("integrity")
    t = "score_integrity_portrait"
    return _list(ctx, t, ctx.subtree_root(org_id), _score_range(ctx, t, min_score, max_score),
                 ["-risk_score", "cadre_id"], pg)


@router.get("/integrity/{cadre_id}", response_model=Portrait, summary="单个干部诚信画像及证据（受限）")
def integrity_one(ctx: CtxDep, cadre_id: CadreId) -> Portrait:
    ctx.require_role("integrity")
    t = "score_integrity_portrait"
    pcol = _person_col(ctx, t)
    items, total = page(ctx.reader, t, ctx.scope, [(f't."{pcol}" = ?', [cadre_id])], ["-as_of_date"], 100, 0,
                        ctx.principal.sees_pii)
    if not total:
        raise not_found("诚信画像")
    evidence = []
    if ctx.reader.has("integrity_evidence"):
        ecol = _person_col(ctx, "integrity_evidence")
        evidence, _ = page(ctx.reader, "integrity_evidence", ctx.scope, [(f't."{ecol}" = ?', [cadre_id])],
                           [], 1000, 0, ctx.principal.sees_pii)
    ctx.saw(pcol.removesuffix("_id"), items, pcol)
    return Portrait(portrait=items, evidence=evidence, snapshot_id=ctx.snapshot_id)
