"""The statistics marts (dbt) as org-scoped lists: organisational life by month, 驻村 work by month,
四位一体 岗位责任工作记实 by unit and month, 领导班子 structure and cadre changes by unit, 党务公开 timeliness by branch and quarter, 帮扶 measures and funding by village, 干部调训 by unit and year, members' questions (解决疑难问题) by branch and month, the 志愿服务超市 by county and month,
and the model marts (vitality and cadre evaluation by unit, branch archetypes, integrity flags —
the last behind the ``integrity`` role) and the cadre model's fairness (city scope). Each list is one
mart, filtered on its own columns."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from redcloud.api.db import page
from redcloud.api.deps import MAX_ID, CtxDep, IsoDate, OrgFilter, Page, PageDep
from redcloud.api.routes.scores import _filters

router = APIRouter(prefix="/statistics", tags=["统计集市"])

Month = Annotated[IsoDate | None, Query(description="月份首日，如 2025-12-01")]
Text = Annotated[str | None, Query(max_length=40)]
Year = Annotated[int | None, Query(ge=1900, le=2200, description="年度")]


def _list(ctx, table: str, org_id: int | None, where: list, order: list[str], pg, scope_sql: str | None = None) -> Page:
    limit, offset = pg
    items, total = page(ctx.reader, table, ctx.subtree_root(org_id), where, order, limit, offset,
                        ctx.principal.sees_pii, scope_sql=scope_sql)
    if items and "cadre_id" in items[0]:
        ctx.saw("cadre", items, "cadre_id")
    return ctx.page(items, total, limit, offset)


@router.get("/org-life", response_model=Page, summary="组织生活（按组织、按月：三会一课、主题党日、出勤、党费按时缴纳）")
def org_life(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, month: Month = None, org_type: Text = None) -> Page:
    t = "mart_org_life_monthly"
    return _list(ctx, t, org_id, _filters(ctx, t, month=month, org_type=org_type), ["-month", "org_id"], pg)


@router.get("/village-work", response_model=Page, summary="驻村工作（按派驻、按月：记实率、签到率、最长未记实）")
def village_work(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, month: Month = None,
                 cadre_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="驻村干部 ID")] = None) -> Page:
    t = "mart_village_work"
    return _list(ctx, t, org_id, _filters(ctx, t, month=month, cadre_id=cadre_id),
                 ["-month", "record_rate", "assignment_id"], pg)


@router.get("/duty-targets", response_model=Page,
            summary="四位一体岗位责任工作记实（按单位、按月：目标任务、完成、年度进度、未按期填报）")
def duty_targets(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, month: Month = None, year: Year = None) -> Page:
    t = "mart_duty_targets_monthly"
    return _list(ctx, t, org_id, _filters(ctx, t, month=month, year=year), ["-month", "-records_missing", "unit_org_id"],
                 pg)


@router.get("/leadership-teams", response_model=Page,
            summary="领导班子结构（按单位、按季度末与数据日期：年龄结构、女干部、少数民族干部、年轻干部、正职空缺）")
def leadership_teams(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                     snapshot_date: Annotated[IsoDate | None, Query(description="季度末或数据日期，如 2025-12-31")] = None,
                     is_current: Annotated[bool | None, Query(description="只看数据日期的班子")] = None,
                     vacancy_overdue: Annotated[bool | None, Query(description="只看（或排除）正职空缺超期的班子")] = None) -> Page:
    t = "mart_leadership_teams"
    return _list(ctx, t, org_id, _filters(ctx, t, snapshot_date=snapshot_date, is_current=is_current,
                                          vacancy_overdue=vacancy_overdue),
                 ["-snapshot_date", "-vacancy_workdays", "unit_org_id"], pg)


@router.get("/cadre-changes", response_model=Page, summary="干部队伍变化（按单位、季度：任职、晋升、降职、交流、岗位调整、免职）")
def cadre_changes(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                  quarter: Annotated[IsoDate | None, Query(description="季度首日，如 2025-10-01")] = None,
                  change_type: Text = None) -> Page:
    t = "mart_cadre_changes"
    return _list(ctx, t, org_id, _filters(ctx, t, quarter=quarter, change_type=change_type),
                 ["-quarter", "unit_org_id", "change_type"], pg)


@router.get("/disclosures", response_model=Page,
            summary="党务公开（按党支部、季度：应公开、按时公开、逾期公开、逾期未公开、内容不完整）")
def disclosures(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                quarter: Annotated[IsoDate | None, Query(description="季度首日，如 2025-10-01")] = None) -> Page:
    t = "mart_disclosure_timeliness"
    return _list(ctx, t, org_id, _filters(ctx, t, quarter=quarter), ["-quarter", "-overdue_unpublished", "org_id"], pg)


@router.get("/project-support", response_model=Page,
            summary="精准帮扶措施与资金（按村：项目、措施、政府帮扶与社会帮扶资金、无措施项目）")
def project_support(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None) -> Page:
    t = "mart_project_support"
    return _list(ctx, t, org_id, [], ["-projects_missing_measures", "village_org_id"], pg)


@router.get("/training", response_model=Page, summary="干部调训（按单位、年度：调训计划、参训、缺训、学时、学时不足人数）")
def training(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, year: Year = None) -> Page:
    t = "mart_training_by_unit"
    return _list(ctx, t, org_id, _filters(ctx, t, year=year), ["-year", "-cadres_short", "unit_org_id"], pg)


@router.get("/member-questions", response_model=Page,
            summary="解决疑难问题（按党支部、月份：提问、按时解答、超时解答、超时未解答、解答用时）")
def member_questions(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, month: Month = None) -> Page:
    t = "mart_member_questions"
    return _list(ctx, t, org_id, _filters(ctx, t, month=month), ["-month", "-overdue_open", "org_id"], pg)


@router.get("/volunteer-market", response_model=Page,
            summary="党员志愿服务超市（按区县、月份：发布、对接、完成、超时未对接、帮扶人数、服务时长、筹集资金）")
def volunteer_market(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, month: Month = None) -> Page:
    t = "mart_volunteer_market"
    return _list(ctx, t, org_id, _filters(ctx, t, month=month), ["-month", "county_org_id"], pg)


@router.get("/vitality-by-unit", response_model=Page, summary="党员活力指数按单位汇总（按月）")
def vitality_by_unit(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, month: Month = None,
                     org_level: Text = None) -> Page:
    t = "mart_vitality_by_unit"
    return _list(ctx, t, org_id, _filters(ctx, t, month=month, org_level=org_level), ["-month", "org_id"], pg)


@router.get("/cadre-evaluation-by-unit", response_model=Page, summary="干部考核预测等级按单位汇总（按年度）")
def cadre_evaluation_by_unit(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None, year: Year = None,
                             predicted_grade: Text = None) -> Page:
    t = "mart_cadre_evaluation_by_unit"
    return _list(ctx, t, org_id, _filters(ctx, t, year=year, predicted_grade=predicted_grade),
                 ["-year", "unit_org_id", "predicted_grade"], pg)


@router.get("/branch-archetypes", response_model=Page, summary="基层党组织类型（聚类画像）、创新评分与异常（按季度）")
def branch_archetypes(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                      quarter: Annotated[IsoDate | None, Query(description="季度首日，如 2025-10-01")] = None,
                      archetype: Text = None) -> Page:
    t = "mart_branch_archetypes"
    return _list(ctx, t, org_id, _filters(ctx, t, quarter=quarter, archetype=archetype),
                 ["-quarter", "-innovation_score", "org_id"], pg)


@router.get("/integrity-flags", response_model=Page, summary="诚信画像预警名单（受限：需 integrity 权限）")
def integrity_flags(ctx: CtxDep, pg: PageDep, org_id: OrgFilter = None,
                    flag_gate: Annotated[bool | None, Query(description="只看（或排除）评先选优/选拔任用需复核的")] = None) -> Page:
    ctx.require_role("integrity")
    t = "mart_integrity_flags"
    return _list(ctx, t, org_id, _filters(ctx, t, flag_gate=flag_gate), ["-risk_score", "cadre_id"], pg)


@router.get("/cadre-evaluation-fairness", response_model=Page,
            summary="干部考核模型公平性（按性别、民族、年龄段：准确率、误差、差距与预警；全市材料）")
def cadre_evaluation_fairness(ctx: CtxDep, pg: PageDep,
                              attribute: Annotated[str | None, Query(max_length=20, description="gender、ethnicity 或 age_band")] = None,
                              flagged: Annotated[bool | None, Query(description="只看（或排除）差距超过阈值的组")] = None) -> Page:
    ctx.require_city("干部考核模型公平性评估")
    t = "mart_cadre_evaluation_fairness"
    return _list(ctx, t, None, _filters(ctx, t, attribute=attribute, flagged=flagged),
                 ["attribute", "-cadres", "group_name"], pg,
                 scope_sql="(select o.org_id from dim_organization o where o.depth = 0)")   # one city-wide table
