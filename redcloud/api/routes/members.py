"""Members (党员): list and detail within the caller's subtree; names masked unless the pii role."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from redcloud.api.db import in_scope, page, protect
from redcloud.api.deps import MAX_ID, CtxDep, OrgFilter, Page, PageDep
from redcloud.api.errors import not_found

router = APIRouter(prefix="/members", tags=["党员"])

MemberId = Annotated[int, Path(ge=1, le=MAX_ID, description="党员 ID")]
Text = Annotated[str | None, Query(max_length=40)]


@router.get("", response_model=Page, summary="党员列表（授权范围内，可按组织及统计类别筛选）")
def list_members(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, party_status: Text = None,
                 gender: Text = None, age_band: Text = None, party_years_band: Text = None,
                 education: Text = None, is_mobile: Annotated[bool | None, Query()] = None) -> Page:
    root = ctx.subtree_root(org_id)
    where = [(f"t.{c} = ?", [v]) for c, v in (("party_status", party_status), ("gender", gender),
                                               ("age_band", age_band), ("party_years_band", party_years_band),
                                               ("education", education), ("is_mobile", is_mobile)) if v is not None]
    limit, offset = pg
    items, total = page(ctx.reader, "dim_member", root, where, ["member_id"], limit, offset, ctx.principal.sees_pii)
    ctx.saw("member", items, "member_id")
    return ctx.page(items, total, limit, offset)


def member_row(ctx, member_id: int) -> dict:
    rows = ctx.reader.rows("select * from dim_member where member_id = ?", [member_id])  # index lookup
    rows = [r for r in rows if in_scope(ctx.reader, ctx.scope, r.get("org_id"))]
    if not rows:  # absent and out of scope look the same: never reveal another subtree's members
        raise not_found("党员")
    row = rows[0]
    row["org_name"] = ctx.reader.snapshot.orgs[row["org_id"]][1]
    return protect(row, ctx.principal.sees_pii)


@router.get("/{member_id}", response_model=dict, summary="党员详情")
def get_member(ctx: CtxDep, member_id: MemberId) -> dict:
    row = member_row(ctx, member_id)
    ctx.saw("member", [row], "member_id")
    return {**row, "snapshot_id": ctx.snapshot_id}


@router.get("/{member_id}/vitality", response_model=Page, summary="党员活力指数（按月）")
def member_vitality(ctx: CtxDep, member_id: MemberId, pg: PageDep) -> Page:
    member_row(ctx, member_id)
    limit, offset = pg
    items, total = page(ctx.reader, "score_member_vitality", ctx.scope, [("t.member_id = ?", [member_id])],
                        ["-month", "-as_of_date"], limit, offset, ctx.principal.sees_pii)
    ctx.saw("member", items, "member_id")
    return ctx.page(items, total, limit, offset)
