with source as (
    select * from {{ source('gold', 'fct_project_status') }}
),

renamed as (
    select
        -- ids
        project_id,
        village_org_id,
        cadre_id,
        -- text
        project_name,
        category,
        status as project_status,
        source_status,
        -- numerics
        budget_yuan,
        days_to_deadline,
        overdue_days,
        completed_late_days,
        -- booleans
        deadline_warning,
        is_overdue,
        is_closed,
        -- dates
        state_since,
        start_date,
        deadline,
        completed_date,
        as_of_date
    from source
)

select * from renamed
