{#-
  领导班子 structure per unit over time: one row per unit and snapshot (every quarter end and the
  logical date) with its size, 正职/副职, age structure, women and minority cadres and its 正职 vacancy
  (gold fct_unit_leadership decides vacancy_overdue, lacks_women and lacks_young from [rules]).
  grain: one row per (unit_org_id, snapshot_date). Rebuilt in full (a late post record changes history).
-#}
with teams as (
    select * from {{ ref('stg_unit_leadership') }}
    where snapshot_date <= {{ logical_date() }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

final as (
    select
        teams.unit_org_id,
        organizations.org_name as unit_name,
        organizations.org_type as unit_type,
        organizations.county_org_id,
        organizations.county_name,
        teams.snapshot_date,
        teams.quarter,
        teams.is_current,
        teams.leaders,
        teams.chiefs,
        teams.deputies,
        teams.avg_age,
        teams.youngest_age,
        teams.oldest_age,
        teams.age_under_40,
        teams.age_40_49,
        teams.age_50_plus,
        teams.young_leaders,
        teams.women,
        teams.minorities,
        teams.has_chief,
        teams.chief_vacant_since,
        teams.vacancy_workdays,
        teams.vacancy_overdue,
        teams.lacks_women,
        teams.lacks_young
    from teams
    left join organizations on organizations.org_id = teams.unit_org_id
)

select * from final
