"""驻村 (village-stationed cadres): the 驻村工作时间轴 of a cadre (``gold/village_timeline``, rebuilt by
the alerts stage). Scoped by the village the cadre is stationed in."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from redcloud.api.db import mask_name, page, protect
from redcloud.api.deps import CtxDep, IsoDate, OrgFilter, Page, PageDep
from redcloud.api.errors import not_found
from redcloud.api.routes.scores import CadreId, _filters

router = APIRouter(tags=["驻村工作"])


def mask_timeline_row(row: dict, sees_pii: bool) -> dict:
    """The timeline's sentences name the cadre: masked there too, like the name column."""
    if sees_pii:
        return row
    name = row.get("cadre_name")
    if isinstance(name, str) and name and isinstance(row.get("detail"), str):
        row["detail"] = row["detail"].replace(name, mask_name(name))
    return protect(row, False)


@router.get("/cadres/{cadre_id}/village-timeline", response_model=Page,
            summary="驻村工作时间轴（派驻开始、每日工作记实、未记实、提醒）")
def village_timeline(ctx: CtxDep, cadre_id: CadreId, pg: PageDep, org_id: OrgFilter = None,
                     date_from: Annotated[IsoDate | None, Query(description="起始日期（含）")] = None,
                     date_to: Annotated[IsoDate | None, Query(description="截止日期（含）")] = None,
                     event_type: Annotated[str | None, Query(max_length=20, description="事件类型，如 派驻开始、工作记实、未记实、提醒")] = None) -> Page:
    t = "village_timeline"
    where = [("t.cadre_id = ?", [cadre_id])] + _filters(ctx, t, event_type=event_type)
    if date_from is not None:
        where.append(("t.event_date >= ?", [date_from]))
    if date_to is not None:
        where.append(("t.event_date <= ?", [date_to]))
    limit, offset = pg
    items, total = page(ctx.reader, t, ctx.subtree_root(org_id), where, ["event_date", "event_seq", "assignment_id"],
                        limit, offset, True)   # raw names first: the sentences are masked with them below
    if not total and date_from is None and date_to is None and event_type is None:
        raise not_found("驻村工作时间轴")
    items = [mask_timeline_row(r, ctx.principal.sees_pii) for r in items]
    ctx.saw("cadre", items, "cadre_id")
    return ctx.page(items, total, limit, offset)
