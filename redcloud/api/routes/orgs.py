"""Organisations: the tree within the caller's scope, statistics rolled up over subtrees, composition."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from redcloud.api.db import SUBTREE, Reader
from redcloud.api.deps import MAX_ID, CtxDep, OrgFilter, Page, PageDep
from redcloud.api.errors import ApiError, not_found

router = APIRouter(prefix="/orgs", tags=["组织"])

OrgId = Annotated[int, Path(ge=1, le=MAX_ID, description="组织 ID")]

# statistics categories of dim_member (composition fallback when mart_member_composition is absent)
CATEGORIES = {"gender": "性别", "age_band": "年龄段", "party_years_band": "党龄段", "education": "学历",
              "ethnicity": "民族", "occupation": "职业", "party_status": "党员类别", "branch_type": "支部类型"}

_MEMBERS_ROLLUP = ("(select unnest(mo.path) as anc, count(*) as n from dim_member m "
                   "join dim_organization mo on mo.org_id = m.org_id where m.is_on_roll group by 1)")


class OrgStats(BaseModel):
    org: dict[str, Any]
    stats: dict[str, Any]
    snapshot_id: str


@router.get("", response_model=Page, summary="授权范围内的组织列表（含下级党员数汇总）")
def list_orgs(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
              parent_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="只列该组织的直接下级")] = None,
              org_level: Annotated[str | None, Query(max_length=20, description="组织层级，如 区县委、乡镇街道、党支部")] = None,
              org_type: Annotated[str | None, Query(max_length=20, description="组织类型，如 村、社区、机关")] = None) -> Page:
    root = ctx.subtree_root(org_id)
    where = []
    if parent_id is not None:
        where.append(("t.parent_org_id = ?", [parent_id]))
    if org_level:
        where.append(("t.org_level = ?", [org_level]))
    if org_type:
        where.append(("t.org_type = ?", [org_type]))
    r = ctx.reader
    clauses = ["list_contains(t.path, ?)"] + [w for w, _ in where]
    params = [root] + [p for _, ps in where for p in ps]
    cond = " and ".join(clauses)
    total = r.scalar(f"select count(*) from dim_organization t where {cond}", params)
    limit, offset = pg
    items = r.rows(f"select t.*, coalesce(rm.n, 0) as members_subtree from dim_organization t "
                   f"left join {_MEMBERS_ROLLUP} rm on rm.anc = t.org_id where {cond} "
                   "order by t.depth, t.org_id limit ? offset ?", params + [limit, offset])
    return ctx.page(items, int(total), limit, offset)


def _org(ctx, org_id: int) -> dict:
    rows = ctx.reader.rows("select * from dim_organization where org_id = ? and list_contains(path, ?)",
                           [org_id, ctx.scope])
    if not rows:
        raise not_found("组织")
    return rows[0]


def org_stats(r: Reader, org_id: int) -> dict:
    """Statistics of one organisation's whole subtree."""
    st: dict[str, Any] = {}
    sub = SUBTREE
    # members on the roll (在册): gold's is_on_roll, the one definition every reader counts
    st["members"] = r.scalar(f"select count(*) from dim_member where is_on_roll and org_id in {sub}", [org_id])
    st["members_by_party_status"] = {x["party_status"]: x["n"] for x in r.rows(
        f"select party_status, count(*) n from dim_member where is_on_roll and org_id in {sub} group by 1 order by 1",
        [org_id])}
    st["organizations_by_level"] = {x["org_level"]: x["n"] for x in r.rows(
        f"select org_level, count(*) n from dim_organization where org_id in {sub} and org_id <> ? group by 1 order by 1",
        [org_id, org_id])}
    if r.has("fct_branch_quarter"):
        q = r.rows(f"""select max(quarter_start) as quarter_start from fct_branch_quarter
                       where quarter_complete and org_id in {sub}""", [org_id])[0]["quarter_start"]
        if q:
            st["latest_quarter"] = r.rows(f"""
                select ? as quarter_start, count(*) as branches,
                       round(avg(sanhui_completion_rate), 4) as sanhui_completion_rate,
                       round(avg(mean_attendance_rate), 4) as mean_attendance_rate,
                       sum(suspicious_meetings) as suspicious_meetings,
                       round(sum(volunteer_hours), 1) as volunteer_hours
                from fct_branch_quarter where quarter_start = ? and org_id in {sub}""", [q, q, org_id])[0]
    if r.has("fct_project_status"):
        # lifecycle states as gold computed them (fct_project_status.status, from [rules])
        st["poverty_projects"] = r.rows(f"""
            select count(*) as total, count(*) filter (where is_overdue) as overdue,
                   count(*) filter (where deadline_warning) as deadline_warning,
                   count(*) filter (where is_closed) as closed
            from fct_project_status where village_org_id in {sub}""", [org_id])[0]
        st["poverty_projects"]["by_status"] = {x["status"]: x["n"] for x in r.rows(
            f"select status, count(*) n from fct_project_status where village_org_id in {sub} group by 1 order by 1",
            [org_id])}
    if r.has("fct_cadre_year"):
        st["cadres"] = r.scalar(f"""select count(distinct cadre_id) from fct_cadre_year
            where year = (select max(year) from fct_cadre_year) and unit_org_id in {sub}""", [org_id])
    return st


@router.get("/{org_id}", response_model=OrgStats, summary="组织详情与统计（按下级汇总）")
def get_org(ctx: CtxDep, org_id: OrgId) -> OrgStats:
    org = _org(ctx, org_id)
    return OrgStats(org=org, stats=org_stats(ctx.reader, org_id), snapshot_id=ctx.snapshot_id)


@router.get("/{org_id}/composition", response_model=Page, summary="党员构成（按类别，含下级汇总）")
def composition(ctx: CtxDep, org_id: OrgId, pg: PageDep,
                category: Annotated[str | None, Query(max_length=40, description="统计类别，如 gender、age_band")] = None) -> Page:
    _org(ctx, org_id)
    r = ctx.reader
    limit, offset = pg
    if r.has("mart_member_composition"):
        cols = r.cols("mart_member_composition")
        where, params = "org_id = ?", [org_id]
        if "as_of_date" in cols:
            where += " and as_of_date = (select max(as_of_date) from mart_member_composition)"
        if category:
            where += " and category = ?"
            params.append(category)
        total = r.scalar(f"select count(*) from mart_member_composition where {where}", params)
        items = r.rows(f"select * from mart_member_composition where {where} order by category, category_value "
                       "limit ? offset ?", params + [limit, offset])
        return ctx.page(items, int(total), limit, offset)
    cats = [category] if category else list(CATEGORIES)
    if category and category not in CATEGORIES:
        raise ApiError(400, "unknown_category", f"未知统计类别 {category}，可选：{'、'.join(CATEGORIES)}")
    union = " union all ".join(
        f"select '{c}' as category, '{CATEGORIES[c]}' as category_label, cast({c} as varchar) as category_value, "
        f"count(*) as members from dim_member where is_on_roll and org_id in {SUBTREE} group by 3" for c in cats)
    rows = r.rows(f"select ? as org_id, * from ({union}) order by category, category_value",
                  [org_id] + [org_id] * len(cats))
    return ctx.page(rows[offset:offset + limit], len(rows), limit, offset)
