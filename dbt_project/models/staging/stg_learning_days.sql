with source as (
    select * from {{ source('gold', 'fct_learning_daily') }}
),

renamed as (
    select
        -- ids
        cadre_id,
        member_id,
        -- text
        rank,
        -- numerics
        answers,
        miss_streak,
        -- booleans
        answered,
        is_obligated,
        is_makeup_workday,
        -- dates
        work_date,
        obligation_start
    from source
)

select * from renamed
