with source as (
    select * from {{ source('gold', 'fct_cadre_training_year') }}
),

renamed as (
    select
        -- ids
        cadre_id,
        -- numbers
        classes_planned,
        classes_attended,
        classes_missed,
        classes_pending,
        hours,
        hours_required,
        hours_short,
        remaining_workdays,
        -- flags (the rule's verdict, from gold)
        shortfall_warning,
        year_complete,
        -- dates
        year,
        warning_from
    from source
)

select * from renamed
