{#-
  学习问答 obligation days: one row per obligated cadre and OFFICIAL working day (China's calendar,
  make-up workdays 调休 count, weekends and public holidays do not), whether they answered that day.
  Days of the gold grid that the official calendar does not list as working days are dropped.
-#}
with learning_days as (
    select * from {{ ref('stg_learning_days') }}
),

workdays as (
    select * from {{ ref('int_workdays') }}
),

final as (
    select
        learning_days.cadre_id,
        learning_days.member_id,
        learning_days.rank,
        learning_days.work_date,
        trunc(learning_days.work_date, 'MM') as month,
        workdays.is_makeup_workday,
        coalesce(learning_days.answered, false) as answered,
        learning_days.miss_streak
    from learning_days
    inner join workdays
        on workdays.calendar_date = learning_days.work_date
        and workdays.is_workday
    where learning_days.is_obligated
)

select * from final
