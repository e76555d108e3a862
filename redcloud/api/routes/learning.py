"""学习问答 compliance per cadre and per unit by month (``mart_learning_compliance``: official working
days required and answered). Scoped by the cadre's unit."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from redcloud.api.db import page
from redcloud.api.deps import MAX_ID, CtxDep, IsoDate, OrgFilter, Page, PageDep
from redcloud.api.errors import not_found
from redcloud.api.routes.scores import CadreId, _filters

router = APIRouter(tags=["学习问答"])

TABLE = "mart_learning_compliance"
Month = Annotated[IsoDate | None, Query(description="月份首日，如 2025-12-01")]


@router.get("/learning/compliance", response_model=Page, summary="学习问答完成情况（按干部或单位、按月）")
def compliance(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
               grain: Annotated[Literal["cadre", "unit"], Query(description="cadre：每名干部；unit：每个单位")] = "unit",
               month: Month = None,
               unit_org_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="单位组织 ID")] = None,
               max_rate: Annotated[float | None, Query(ge=0, le=1, description="只看完成率不高于此值的")] = None) -> Page:
    where = _filters(ctx, TABLE, grain=grain, month=month, unit_org_id=unit_org_id)
    if max_rate is not None:
        where.append(("t.compliance_rate <= ?", [max_rate]))
    limit, offset = pg
    items, total = page(ctx.reader, TABLE, ctx.subtree_root(org_id), where,
                        ["-month", "compliance_rate", "entity_id"], limit, offset, ctx.principal.sees_pii)
    ctx.saw("cadre", items, "cadre_id")
    return ctx.page(items, total, limit, offset)


@router.get("/cadres/{cadre_id}/learning", response_model=Page, summary="单个干部的学习问答完成情况（按月）")
def cadre_compliance(ctx: CtxDep, cadre_id: CadreId, pg: PageDep, month: Month = None) -> Page:
    where = _filters(ctx, TABLE, grain="cadre", month=month) + [("t.cadre_id = ?", [cadre_id])]
    limit, offset = pg
    items, total = page(ctx.reader, TABLE, ctx.scope, where, ["-month"], limit, offset, ctx.principal.sees_pii)
    if not total and month is None:
        raise not_found("干部学习问答记录")
    ctx.saw("cadre", items, "cadre_id")
    return ctx.page(items, total, limit, offset)
