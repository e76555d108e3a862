{#-
  China's official calendar, one row per day from var calendar_start to calendar_end: a day is a
  working day when it is a make-up workday (调休), or a Monday-Friday that is not a public holiday
  (or bridging rest day).
-#}
with days as (
    select explode(sequence(date'{{ var("calendar_start") }}', date'{{ var("calendar_end") }}', interval 1 day)) as calendar_date
),

exceptions as (
    select * from {{ ref('stg_calendar_days') }}
),

final as (
    select
        days.calendar_date,
        coalesce(exceptions.day_kind = 'makeup_workday', false)
            or (dayofweek(days.calendar_date) between 2 and 6
                and not coalesce(exceptions.day_kind = 'public_holiday', false)) as is_workday,
        coalesce(exceptions.day_kind = 'makeup_workday', false) as is_makeup_workday,
        coalesce(exceptions.day_kind = 'public_holiday', false) as is_public_holiday
    from days
    left join exceptions
        on exceptions.calendar_date = days.calendar_date
)

select * from final
