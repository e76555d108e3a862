with source as (
    select * from {{ source('silver', 'complaints') }}
),

renamed as (
    select
        -- ids
        complaint_id,
        op_id,
        dept_code,
        -- text
        handler_name,
        category as complaint_category,
        status as complaint_status,
        -- timestamps
        received_at
    from source
    where not coalesce(is_deleted, false)
)

select * from renamed
