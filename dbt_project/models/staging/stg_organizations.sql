with source as (
    select * from {{ source('gold', 'dim_organization') }}
),

renamed as (
    select
        -- ids
        cast(org_id as bigint) as org_id,
        cast(parent_org_id as bigint) as parent_org_id,
        county_org_id,
        town_org_id,
        -- text
        org_code,
        org_name,
        org_level,
        org_type,
        region_code,
        county_name,
        town_name,
        -- tree
        path as ancestor_path,
        depth,
        -- dates
        established_date
    from source
)

select * from renamed
