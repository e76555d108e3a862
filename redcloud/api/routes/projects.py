"""帮扶 projects: lifecycle state as of the snapshot's day (gold's rule, read from ``mart_poverty_projects``),
and the 督办预警/逾期督办/自动注销 alerts raised about each. Scoped by the project's village."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from redcloud.api.db import page
from redcloud.api.deps import MAX_ID, CtxDep, OrgFilter, Page, PageDep
from redcloud.api.errors import not_found
from redcloud.api.routes.alerts import protect_alert
from redcloud.api.routes.scores import _filters
from redcloud.rules.vocab import PROJECT_STATES

router = APIRouter(prefix="/projects", tags=["帮扶项目"])

TABLE = "mart_poverty_projects"
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="帮扶项目 ID")]
Text = Annotated[str | None, Query(max_length=40)]


class Project(BaseModel):
    project: dict[str, Any]
    alerts: list[dict[str, Any]]
    snapshot_id: str


@router.get("", response_model=Page, summary="帮扶项目列表（生命周期状态、督办预警、逾期）")
def list_projects(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                  project_status: Annotated[str | None, Query(max_length=20, description="项目状态：" + "、".join(PROJECT_STATES))] = None,
                  category: Text = None,
                  deadline_warning: Annotated[bool | None, Query(description="只看（或排除）进入督办预警期的项目")] = None,
                  is_overdue: Annotated[bool | None, Query(description="只看（或排除）已逾期项目")] = None,
                  cadre_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="责任干部 ID")] = None) -> Page:
    where = _filters(ctx, TABLE, project_status=project_status, category=category, deadline_warning=deadline_warning,
                     is_overdue=is_overdue, cadre_id=cadre_id)
    limit, offset = pg
    items, total = page(ctx.reader, TABLE, ctx.subtree_root(org_id), where, ["deadline", "project_id"], limit, offset,
                        ctx.principal.sees_pii)
    return ctx.page(items, total, limit, offset)


@router.get("/{project_id}", response_model=Project, summary="单个帮扶项目：状态与相关督办预警")
def get_project(ctx: CtxDep, project_id: ProjectId) -> Project:
    items, total = page(ctx.reader, TABLE, ctx.scope, [("t.project_id = ?", [project_id])], [], 1, 0,
                        ctx.principal.sees_pii)
    if not total:
        raise not_found("帮扶项目")
    alerts = []
    if ctx.reader.has("alerts"):
        alerts = ctx.reader.rows("""select t.* from alerts t where t.subject_type = 'project' and t.subject_id = ?
                                    order by t.first_seen, t.alert_id""", [str(project_id)])
        alerts = [protect_alert(a, ctx.principal.sees_pii) for a in alerts]
    return Project(project=items[0], alerts=alerts, snapshot_id=ctx.snapshot_id)
