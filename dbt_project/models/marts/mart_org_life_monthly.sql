{#-
  Branch (党支部) x month: organisational life, 三会一课 and dues. Gold computes the meetings and the
  三会一课 requirement and completion (fct_branch_month, from [rules] sanhui_required); this mart adds
  the branch's place in the tree, the attendance rate and dues paid on time (gold fct_member_month).
  Incremental: a run replaces the months from the first one whose inputs changed since the last run
  (var changed_from, set by the marts stage) to the logical date's month.
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['org_id', 'month'],
    incremental_predicates=["DBT_INTERNAL_DEST.month between " ~ changed_month('mart_org_life_monthly') ~ " and " ~ logical_month()],
    replace_predicate="DBT_INTERNAL_DEST.month between " ~ changed_month('mart_org_life_monthly') ~ " and " ~ logical_month(),
  )
}}

with branch_months as (
    select * from {{ ref('stg_branch_months') }}
    where month <= {{ logical_month() }}
    {% if is_incremental() -%}
    and month >= {{ changed_month('mart_org_life_monthly') }}
    {%- endif %}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

member_months as (
    select * from {{ ref('stg_member_months') }}
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
        branch_months.org_id,
        branch_months.month,
        branch_months.quarter_start,
        organizations.org_name,
        organizations.org_type,
        organizations.parent_org_id,
        organizations.county_name,
        organizations.town_name,
        branch_months.meetings_total,
        branch_months.committee_meetings,
        branch_months.general_meetings,
        branch_months.group_meetings,
        branch_months.party_lectures,
        branch_months.theme_days,
        branch_months.sanhui_required as sanhui_required_per_quarter,
        branch_months.sanhui_held_qtd,
        round(branch_months.sanhui_completion_qtd, 4) as sanhui_completion_qtd,
        branch_months.committee_meetings >= 1 as committee_held_this_month,
        branch_months.attendance_rows,
        branch_months.attended,
        case when branch_months.attendance_rows > 0
             then round(branch_months.attended / branch_months.attendance_rows, 4) end as attendance_rate,
        cast(coalesce(dues.member_months, 0) as bigint) as dues_member_months,
        case when dues.member_months > 0
             then round(dues.dues_on_time_members / dues.member_months, 4) end as dues_on_time_rate
    from branch_months
    inner join organizations
        on organizations.org_id = branch_months.org_id
    left join dues
        on dues.org_id = branch_months.org_id and dues.month = branch_months.month
)

select * from final
