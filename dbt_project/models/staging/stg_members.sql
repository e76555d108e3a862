with source as (
    select * from {{ source('silver', 'members') }}
),

renamed as (
    select
        -- ids
        member_id,
        org_id as current_org_id,
        -- text (pseudonymised upstream; no plain identifiers here)
        gender,
        ethnicity,
        education,
        occupation,
        party_status as current_party_status,
        membership_status as current_membership_status,
        -- dates
        birth_date,
        join_date,
        full_member_date
    from source
    where not coalesce(is_deleted, false)
)

select * from renamed
