{#-
  Branch (党支部) x month: 三会一课 and organisational life. 三会一课 is required per quarter
  (3 支委会 + 1 支部党员大会 + 1 党课 = 5, as in spark_jobs/gold/facts.py); the month row carries the
  quarter-to-date completion (held per type capped at the requirement / 5), so the last month of a
  quarter shows the quarter's completion. Attendance = 出席 rows / attendance rows of the month's
  meetings; dues on time = share of the branch's member-months with dues paid on time.
  Incremental: a run replaces the logical date's month only (meetings up to the logical date).
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['org_id', 'month'],
    incremental_predicates=["DBT_INTERNAL_DEST.month = " ~ logical_month()],
    replace_predicate="DBT_INTERNAL_DEST.month = " ~ logical_month(),
  )
}}

with spine as (
    {{ month_spine(is_incremental()) }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

meetings as (
    select * from {{ ref('int_branch_meetings_monthly') }}
    where meeting_date <= {{ logical_date() }}
),

member_months as (
    select * from {{ ref('stg_member_months') }}
),

branches as (
    select org_id, org_name, org_type, parent_org_id, county_name, town_name
    from organizations
    where org_level = '党支部'
),

grid as (
    select branches.*, spine.month, trunc(spine.month, 'QUARTER') as quarter_start
    from branches
    cross join spine
),

month_counts as (
    select
        org_id,
        month,
        count(*) as meetings_total,
        count(case when meeting_type = '支委会' then 1 end) as committee_meetings,
        count(case when meeting_type = '支部党员大会' then 1 end) as general_meetings,
        count(case when meeting_type = '党课' then 1 end) as party_lectures,
        count(case when meeting_type = '主题党日' then 1 end) as theme_days,
        sum(attendance_rows) as attendance_rows,
        sum(attended) as attended
    from meetings
    group by 1, 2
),

quarter_to_date as (
    select
        grid.org_id,
        grid.month,
        count(case when meetings.meeting_type = '支委会' then 1 end) as committee_qtd,
        count(case when meetings.meeting_type = '支部党员大会' then 1 end) as general_qtd,
        count(case when meetings.meeting_type = '党课' then 1 end) as lecture_qtd
    from grid
    left join meetings
        on meetings.org_id = grid.org_id
        and meetings.month >= grid.quarter_start
        and meetings.month <= grid.month
    group by 1, 2
),

dues as (
    select
        org_id,
        month,
        count(*) as member_months,
        count(case when dues_on_time then 1 end) as dues_on_time_members
    from member_months
    where month <= {{ logical_month() }}
    group by 1, 2
),

final as (
    select
        grid.org_id,
        grid.month,
        grid.quarter_start,
        grid.org_name,
        grid.org_type,
        grid.parent_org_id,
        grid.county_name,
        grid.town_name,
        cast(coalesce(month_counts.meetings_total, 0) as bigint) as meetings_total,
        cast(coalesce(month_counts.committee_meetings, 0) as bigint) as committee_meetings,
        cast(coalesce(month_counts.general_meetings, 0) as bigint) as general_meetings,
        cast(coalesce(month_counts.party_lectures, 0) as bigint) as party_lectures,
        cast(coalesce(month_counts.theme_days, 0) as bigint) as theme_days,
        5 as sanhui_required_per_quarter,
        cast(least(quarter_to_date.committee_qtd, 3) + least(quarter_to_date.general_qtd, 1)
             + least(quarter_to_date.lecture_qtd, 1) as int) as sanhui_held_qtd,
        round((least(quarter_to_date.committee_qtd, 3) + least(quarter_to_date.general_qtd, 1)
             + least(quarter_to_date.lecture_qtd, 1)) / 5.0, 4) as sanhui_completion_qtd,
        coalesce(month_counts.committee_meetings, 0) >= 1 as committee_held_this_month,
        cast(coalesce(month_counts.attendance_rows, 0) as bigint) as attendance_rows,
        cast(coalesce(month_counts.attended, 0) as bigint) as attended,
        case when month_counts.attendance_rows > 0
             then round(month_counts.attended / month_counts.attendance_rows, 4) end as attendance_rate,
        cast(coalesce(dues.member_months, 0) as bigint) as dues_member_months,
        case when dues.member_months > 0
             then round(dues.dues_on_time_members / dues.member_months, 4) end as dues_on_time_rate
    from grid
    left join month_counts
        on month_counts.org_id = grid.org_id and month_counts.month = grid.month
    left join quarter_to_date
        on quarter_to_date.org_id = grid.org_id and quarter_to_date.month = grid.month
    left join dues
        on dues.org_id = grid.org_id and dues.month = grid.month
)

select * from final
