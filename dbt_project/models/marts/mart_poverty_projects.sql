{#- 精准帮扶 projects as of the logical date: lifecycle state (gold), with village and county. -#}
with projects as (
    select * from {{ ref('stg_projects') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

final as (
    select
        projects.project_id,
        projects.project_name,
        projects.category,
        projects.village_org_id,
        organizations.org_name as village_name,
        organizations.town_name,
        organizations.county_name,
        projects.cadre_id,
        projects.project_status,
        projects.start_date,
        projects.deadline,
        projects.completed_date,
        projects.days_to_deadline,
        projects.overdue_days,
        projects.completed_late_days,
        projects.state_since,
        projects.deadline_warning,
        projects.is_overdue,
        projects.is_closed,
        coalesce(projects.completed_late_days, 0) > 0 as completed_late,
        projects.budget_yuan,
        projects.as_of_date
    from projects
    left join organizations
        on organizations.org_id = projects.village_org_id
)

select * from final
