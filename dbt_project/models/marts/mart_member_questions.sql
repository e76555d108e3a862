{#-
  解决疑难问题 per 党支部 and month asked: questions, answered in time, answered late, open past the 时限,
  open within it, the median and mean working days to an answer. States are gold's
  (fct_member_question, [rules] question_answer_workdays). grain: one row per (org_id, month).
-#}
with questions as (
    select * from {{ ref('stg_member_questions') }}
    where asked_on <= {{ logical_date() }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

per_org as (
    select
        org_id,
        trunc(asked_on, 'MM') as month,
        cast(count(*) as bigint) as questions,
        cast(count(case when state = {{ vocab_literal("answered_in_time") }} then 1 end) as bigint) as answered_in_time,
        cast(count(case when state = {{ vocab_literal("answered_late") }} then 1 end) as bigint) as answered_late,
        cast(count(case when state = {{ vocab_literal("question_overdue") }} then 1 end) as bigint) as overdue_open,
        cast(count(case when state = {{ vocab_literal("question_open") }} then 1 end) as bigint) as open_in_time,
        percentile_approx(answer_workdays, 0.5) as median_answer_workdays,
        {{ exact_mean('answer_workdays') }} as mean_answer_workdays
    from questions
    group by 1, 2
),

final as (
    select
        per_org.org_id,
        organizations.org_name,
        organizations.county_org_id,
        organizations.county_name,
        organizations.town_name,
        per_org.month,
        per_org.questions,
        per_org.answered_in_time,
        per_org.answered_late,
        per_org.overdue_open,
        per_org.open_in_time,
        case when per_org.questions - per_org.open_in_time > 0
             then round(per_org.answered_in_time / (per_org.questions - per_org.open_in_time), 4) end as in_time_rate,
        per_org.median_answer_workdays,
        per_org.mean_answer_workdays
    from per_org
    left join organizations on organizations.org_id = per_org.org_id
)

select * from final
