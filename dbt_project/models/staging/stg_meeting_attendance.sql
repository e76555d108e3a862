with source as (
    select * from {{ source('silver', 'meeting_attendance') }}
),

renamed as (
    select
        -- ids
        attendance_id,
        meeting_id,
        member_id,
        -- text
        status as attendance_status,
        -- booleans
        status = '出席' as is_present
    from source
    where not coalesce(is_deleted, false)
)

select * from renamed
