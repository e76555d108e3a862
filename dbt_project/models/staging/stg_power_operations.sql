with source as (
    select * from {{ source('gold', 'fct_power_operation') }}
),

renamed as (
    select
        -- ids
        op_id,
        dept_code,
        -- text
        dept_name,
        item_name,
        coalesce(handler_name, '未知') as handler_name,
        -- numbers
        complaints,
        -- flags (the rule's verdict, from gold)
        is_on_time,
        is_overdue,
        -- dates and timestamps
        month,
        received_at,
        deadline_at,
        completed_at
    from source
)

select * from renamed
