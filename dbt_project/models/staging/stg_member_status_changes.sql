with source as (
    select * from {{ source('silver', 'member_status_changes') }}
),

renamed as (
    select
        -- ids
        change_id,
        member_id,
        from_org_id,
        to_org_id,
        -- text
        change_type,
        -- dates
        change_date
    from source
    where not coalesce(is_deleted, false)
)

select * from renamed
