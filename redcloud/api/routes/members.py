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
    rows = ctx.reader.point_rows("select * from dim_member where member_id = ?", [member_id])
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


# monthly record columns of gold fct_member_month shown on the 成长轨迹, and the vitality model's
MONTH_COLUMNS = ("learning_days", "learning_points", "articles_read", "login_days", "meetings_expected",
                 "meetings_attended", "meetings_excused", "volunteer_records", "volunteer_hours", "amount_due",
                 "amount_paid", "dues_on_time", "dues_days_late")
VITALITY_COLUMNS = ("vitality_index", "vitality_level")


@router.get("/{member_id}/timeline", response_model=Page,
            summary="党员成长轨迹（入党、转正，以及每月学习、组织生活、志愿服务、党费和活力指数）")
def member_timeline(ctx: CtxDep, member_id: MemberId, pg: PageDep) -> Page:
    """Month by month, oldest first: 入党 (join date), 转正 (full-member date) and one 月度记实 item per
    month with activity or an obligation (gold ``fct_member_month``, dated the month's first day, after
    that month's 入党/转正), with that month's vitality index when scored."""
    m = member_row(ctx, member_id)
    r = ctx.reader
    cols = [c for c in MONTH_COLUMNS if c in r.cols("fct_member_month")]
    vit = [c for c in VITALITY_COLUMNS if r.has("score_member_vitality") and c in r.cols("score_member_vitality")]
    vit_join = ("left join (select month, " + ", ".join(f"any_value({c}) as {c}" for c in vit) +
                " from score_member_vitality where member_id = ? group by month) v on v.month = f.month") if vit else ""
    month_cols = ", ".join([f"f.{c}" for c in cols] + [f"v.{c}" for c in vit])
    nulls = ", ".join(f"null as {c}" for c in cols + vit)
    sql = f"""
        select * from (
          select join_date as event_date, 0 as seq, '入党' as event_type, '被接收为预备党员' as detail, {nulls}
            from dim_member where member_id = ? and join_date is not null
          union all
          select full_member_date, 1, '转正', '由预备党员转为正式党员', {nulls}
            from dim_member where member_id = ? and full_member_date is not null
          union all
          select f.month, 2, '月度记实', null, {month_cols}
            from fct_member_month f {vit_join}
            where f.member_id = ?
        ) order by date_trunc('month', event_date), seq, event_date limit ? offset ?"""
    params = [member_id, member_id] + ([member_id] if vit else []) + [member_id]
    limit, offset = pg
    total = r.scalar("""select (select count(join_date) + count(full_member_date) from dim_member where member_id = ?)
                             + (select count(*) from fct_member_month where member_id = ?)""", [member_id, member_id])
    items = [{k: v for k, v in x.items() if k != "seq" and (v is not None or x["event_type"] == "月度记实")}
             for x in r.rows(sql, params + [limit, offset])]
    ctx.saw("member", [m], "member_id")
    return ctx.page(items, int(total or 0), limit, offset)
