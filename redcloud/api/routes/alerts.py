"""自流程化 alerts (reminders, escalations, 督办预警, closures, reports) within the caller's subtree.

``gold/alerts`` names a subject (cadre, 帮扶 project, 驻村 assignment, or the whole city); a row
belongs to the organisation of its subject: the cadre's unit, the project's or assignment's village,
the city for city-wide reports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from redcloud.api.db import cadre_org_sql, mask_name, page
from redcloud.api.deps import CtxDep, IsoDate, OrgFilter, Page, PageDep
from redcloud.api.routes.scores import _filters

router = APIRouter(prefix="/alerts", tags=["预警提醒"])
Text = Annotated[str | None, Query(max_length=40)]

_SUBJECT_ORG = f"""(case t.subject_type
    when 'cadre' then {cadre_org_sql("try_cast(t.subject_id as bigint)")}
    when 'project' then (select p.village_org_id from fct_project_status p
                         where p.project_id = try_cast(t.subject_id as bigint))
    when 'assignment' then (select any_value(v.village_org_id) from fct_village_work_daily v
                            where v.assignment_id = try_cast(t.subject_id as bigint))
    when 'org' then try_cast(t.subject_id as bigint)
    when 'volunteer_need' then (select v.org_id from fct_volunteer_need v
                                where v.need_id = try_cast(t.subject_id as bigint))
    when 'question' then (select q.org_id from fct_member_question q
                          where q.question_id = try_cast(t.subject_id as bigint))
    when 'disclosure' then (select d.org_id from fct_party_disclosure d
                            where d.disclosure_id = try_cast(t.subject_id as bigint))
    when 'city' then (select o.org_id from dim_organization o where o.depth = 0 limit 1)
    else null end)"""


def protect_alert(row: dict, sees_pii: bool) -> dict:
    """A cadre's name masked (also inside an assignment's subject name) and recipients dropped, unless pii."""
    if sees_pii:
        return row
    if row.get("subject_type") in ("cadre", "assignment") and isinstance(row.get("subject_name"), str):
        name, sep, rest = row["subject_name"].partition("（")   # "张三（2025年11月）": the name part only
        row["subject_name"] = mask_name(name) + sep + rest
    if "recipients" in row:
        row["recipients"] = None
    return row


@router.get("", response_model=Page, summary="预警与提醒列表（学习问答提醒/升级、帮扶督办预警、驻村记实提醒等）")
def list_alerts(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                rule: Annotated[str | None, Query(max_length=40, description="规则，如 learning_reminder、project_overdue")] = None,
                level: Annotated[str | None, Query(max_length=40, description="级别：reminder、warning、escalation、closure、report")] = None,
                status: Annotated[str | None, Query(max_length=40, description="状态：open（未解除）或 resolved（已解除）")] = None,
                subject_type: Annotated[str | None, Query(max_length=40, description="对象类型：cadre、project、assignment、org、disclosure、question、volunteer_need、city")] = None,
                subject_id: Annotated[str | None, Query(max_length=40, description="对象 ID（与 subject_type 一起使用）")] = None,
                logical_date: Annotated[IsoDate | None, Query(description="产生该条记录的运行日期")] = None,
                date_from: Annotated[IsoDate | None, Query(description="最近出现日期不早于此日")] = None,
                date_to: Annotated[IsoDate | None, Query(description="首次出现日期不晚于此日")] = None) -> Page:
    t = "alerts"
    where = _filters(ctx, t, rule=rule, level=level, status=status, subject_type=subject_type, subject_id=subject_id,
                     logical_date=logical_date)
    if date_from is not None:
        where.append(("t.last_seen >= ?", [date_from]))
    if date_to is not None:
        where.append(("t.first_seen <= ?", [date_to]))
    limit, offset = pg
    cols = ctx.reader.cols(t)
    scope_sql = _SUBJECT_ORG if "subject_type" in cols else None
    items, total = page(ctx.reader, t, ctx.subtree_root(org_id), where, ["-last_seen", "-since", "alert_id"],
                        limit, offset, ctx.principal.sees_pii, scope_sql=scope_sql)
    items = [protect_alert(r, ctx.principal.sees_pii) for r in items]
    cadres = [{"cadre_id": int(r["subject_id"])} for r in items
              if r.get("subject_type") == "cadre" and str(r.get("subject_id", "")).isdigit()]
    ctx.saw("cadre", cadres, "cadre_id")
    return ctx.page(items, total, limit, offset)
