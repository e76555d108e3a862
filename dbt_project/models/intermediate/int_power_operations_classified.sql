{#-
  数据铁笼 operations received up to the logical date, classified as of the end of that date:
  on time (办结 by the deadline), overdue (办结 after the deadline, or still open past it), open
  (not done, deadline not passed); with the number of complaints about each operation.
-#}
with operations as (
    select * from {{ ref('stg_power_operations') }}
),

complaints as (
    select * from {{ ref('stg_complaints') }}
),

cutoff as (
    select cast(date_add({{ logical_date() }}, 1) as timestamp) as end_of_day
),

complaints_per_op as (
    select op_id, count(*) as complaints
    from complaints, cutoff
    where op_id is not null and complaints.received_at < cutoff.end_of_day
    group by 1
),

final as (
    select
        operations.op_id,
        operations.dept_code,
        operations.dept_name,
        operations.item_name,
        coalesce(operations.handler_name, '未知') as handler_name,
        trunc(cast(operations.received_at as date), 'MM') as month,
        operations.received_at,
        operations.deadline_at,
        case when operations.completed_at < cutoff.end_of_day then operations.completed_at end as completed_at,
        coalesce(operations.completed_at < cutoff.end_of_day and operations.completed_at <= operations.deadline_at, false) as is_on_time,
        coalesce(
            (operations.completed_at < cutoff.end_of_day and operations.completed_at > operations.deadline_at)
            or ((operations.completed_at is null or operations.completed_at >= cutoff.end_of_day)
                and operations.deadline_at < cutoff.end_of_day),
            false
        ) as is_overdue,
        coalesce(complaints_per_op.complaints, 0) as complaints
    from operations
    cross join cutoff
    left join complaints_per_op
        on complaints_per_op.op_id = operations.op_id
    where operations.received_at < cutoff.end_of_day
)

select * from final
