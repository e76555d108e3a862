with source as (
    select * from {{ source('gold', 'fct_project_support') }}
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
        -- numbers
        budget_yuan,
        measures,
        government_yuan,
        social_yuan,
        total_yuan,
        workdays_without_measure,
        -- flags (the rule's verdict, from gold)
        measures_missing,
        -- dates
        start_date,
        first_measure_date,
        measure_due_date
    from source
)

select * from renamed
