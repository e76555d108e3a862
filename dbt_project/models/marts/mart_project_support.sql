{#-
  帮扶措施 and funding per village (政府帮扶为主，社会帮扶为辅), as of the logical date: projects, those with
  measures and those still without one past the due working day (gold's verdict, [rules]
  project_measure_workdays), measures, money by channel and the government share.
  grain: one row per village_org_id.
-#}
with projects as (
    select * from {{ ref('stg_project_support') }}
    where start_date <= {{ logical_date() }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

per_village as (
    select
        village_org_id,
        cast(count(*) as bigint) as projects,
        cast(count(case when measures > 0 then 1 end) as bigint) as projects_with_measures,
        cast(count(case when measures_missing then 1 end) as bigint) as projects_missing_measures,
        cast(sum(measures) as bigint) as measures,
        round(sum(budget_yuan), 2) as budget_yuan,
        round(sum(government_yuan), 2) as government_yuan,
        round(sum(social_yuan), 2) as social_yuan
    from projects
    group by 1
),

final as (
    select
        per_village.village_org_id,
        organizations.org_name as village_name,
        organizations.county_org_id,
        organizations.county_name,
        organizations.town_org_id,
        organizations.town_name,
        per_village.projects,
        per_village.projects_with_measures,
        per_village.projects_missing_measures,
        per_village.measures,
        per_village.budget_yuan,
        per_village.government_yuan,
        per_village.social_yuan,
        case when per_village.government_yuan + per_village.social_yuan > 0
             then round(per_village.government_yuan / (per_village.government_yuan + per_village.social_yuan), 4)
        end as government_share,
        {{ logical_date() }} as as_of_date
    from per_village
    left join organizations on organizations.org_id = per_village.village_org_id
)

select * from final
