with source as (
    select * from {{ source('gold', 'fct_unit_leadership') }}
),

renamed as (
    select
        -- ids
        unit_org_id,
        -- numbers
        leaders,
        chiefs,
        deputies,
        avg_age,
        youngest_age,
        oldest_age,
        age_under_40,
        age_40_49,
        age_50_plus,
        young_leaders,
        women,
        minorities,
        vacancy_workdays,
        -- flags (the rules' verdicts, from gold)
        is_current,
        has_chief,
        vacancy_overdue,
        lacks_women,
        lacks_young,
        -- dates
        snapshot_date,
        quarter,
        chief_vacant_since
    from source
)

select * from renamed
