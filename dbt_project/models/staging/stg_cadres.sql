with source as (
    select * from {{ source('silver', 'cadres') }}
),

renamed as (
    select
        -- ids
        cadre_id,
        unit_org_id,
        -- text
        cadre_name,
        position,
        rank,
        cadre_status
    from source
    where not coalesce(is_deleted, false)
)

select * from renamed
