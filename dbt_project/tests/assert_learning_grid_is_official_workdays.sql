-- The gold 学习问答 grid and the official calendar seed agree: every grid day is an official working day.
select learning_days.cadre_id, learning_days.work_date
from {{ ref('stg_learning_days') }} as learning_days
left join {{ ref('int_workdays') }} as workdays
    on workdays.calendar_date = learning_days.work_date
where not coalesce(workdays.is_workday, false)
