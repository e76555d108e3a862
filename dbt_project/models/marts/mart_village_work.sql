{#-
  驻村 cadre x month: daily work records (每日工作记实) and sign-in regularity on working days.
  grain: one row per (cadre_id, assignment_id, month). sign-in regularity = share of working days
  signed in, plus the spread (standard deviation, minutes) of the first sign-in time of day.
  Incremental: a run replaces the months from the first one whose inputs changed since the last run
  (var changed_from, set by the marts stage) to the logical date's month.
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['cadre_id', 'assignment_id', 'month'],
    incremental_predicates=["DBT_INTERNAL_DEST.month between " ~ changed_month('mart_village_work') ~ " and " ~ logical_month()],
    replace_predicate="DBT_INTERNAL_DEST.month between " ~ changed_month('mart_village_work') ~ " and " ~ logical_month(),
  )
}}

with days as (
    select * from {{ ref('stg_village_work_days') }}
    where work_date <= {{ logical_date() }}
    {% if is_incremental() -%}
    and trunc(work_date, 'MM') >= {{ changed_month('mart_village_work') }}
    {%- endif %}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

per_month as (
    select
        cadre_id,
        assignment_id,
        trunc(work_date, 'MM') as month,
        max(village_org_id) as village_org_id,
        max(role) as role,
        count(*) as workdays,
        count(case when has_record then 1 end) as record_days,
        count(case when signed_in then 1 end) as signed_in_days,
        sum(coalesce(photo_count, 0)) as photos,
        max(coalesce(days_without_record, 0)) as longest_gap_workdays,
        stddev_samp(
            case when first_sign_in_at is not null
                 then hour(first_sign_in_at) * 60 + minute(first_sign_in_at) end
        ) as sign_in_time_stddev_minutes,
        min(work_date) as first_workday,
        max(work_date) as last_workday
    from days
    group by 1, 2, 3
),

final as (
    select
        per_month.cadre_id,
        per_month.assignment_id,
        per_month.month,
        per_month.village_org_id,
        organizations.org_name as village_name,
        organizations.county_name,
        organizations.town_name,
        per_month.role,
        cast(per_month.workdays as bigint) as workdays,
        cast(per_month.record_days as bigint) as record_days,
        cast(per_month.signed_in_days as bigint) as signed_in_days,
        cast(per_month.photos as bigint) as photos,
        round(per_month.record_days / per_month.workdays, 4) as record_rate,
        round(per_month.signed_in_days / per_month.workdays, 4) as sign_in_rate,
        round(per_month.sign_in_time_stddev_minutes, 1) as sign_in_time_stddev_minutes,
        cast(per_month.longest_gap_workdays as int) as longest_gap_workdays,
        per_month.first_workday,
        per_month.last_workday
    from per_month
    left join organizations
        on organizations.org_id = per_month.village_org_id
)

select * from final
