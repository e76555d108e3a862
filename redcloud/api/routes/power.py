"""数据铁笼 power operations per department, item, handler and month (``mart_power_operation_monthly``):
operations, on time, overdue, open, complaints and the monthly rankings. A department is the
organisation its 部门编码 names (:func:`redcloud.contracts.dept_org_sql`); rows are scoped by it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from redcloud.api.db import page
from redcloud.api.deps import CtxDep, IsoDate, OrgFilter, Page, PageDep
from redcloud.api.routes.scores import _filters
from redcloud.contracts import dept_org_sql

router = APIRouter(prefix="/power-operations", tags=["数据铁笼"])

TABLE = "mart_power_operation_monthly"


@router.get("", response_model=Page, summary="权力运行情况（按部门、事项、经办人、月份）")
def power_operations(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                     month: Annotated[IsoDate | None, Query(description="月份首日，如 2025-12-01")] = None,
                     dept_code: Annotated[str | None, Query(max_length=20, description="部门编码")] = None,
                     item_name: Annotated[str | None, Query(max_length=60, description="事项名称")] = None,
                     overdue_only: Annotated[bool, Query(description="只看有超期办件的")] = False) -> Page:
    where = _filters(ctx, TABLE, month=month, dept_code=dept_code, item_name=item_name)
    if overdue_only:
        where.append(("t.overdue > 0", []))
    limit, offset = pg
    items, total = page(ctx.reader, TABLE, ctx.subtree_root(org_id), where,
                        ["-month", "dept_month_rank", "dept_code", "item_name", "handler_month_rank"], limit, offset,
                        ctx.principal.sees_pii, scope_sql=dept_org_sql("t.dept_code"))
    return ctx.page(items, total, limit, offset)
