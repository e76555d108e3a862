{#-
  数据铁笼 power operation by department x item x handler x month of receipt: operations, on time,
  overdue, open, complaints, and the monthly rankings (department among departments, handler within
  the department, by on-time rate then volume). Gold (fct_power_operation) classifies each operation
  at the end of the logical date; this mart counts its verdicts.
  Incremental: a month is never final (a late completion, or an open operation passing its deadline,
  changes the month it was received in), so a run replaces the months from the first one holding an
  operation whose row or verdict changed since the last run (var changed_from, set by the marts stage
  from gold fct_power_operation) to the logical date's month. Rankings are within a month.
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['month', 'dept_code', 'item_name', 'handler_name'],
    incremental_predicates=["DBT_INTERNAL_DEST.month between " ~ changed_month('mart_power_operation_monthly') ~ " and " ~ logical_month()],
    replace_predicate="DBT_INTERNAL_DEST.month between " ~ changed_month('mart_power_operation_monthly') ~ " and " ~ logical_month(),
  )
}}

with operations as (
    select * from {{ ref('stg_power_operations') }}
    where month <= {{ logical_month() }}
    {% if is_incremental() -%}
    and month >= {{ changed_month('mart_power_operation_monthly') }}
    {%- endif %}
),

per_handler as (
    select
        month,
        dept_code,
        max(dept_name) as dept_name,
        item_name,
        handler_name,
        count(*) as operations,
        count(case when is_on_time then 1 end) as on_time,
        count(case when is_overdue then 1 end) as overdue,
        count(case when completed_at is null and not is_overdue then 1 end) as open_not_due,
        sum(complaints) as complaints
    from operations
    group by month, dept_code, item_name, handler_name
),

per_dept as (
    select
        month,
        dept_code,
        sum(on_time) / sum(operations) as dept_on_time_rate,
        sum(operations) as dept_operations
    from per_handler
    group by 1, 2
),

dept_ranked as (
    select
        month,
        dept_code,
        dept_on_time_rate,
        dense_rank() over (partition by month order by dept_on_time_rate desc, dept_operations desc, dept_code) as dept_month_rank
    from per_dept
),

handler_totals as (
    select
        month,
        dept_code,
        handler_name,
        sum(on_time) / sum(operations) as handler_on_time_rate,
        sum(operations) as handler_operations
    from per_handler
    group by 1, 2, 3
),

handler_ranked as (
    select
        month,
        dept_code,
        handler_name,
        dense_rank() over (partition by month, dept_code
                           order by handler_on_time_rate desc, handler_operations desc, handler_name) as handler_month_rank
    from handler_totals
),

final as (
    select
        per_handler.month,
        per_handler.dept_code,
        per_handler.dept_name,
        per_handler.item_name,
        per_handler.handler_name,
        cast(per_handler.operations as bigint) as operations,
        cast(per_handler.on_time as bigint) as on_time,
        cast(per_handler.overdue as bigint) as overdue,
        cast(per_handler.open_not_due as bigint) as open_not_due,
        cast(per_handler.complaints as bigint) as complaints,
        round(per_handler.on_time / per_handler.operations, 4) as on_time_rate,
        round(per_handler.overdue / per_handler.operations, 4) as overdue_rate,
        round(dept_ranked.dept_on_time_rate, 4) as dept_on_time_rate,
        cast(dept_ranked.dept_month_rank as int) as dept_month_rank,
        cast(handler_ranked.handler_month_rank as int) as handler_month_rank
    from per_handler
    left join dept_ranked
        on dept_ranked.month = per_handler.month and dept_ranked.dept_code = per_handler.dept_code
    left join handler_ranked
        on handler_ranked.month = per_handler.month and handler_ranked.dept_code = per_handler.dept_code
        and handler_ranked.handler_name <=> per_handler.handler_name
)

select * from final
