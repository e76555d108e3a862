with source as (
    select * from {{ source('gold', 'fct_cadre_year') }}
),

renamed as (
    select
        -- ids
        cadre_id,
        member_id,
        unit_org_id,
        -- text
        rank,
        position,
        assessment_grade,
        -- dates
        year
    from source
)

select * from renamed
