with source as (
    select * from {{ source('gold', 'fct_cadre_change') }}
),

renamed as (
    select
        -- ids
        cadre_id,
        unit_org_id,
        from_unit_org_id,
        -- text
        change_type,
        from_rank,
        from_position,
        to_rank,
        to_position,
        -- dates
        change_date,
        quarter
    from source
)

select * from renamed
