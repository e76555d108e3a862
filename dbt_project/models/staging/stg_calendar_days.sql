with source as (
    select * from {{ ref('cn_calendar_days') }}
),

renamed as (
    select
        cast(calendar_date as date) as calendar_date,
        day_kind
    from source
)

select * from renamed
