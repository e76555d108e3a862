{#-
  学习问答 compliance per person (cadre) and per unit, by month, on official working days.
  grain: one row per (month, grain, entity_id); grain 'cadre' (entity_id = cadre_id) or 'unit'
  (entity_id = unit org_id, the cadre's unit in fct_cadre_year for that year).
  Incremental: a run replaces the months from the first one whose inputs changed since the last run
  (var changed_from, set by the marts stage) to the logical date's month (days up to the logical date).
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['month', 'grain', 'entity_id'],
    incremental_predicates=["DBT_INTERNAL_DEST.month between " ~ changed_month('mart_learning_compliance') ~ " and " ~ logical_month()],
    replace_predicate="DBT_INTERNAL_DEST.month between " ~ changed_month('mart_learning_compliance') ~ " and " ~ logical_month(),
  )
}}

with days as (
    select * from {{ ref('int_learning_workdays') }}
    where work_date <= {{ logical_date() }}
    {% if is_incremental() -%}
    and month >= {{ changed_month('mart_learning_compliance') }}
    {%- endif %}
),

cadre_years as (
    select * from {{ ref('stg_cadre_years') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

per_cadre as (
    select
        days.month,
        days.cadre_id,
        max(days.rank) as rank,
        count(*) as workdays_required,
        count(case when days.answered then 1 end) as workdays_answered,
        max(days.miss_streak) as longest_miss_streak
    from days
    group by 1, 2
),

with_unit as (
    select
        per_cadre.*,
        cadre_years.unit_org_id
    from per_cadre
    left join cadre_years
        on cadre_years.cadre_id = per_cadre.cadre_id
        and cadre_years.year = year(per_cadre.month)
),

cadre_rows as (
    select
        month,
        'cadre' as grain,
        cadre_id as entity_id,
        cadre_id,
        unit_org_id,
        rank,
        cast(1 as bigint) as cadres,
        cast(workdays_required as bigint) as workdays_required,
        cast(workdays_answered as bigint) as workdays_answered,
        cast(case when workdays_answered = workdays_required then 1 else 0 end as bigint) as cadres_fully_compliant,
        cast(longest_miss_streak as int) as longest_miss_streak
    from with_unit
),

unit_rows as (
    select
        month,
        'unit' as grain,
        unit_org_id as entity_id,
        cast(null as bigint) as cadre_id,
        unit_org_id,
        cast(null as string) as rank,
        count(*) as cadres,
        sum(workdays_required) as workdays_required,
        sum(workdays_answered) as workdays_answered,
        sum(cadres_fully_compliant) as cadres_fully_compliant,
        max(longest_miss_streak) as longest_miss_streak
    from cadre_rows
    where unit_org_id is not null
    group by 1, 2, 3, 4, 5, 6
),

unioned as (
    select * from cadre_rows
    union all
    select * from unit_rows
),

final as (
    select
        unioned.month,
        unioned.grain,
        unioned.entity_id,
        unioned.cadre_id,
        unioned.unit_org_id,
        organizations.org_name as unit_name,
        organizations.county_name,
        unioned.rank,
        cast(unioned.cadres as bigint) as cadres,
        cast(unioned.workdays_required as bigint) as workdays_required,
        cast(unioned.workdays_answered as bigint) as workdays_answered,
        round(unioned.workdays_answered / unioned.workdays_required, 4) as compliance_rate,
        cast(unioned.cadres_fully_compliant as bigint) as cadres_fully_compliant,
        cast(unioned.longest_miss_streak as int) as longest_miss_streak
    from unioned
    left join organizations
        on organizations.org_id = unioned.unit_org_id
)

select * from final
