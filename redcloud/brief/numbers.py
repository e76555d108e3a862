"""Every number in the weekly brief, as a registry of named queries over the published snapshot.

A :class:`Query` is (name, Chinese label, source tables, DuckDB SQL). Scalars (``kind="scalar"``)
return one value; listings (``kind="rows"``) return a small table. The brief renders values from
here and footnotes each with its tables, the snapshot id and each table's Delta version (from
``_snapshot_sources``), plus the query's SQL, so anyone can re-run it against the same snapshot.

SQL parameters (DuckDB ``$name``): ``$ws``/``$we`` the week's Monday/Sunday (inclusive),
``$asof`` the snapshot's logical date, ``$at`` the day a state is read on (``$asof`` for the week,
``$asof`` - 7 days for the week before), ``$top`` list length, and the 帮扶 lifecycle states by name
(``$in_progress``, ``$warning``, ``$overdue``, ``$completed``, ``$expired``: the vocabulary of
:mod:`redcloud.rules.vocab`). Weekly scalars are evaluated for the week and for the week before.

No rule is computed here: who is 在册 is ``dim_member.is_on_roll``; the learning obligation,
reminder and escalation are ``fct_learning_daily``'s columns; a project's state on a day is the
``fct_project_lifecycle`` row covering that day. All are computed once, in gold.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

import duckdb

from redcloud.privacy import mask_name
from redcloud.rules import vocab


@dataclass(frozen=True)
class Query:
    name: str
    label: str                       # Chinese, shown in the brief
    tables: tuple[str, ...]          # snapshot tables it reads (footnoted with their Delta versions)
    sql: str
    kind: str = "scalar"             # scalar | rows
    fmt: str = "int"                 # int | pct | float (scalars)
    unit: str = ""                   # 人, 个, 场 ...
    better: str | None = None        # up | down: which direction of change is good
    weekly: bool = True              # also evaluated for the previous week
    columns: tuple[str, ...] = field(default_factory=tuple)  # Chinese headers for kind="rows"
    masked: tuple[int, ...] = ()     # kind="rows": columns holding a person's name, shown masked (张*明)


# Each project's lifecycle state on the day $at (the snapshot's logical date; a week earlier for the
# previous week's figure): the fct_project_lifecycle period covering that day.
_PROJECT_AT = """
    select s.*, l.state as state_at
    from fct_project_lifecycle l join fct_project_status s using (project_id)
    where l.valid_from <= $at and (l.valid_to is null or l.valid_to > $at)"""

STATE_PARAMS = {"in_progress": vocab.IN_PROGRESS, "warning": vocab.DEADLINE_WARNING, "overdue": vocab.OVERDUE,
                "completed": vocab.COMPLETED, "expired": vocab.EXPIRED}

QUERIES: tuple[Query, ...] = (
    # ---- headline numbers (week, with week-over-week change) ----
    Query("learning_answer_rate", "学习问答作答率", ("fct_learning_daily",),
          """select avg(case when answered then 1.0 else 0.0 end) from fct_learning_daily
             where is_obligated and work_date between $ws and $we""", fmt="pct", better="up"),
    Query("learning_reminded_cadres", "学习问答提醒人数", ("fct_learning_daily",),
          """select count(distinct cadre_id) from fct_learning_daily
             where is_obligated and reminder_due and work_date between $ws and $we""",
          unit="人", better="down"),
    Query("learning_escalated_cadres", "学习问答升级督办人数", ("fct_learning_daily",),
          """select count(distinct cadre_id) from fct_learning_daily
             where is_obligated and escalation_due and work_date between $ws and $we""",
          unit="人", better="down"),
    Query("village_record_rate", "驻村工作日志填报率", ("fct_village_work_daily",),
          """select avg(case when has_record then 1.0 else 0.0 end) from fct_village_work_daily
             where work_date between $ws and $we""", fmt="pct", better="up"),
    Query("projects_overdue", "帮扶项目逾期数（未注销）", ("fct_project_lifecycle", "fct_project_status"),
          f"select count(*) from ({_PROJECT_AT}) where state_at = $overdue",
          unit="个", better="down"),
    Query("projects_expired_week", "帮扶项目本周逾期注销数", ("fct_project_lifecycle",),
          """select count(*) from fct_project_lifecycle
             where state = $expired and valid_from between $ws and $we""", unit="个", better="down"),
    Query("projects_completed_week", "帮扶项目本周完成数", ("fct_project_status",),
          """select count(*) from fct_project_status
             where completed_date between $ws and $we""", unit="个", better="up"),
    Query("meetings_held", "组织生活会议场次", ("fct_meeting_signals",),
          "select count(*) from fct_meeting_signals where meeting_date between $ws and $we",
          unit="场"),
    Query("suspicious_meetings", "疑似异常会议场次", ("fct_meeting_signals",),
          """select count(*) from fct_meeting_signals
             where is_suspicious and meeting_date between $ws and $we""", unit="场", better="down"),
    Query("new_members", "新入党人数", ("dim_member",),
          "select count(*) from dim_member where join_date between $ws and $we", unit="人"),
    # ---- state as of the snapshot (no week-over-week) ----
    Query("members_on_roll", "在册党员总数", ("dim_member",),
          "select count(*) from dim_member where is_on_roll", unit="人", weekly=False),
    Query("organizations", "党组织总数", ("dim_organization",),
          "select count(*) from dim_organization", unit="个", weekly=False),
    Query("branches", "党支部数", ("dim_organization",),
          "select count(*) from dim_organization where org_level = $branch", unit="个", weekly=False),
    Query("projects_due_soon", "临近截止帮扶项目（督办预警）", ("fct_project_lifecycle", "fct_project_status"),
          f"select count(*) from ({_PROJECT_AT}) where state_at = $warning",
          unit="个", better="down"),
    # ---- listings ----
    Query("learning_escalation_units", "升级督办干部所在单位", ("fct_learning_daily", "fct_cadre_year", "dim_organization"),
          """with esc as (
                 select cadre_id, max(miss_streak) as streak from fct_learning_daily
                 where is_obligated and escalation_due and work_date between $ws and $we group by cadre_id),
             unit as (select cadre_id, arg_max(unit_org_id, year) as unit_org_id from fct_cadre_year group by cadre_id)
             select coalesce(o.org_name, '（单位未知）') as unit, count(*) as cadres, max(esc.streak) as longest
             from esc left join unit using (cadre_id) left join dim_organization o on o.org_id = unit.unit_org_id
             group by all order by cadres desc, longest desc, unit limit $top""",
          kind="rows", weekly=False, columns=("单位", "升级人数", "最长连续未答（工作日）")),
    Query("learning_rate_trend", "学习问答作答率（按周）", ("fct_learning_daily",),
          """select date_trunc('week', work_date)::date as week_start,
                    avg(case when answered then 1.0 else 0.0 end) as rate
             from fct_learning_daily
             where is_obligated and work_date between $we - to_days(7 * 12 - 1) and $we
             group by 1 order by 1""", kind="rows", weekly=False, columns=("周一", "作答率")),
    Query("village_rate_trend", "驻村日志填报率（按周）", ("fct_village_work_daily",),
          """select date_trunc('week', work_date)::date as week_start,
                    avg(case when has_record then 1.0 else 0.0 end) as rate
             from fct_village_work_daily
             where work_date between $we - to_days(7 * 12 - 1) and $we
             group by 1 order by 1""", kind="rows", weekly=False, columns=("周一", "填报率")),
    # a cadre by name (masked) and the unit that sent them, as of their latest assessment year
    Query("village_missing_cadres", "本周驻村日志缺报最多的驻村干部",
          ("fct_village_work_daily", "fct_cadre_year", "dim_member", "dim_organization"),
          """with cadre as (select cadre_id, arg_max(member_id, year) as member_id,
                                   arg_max(unit_org_id, year) as unit_org_id
                            from fct_cadre_year group by cadre_id)
             select coalesce(any_value(m.member_name), '干部' || v.cadre_id) as cadre,
                    coalesce(any_value(u.org_name), '') as unit, any_value(v.role) as role,
                    coalesce(any_value(o.org_name), '') as village,
                    count(*) filter (where not v.has_record) as missed, count(*) as workdays
             from fct_village_work_daily v left join dim_organization o on o.org_id = v.village_org_id
             left join cadre c on c.cadre_id = v.cadre_id
             left join dim_member m on m.member_id = c.member_id
             left join dim_organization u on u.org_id = c.unit_org_id
             where v.work_date between $ws and $we
             group by v.cadre_id having missed > 0
             order by missed desc, v.cadre_id limit $top""",
          kind="rows", weekly=False, columns=("驻村干部", "派出单位", "身份", "驻点村", "缺报天数", "工作日"),
          masked=(0,)),
    Query("projects_by_county", "帮扶项目状态（按区县，截至数据日期）",
          ("fct_project_lifecycle", "fct_project_status", "dim_organization"),
          f"""select coalesce(o.county_name, '（未知）') as county,
                     count(*) filter (where p.state_at = $in_progress) as open,
                     count(*) filter (where p.state_at = $warning) as warning,
                     count(*) filter (where p.state_at = $overdue) as overdue,
                     count(*) filter (where p.state_at = $completed) as done,
                     count(*) filter (where p.state_at = $expired) as expired
              from ({_PROJECT_AT}) p left join dim_organization o on o.org_id = p.village_org_id
              group by 1 order by overdue desc, county""",
          kind="rows", weekly=False, columns=("区县", *vocab.PROJECT_STATES)),
    Query("projects_most_overdue", "逾期最久的帮扶项目（未注销）",
          ("fct_project_lifecycle", "fct_project_status", "dim_organization"),
          f"""select p.project_name, coalesce(o.org_name, '') as village, p.deadline,
                     datediff('day', p.deadline, $at) as overdue_days
              from ({_PROJECT_AT}) p left join dim_organization o on o.org_id = p.village_org_id
              where p.state_at = $overdue order by overdue_days desc, p.project_id limit $top""",
          kind="rows", weekly=False, columns=("项目", "所在村", "截止日期", "逾期天数")),
    Query("suspicious_meeting_branches", "疑似异常会议较多的支部（本周）", ("fct_meeting_signals", "dim_organization"),
          """select coalesce(o.org_name, '') as branch, count(*) as meetings,
                    count(*) filter (where m.is_non_working_day) as non_working_day,
                    count(*) filter (where m.identical_attendance_nontrivial) as identical,
                    count(*) filter (where m.declared_exceeds_members) as over_declared
             from fct_meeting_signals m left join dim_organization o on o.org_id = m.org_id
             where m.is_suspicious and m.meeting_date between $ws and $we
             group by 1 order by meetings desc, branch limit $top""",
          kind="rows", weekly=False, columns=("支部", "疑似场次", "非工作日", "签到雷同", "申报超员")),
    Query("members_by_county", "在册党员（按区县）", ("dim_member",),
          """select coalesce(county_name, '（未知）') as county, count(*) as members,
                    count(*) filter (where party_status = $probationary) as probationary
             from dim_member where is_on_roll group by 1 order by members desc""",
          kind="rows", weekly=False, columns=("区县", "在册党员", "其中预备党员")),
)

# Sections that read tables built by other stages (marts, models, alerts). Each runs only when its
# table is in the snapshot AND has the columns listed; otherwise the brief says so plainly.
OPTIONAL: tuple[tuple[Query, tuple[str, ...]], ...] = (
    (Query("membership_changes_month", "本月党员队伍变动（全市）", ("mart_membership_changes", "dim_organization"),
           """select strftime(date_trunc('month', $we), '%Y-%m') as month, sum(joined) as joined,
                     sum(transferred_in) as transferred_in, sum(transferred_out) as transferred_out,
                     sum(deceased) as deceased
              from mart_membership_changes
              where org_id in (select org_id from dim_organization where parent_org_id is null)
                and date_trunc('month', cast(month as date)) = date_trunc('month', $we)
              having count(*) > 0""",
           kind="rows", weekly=False, columns=("月份", "发展党员", "转入", "转出", "去世")),
     ("month", "org_id", "joined", "transferred_in", "transferred_out", "deceased")),
    (Query("disclosures_overdue", "党务公开逾期未公开事项（截至数据日期）", ("mart_disclosure_timeliness",),
           """select coalesce(sum(overdue_unpublished), 0) from mart_disclosure_timeliness""",
           unit="项", weekly=False, better="down"),
     ("overdue_unpublished",)),
    (Query("disclosure_laggards", "党务公开逾期未公开较多的党支部（截至数据日期）", ("mart_disclosure_timeliness",),
           """select coalesce(org_name, '') as branch, coalesce(county_name, '市直') as county,
                     sum(overdue_unpublished) as overdue, sum(escalated) as escalated,
                     round(100.0 * sum(on_time) / nullif(sum(items) - sum(pending), 0), 1) as on_time_pct
              from mart_disclosure_timeliness group by all having sum(overdue_unpublished) > 0
              order by overdue desc, branch limit $top""",
           kind="rows", weekly=False, columns=("党支部", "区县", "逾期未公开", "已督办", "公开及时率%")),
     ("org_name", "county_name", "overdue_unpublished", "escalated", "on_time", "items", "pending")),
    (Query("support_by_channel", "帮扶资金来源（截至数据日期：政府帮扶为主，社会帮扶为辅）", ("mart_project_support",),
           """select channel, round(amount / 10000, 1) as wan, round(100 * amount / nullif(sum(amount) over (), 0), 1)
              from (select $government as channel, sum(government_yuan) as amount from mart_project_support
                    union all
                    select $social as channel, sum(social_yuan) as amount from mart_project_support)
              order by amount desc""",
           kind="rows", weekly=False, columns=("资金渠道", "金额（万元）", "占比%")),
     ("government_yuan", "social_yuan")),
    (Query("projects_missing_measures", "开工超过规定工作日仍无帮扶措施的项目", ("mart_project_support",),
           """select coalesce(sum(projects_missing_measures), 0) from mart_project_support""",
           unit="个", weekly=False, better="down"),
     ("projects_missing_measures",)),
    (Query("training_short_cadres", "本年度调训学时不足的干部（截至数据日期）", ("mart_training_by_unit",),
           """select coalesce(sum(cadres_short), 0) from mart_training_by_unit where year = year($asof)""",
           unit="人", weekly=False, better="down"),
     ("cadres_short", "year")),
    (Query("volunteer_market_year", "党员志愿服务超市（本年度截至数据日期，按完成的服务）", ("mart_volunteer_market",),
           """select sum(needs_published) as published, sum(needs_completed) as completed,
                     sum(people_served) as people, round(sum(service_hours), 0) as hours, round(sum(funds_yuan), 0) as funds,
                     sum(unmatched_overdue) as unmatched
              from mart_volunteer_market where year(month) = year($asof) having count(*) > 0""",
           kind="rows", weekly=False, columns=("发布需求", "完成", "帮扶人数", "服务小时", "筹集资金（元）", "超时未对接")),
     ("needs_published", "needs_completed", "people_served", "service_hours", "funds_yuan", "unmatched_overdue")),
    (Query("leadership_vacancies", "正职空缺超期的领导班子", ("mart_leadership_teams",),
           """select count(*) from mart_leadership_teams where is_current and vacancy_overdue""",
           unit="个", weekly=False, better="down"),
     ("is_current", "vacancy_overdue")),
    (Query("leadership_gaps", "领导班子结构缺口（截至数据日期：正职空缺超期、无女干部、无年轻干部）",
           ("mart_leadership_teams",),
           """select coalesce(unit_name, '') as unit, coalesce(county_name, '市直') as county, leaders,
                     avg_age, concat_ws('；',
                         case when vacancy_overdue then '正职空缺' || vacancy_workdays || '个工作日' end,
                         case when lacks_women then '无女干部' end,
                         case when lacks_young then '无年轻干部' end) as gaps
              from mart_leadership_teams
              where is_current and (vacancy_overdue or lacks_women or lacks_young)
              order by vacancy_overdue desc, vacancy_workdays desc, unit limit $top""",
           kind="rows", weekly=False, columns=("单位", "区县", "班子人数", "平均年龄", "结构缺口")),
     ("unit_name", "county_name", "is_current", "leaders", "avg_age", "vacancy_overdue", "vacancy_workdays",
      "lacks_women", "lacks_young")),
    (Query("alerts_new_by_rule", "本周新增自流程化提醒/督办（按规则）", ("alerts",),
           """select rule_name,
                     coalesce(map_extract_value(map($level_keys, $level_names), level), level) as level_cn,
                     count(*) as alerts, count(*) filter (where status = 'open') as still_open
              from alerts where first_seen between $ws and $we
              group by all order by alerts desc, rule_name limit 10""",
           kind="rows", weekly=False, columns=("规则", "级别", "新增", "仍未关闭")),
     ("rule_name", "level", "status", "first_seen")),
    (Query("power_overdue_departments", "权力运行：逾期最多的部门（本周所在月，按受理月份）",
           ("mart_power_operation_monthly",),
           """with m as (select max(month) as mx from mart_power_operation_monthly
                         where cast(month as date) <= $we)
              select dept_name, sum(operations) as operations, sum(overdue) as overdue,
                     sum(complaints) as complaints, round(100 * any_value(dept_on_time_rate), 1) as on_time_pct,
                     '第 ' || min(dept_month_rank) || ' / ' || (select count(distinct dept_code)
                         from mart_power_operation_monthly, m where month = m.mx) as dept_rank
              from mart_power_operation_monthly, m where month = m.mx
              group by dept_name order by overdue desc, complaints desc, dept_name limit $top""",
           kind="rows", weekly=False, columns=("部门", "受理事项", "逾期", "投诉", "按时办结率%", "月度排名（全部门）")),
     ("dept_name", "dept_code", "month", "operations", "overdue", "complaints", "dept_on_time_rate",
      "dept_month_rank")),
    (Query("vitality_movers", "党员活力指数变化最大的支部（最近两个月）", ("score_member_vitality", "dim_member", "dim_organization"),
           """with months as (select distinct month from score_member_vitality where month <= $we
                              order by month desc limit 2),
                   s as (select d.org_id, v.month, avg(v.vitality_index) as idx
                         from score_member_vitality v join dim_member d using (member_id)
                         where v.month in (select month from months) group by all),
                   w as (select org_id,
                                max(idx) filter (where month = (select max(month) from months)) as now_idx,
                                max(idx) filter (where month = (select min(month) from months)) as prev_idx
                         from s group by org_id)
              select coalesce(o.org_name, '') as branch, round(now_idx, 1) as now_idx,
                     round(now_idx - prev_idx, 1) as change
              from w left join dim_organization o using (org_id)
              where now_idx is not null and prev_idx is not null
              order by abs(now_idx - prev_idx) desc, branch limit $top""",
           kind="rows", weekly=False, columns=("支部", "本月活力指数", "较上月")),
     ("member_id", "month", "vitality_index")),
    (Query("branch_anomalies", "支部组织生活异常（模型识别，最近季度）", ("score_branch_innovation", "dim_organization"),
           """with q as (select max(quarter) as mx from score_branch_innovation)
              select coalesce(o.org_name, '') as branch, s.archetype, round(s.innovation_score, 1) as score,
                     array_to_string(s.anomaly_reasons, '；') as reasons
              from score_branch_innovation s join q on s.quarter = q.mx
              left join dim_organization o using (org_id)
              where s.is_anomaly order by s.innovation_score, branch limit $top""",
           kind="rows", weekly=False, columns=("支部", "类型", "创新力得分", "异常原因")),
     ("org_id", "quarter", "innovation_score", "archetype", "is_anomaly", "anomaly_reasons")),
    (Query("integrity_flags", "廉政画像触发预警门限的干部人数", ("score_integrity_portrait",),
           """select count(distinct cadre_id) from score_integrity_portrait
              where flag_gate and as_of_date = (select max(as_of_date) from score_integrity_portrait)""",
           unit="人", weekly=False, better="down"),
     ("cadre_id", "as_of_date", "flag_gate")),
)


def by_name(name: str) -> Query:
    for q in QUERIES + tuple(q for q, _ in OPTIONAL):
        if q.name == name:
            return q
    raise KeyError(name)


@dataclass
class Week:
    year: int
    week: int

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def start(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.week, 1)

    @property
    def end(self) -> dt.date:
        return dt.date.fromisocalendar(self.year, self.week, 7)

    def previous(self) -> "Week":
        y, w, _ = (self.start - dt.timedelta(days=7)).isocalendar()
        return Week(y, w)

    @classmethod
    def parse(cls, text: str) -> "Week":
        m = re.fullmatch(r"(\d{4})-?W(\d{1,2})", text.strip(), re.I)
        if not m:
            raise ValueError(f"ISO week expected like 2025-W52, got {text!r}")
        y, w = int(m.group(1)), int(m.group(2))
        dt.date.fromisocalendar(y, w, 1)  # validates the week number
        return cls(y, w)

    @classmethod
    def ended_by(cls, day: dt.date) -> "Week":
        """The ISO week that ended on or before ``day`` (its Sunday is ``day`` or earlier)."""
        sunday = day - dt.timedelta(days=day.isoweekday() % 7)
        y, w, _ = sunday.isocalendar()
        return cls(y, w)


def params_for(sql: str, values: dict[str, Any]) -> dict[str, Any]:
    """Only the parameters the statement uses (DuckDB rejects unused named parameters)."""
    used = set(re.findall(r"\$([a-z_]+)", sql))
    return {k: v for k, v in values.items() if k in used}


def values_for(week: Week, asof: dt.date, top: int, at: dt.date | None = None) -> dict[str, Any]:
    """Every SQL parameter a query may use (:func:`params_for` picks the ones it does)."""
    return {"ws": week.start, "we": week.end, "asof": asof, "at": at or asof, "top": top,
            "probationary": vocab.PROBATIONARY,
            "branch": vocab.BRANCH, "level_keys": list(vocab.ALERT_LEVELS),
            "level_names": list(vocab.ALERT_LEVELS.values()), "government": vocab.GOVERNMENT, "social": vocab.SOCIAL,
            **STATE_PARAMS}


def run_query(con: duckdb.DuckDBPyConnection, q: Query, week: Week, *, asof: dt.date, top: int,
              at: dt.date | None = None):
    values = values_for(week, asof, top, at)
    cur = con.execute(q.sql, params_for(q.sql, values))
    if q.kind == "scalar":
        row = cur.fetchone()
        return None if row is None else row[0]
    rows = cur.fetchall()
    if q.masked:
        rows = [tuple(mask_name(x) if i in q.masked else x for i, x in enumerate(r)) for r in rows]
    return rows


def snapshot_tables(con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    rows = con.execute("select table_name, column_name from information_schema.columns "
                       "where table_schema = 'main'").fetchall()
    out: dict[str, set[str]] = {}
    for t, c in rows:
        out.setdefault(t, set()).add(c)
    return out


def format_value(q: Query, v) -> str:
    if v is None:
        return "无数据"
    if q.fmt == "pct":
        return f"{float(v) * 100:.1f}%"
    if q.fmt == "float":
        return f"{float(v):.1f}"
    return f"{int(v)}"


def format_change(q: Query, now, prev) -> tuple[str, str]:
    """(text, css class) of the week-over-week change: 'good', 'bad' or 'flat'."""
    if now is None or prev is None:
        return "—", "flat"
    d = float(now) - float(prev)
    if q.fmt == "pct":
        text = f"{d * 100:+.1f} 个百分点"
        flat = abs(d) < 0.0005
    else:
        text = f"{d:+.0f}" if q.fmt == "int" else f"{d:+.1f}"
        flat = d == 0
    if flat:
        return ("持平", "flat")
    good = (d > 0) == (q.better == "up") if q.better else None
    return text, ("flat" if good is None else "good" if good else "bad")
