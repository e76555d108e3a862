{#-
  干部调训 per unit and year: cadres planned for classes (调训计划), classes planned, attended and missed,
  the attendance rate, 学时 (total and per cadre) and cadres short of the yearly requirement, with those
  warned before the year ends (gold's verdict, [rules] training_hours_required, training_warning_workdays).
  The unit is the cadre's unit that year (gold fct_cadre_year). grain: one row per (unit_org_id, year).
-#}
with training as (
    select * from {{ ref('stg_cadre_training_years') }}
    where year <= year({{ logical_date() }})
),

cadre_years as (
    select * from {{ ref('stg_cadre_years') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

joined as (
    select training.*, cadre_years.unit_org_id
    from training
    inner join cadre_years
        on cadre_years.cadre_id = training.cadre_id and cadre_years.year = training.year
),

per_unit as (
    select
        unit_org_id,
        year,
        cast(count(*) as bigint) as cadres,
        cast(sum(classes_planned) as bigint) as classes_planned,
        cast(sum(classes_attended) as bigint) as classes_attended,
        cast(sum(classes_missed) as bigint) as classes_missed,
        round(sum(hours), 1) as hours,
        cast(count(case when hours_short > 0 then 1 end) as bigint) as cadres_short,
        cast(count(case when shortfall_warning then 1 end) as bigint) as cadres_warned
    from joined
    where unit_org_id is not null
    group by 1, 2
),

final as (
    select
        per_unit.unit_org_id,
        organizations.org_name as unit_name,
        organizations.county_org_id,
        organizations.county_name,
        per_unit.year,
        per_unit.cadres,
        per_unit.classes_planned,
        per_unit.classes_attended,
        per_unit.classes_missed,
        case when per_unit.classes_attended + per_unit.classes_missed > 0
             then round(per_unit.classes_attended / (per_unit.classes_attended + per_unit.classes_missed), 4)
        end as attendance_rate,
        per_unit.hours,
        round(per_unit.hours / per_unit.cadres, 1) as hours_per_cadre,
        per_unit.cadres_short,
        per_unit.cadres_warned
    from per_unit
    left join organizations on organizations.org_id = per_unit.unit_org_id
)

select * from final
