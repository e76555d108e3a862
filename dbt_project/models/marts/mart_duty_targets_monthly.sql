{#-
  四位一体 (岗位责任工作记实 / 年度目标分解) by unit and month: the cadres who keep 记实 in the unit, how many
  filed the month's 记实 and how many are missing past the due working day (gold decides, [rules]
  duty_record_due_workday), the month's target tasks and completions, and the year to date.
  grain: one row per (unit_org_id, month). Rebuilt in full: a late 记实 changes an earlier month.
-#}
with duty_months as (
    select * from {{ ref('stg_cadre_duty_months') }}
    where month <= {{ logical_month() }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

per_unit as (
    select
        unit_org_id,
        month,
        cast(count(*) as bigint) as cadres,
        cast(count(case when record_count > 0 then 1 end) as bigint) as records_filed,
        cast(count(case when record_missing then 1 end) as bigint) as records_missing,
        cast(coalesce(sum(targets), 0) as bigint) as targets,
        cast(coalesce(sum(completed), 0) as bigint) as completed,
        cast(sum(ytd_targets) as bigint) as ytd_targets,
        cast(sum(ytd_completed) as bigint) as ytd_completed,
        {{ exact_mean('review_score') }} as mean_review_score
    from duty_months
    where unit_org_id is not null
    group by 1, 2
),

final as (
    select
        per_unit.unit_org_id,
        organizations.org_name as unit_name,
        organizations.county_org_id,
        organizations.county_name,
        per_unit.month,
        year(per_unit.month) as year,
        per_unit.cadres,
        per_unit.records_filed,
        per_unit.records_missing,
        per_unit.targets,
        per_unit.completed,
        case when per_unit.targets > 0 then round(per_unit.completed / per_unit.targets, 4) end as completion_rate,
        per_unit.ytd_targets,
        per_unit.ytd_completed,
        case when per_unit.ytd_targets > 0 then round(per_unit.ytd_completed / per_unit.ytd_targets, 4) end
            as ytd_completion_rate,
        per_unit.mean_review_score
    from per_unit
    left join organizations on organizations.org_id = per_unit.unit_org_id
)

select * from final
