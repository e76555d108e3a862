with source as (
    select * from {{ source('silver', 'meetings') }}
),

renamed as (
    select
        -- ids
        meeting_id,
        org_id,
        -- text
        meeting_type,
        -- numerics
        declared_attendance,
        -- dates
        meeting_date,
        trunc(meeting_date, 'MM') as meeting_month
    from source
    where not coalesce(is_deleted, false)
)

select * from renamed
