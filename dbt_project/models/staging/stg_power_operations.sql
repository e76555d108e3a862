with source as (
    select * from {{ source('silver', 'power_operations') }}
),

renamed as (
    select
        -- ids
        op_id,
        dept_code,
        -- text
        dept_name,
        item_name,
        handler_name,
        status as op_status,
        -- timestamps
        received_at,
        deadline as deadline_at,
        completed_at
    from source
    where not coalesce(is_deleted, false)
)

select * from renamed
