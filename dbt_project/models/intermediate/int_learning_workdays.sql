{#-
  学习问答 obligation days: one row per obligated cadre and working day, whether they answered.
  Gold (fct_learning_daily) already holds only official working days (China's calendar with 调休)
  and decides who is obligated ([rules] learning_min_level): this model only keeps those rows.
-#}
with learning_days as (
    select * from {{ ref('stg_learning_days') }}
),

final as (
    select
        learning_days.cadre_id,
        learning_days.member_id,
        learning_days.rank,
        learning_days.work_date,
        trunc(learning_days.work_date, 'MM') as month,
        learning_days.is_makeup_workday,
        coalesce(learning_days.answered, false) as answered,
        learning_days.miss_streak
    from learning_days
    where learning_days.is_obligated
)

select * from final
