with source as (
    select * from {{ source('gold', 'fct_village_work_daily') }}
),

renamed as (
    select
        -- ids
        assignment_id,
        cadre_id,
        village_org_id,
        -- text
        role,
        -- numerics
        record_count,
        photo_count,
        days_without_record,
        -- booleans
        has_record,
        signed_in,
        is_makeup_workday,
        -- dates and timestamps
        work_date,
        first_sign_in_at
    from source
)

select * from renamed
