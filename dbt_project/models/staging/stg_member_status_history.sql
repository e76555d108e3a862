with source as (
    select * from {{ source('silver', 'member_status_history') }}
),

renamed as (
    select
        -- ids
        member_id,
        org_id,
        -- text
        membership_status,
        party_status,
        opened_by,
        -- booleans
        is_on_roll,
        is_mobile,
        is_current,
        -- validity (valid_to exclusive, null = open)
        valid_from,
        valid_to
    from source
)

select * from renamed
