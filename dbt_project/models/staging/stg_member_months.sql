with source as (
    select * from {{ source('gold', 'fct_member_month') }}
),

renamed as (
    select
        -- ids
        member_id,
        org_id,
        -- numerics
        amount_due,
        amount_paid,
        dues_days_late,
        -- booleans
        dues_on_time,
        -- dates
        month
    from source
)

select * from renamed
