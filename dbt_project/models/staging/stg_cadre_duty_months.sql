with source as (
    select * from {{ source('gold', 'fct_cadre_duty_month') }}
),

renamed as (
    select
        -- ids
        cadre_id,
        unit_org_id,
        -- numbers
        record_count,
        targets,
        completed,
        completion_rate,
        review_score,
        ytd_targets,
        ytd_completed,
        ytd_completion_rate,
        workdays_overdue,
        -- flags (the rule's verdict, from gold)
        record_missing,
        -- dates
        month,
        year,
        due_date
    from source
)

select * from renamed
