{#-
  党务公开 timeliness and completeness per 党支部 and quarter of the event: items due, published on time,
  published late, overdue and unpublished, not yet due, and published incomplete. The 时限 and each
  item's state on the logical date are gold's (fct_party_disclosure, [rules] disclosure_due_workdays).
  grain: one row per (org_id, quarter). Rebuilt in full (a late publication changes an earlier quarter).
-#}
with items as (
    select * from {{ ref('stg_party_disclosures') }}
    where event_date <= {{ logical_date() }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

per_org as (
    select
        org_id,
        trunc(event_date, 'quarter') as quarter,
        cast(count(*) as bigint) as items,
        cast(count(case when state = {{ vocab_literal("disclosed_on_time") }} then 1 end) as bigint) as on_time,
        cast(count(case when state = {{ vocab_literal("disclosed_late") }} then 1 end) as bigint) as late,
        cast(count(case when state = {{ vocab_literal("disclosure_overdue") }} then 1 end) as bigint) as overdue_unpublished,
        cast(count(case when state = {{ vocab_literal("disclosure_pending") }} then 1 end) as bigint) as pending,
        cast(count(case when published_on is not null and not is_complete then 1 end) as bigint) as incomplete,
        cast(count(case when escalation_due then 1 end) as bigint) as escalated
    from items
    group by 1, 2
),

final as (
    select
        per_org.org_id,
        organizations.org_name,
        organizations.org_type,
        organizations.county_org_id,
        organizations.county_name,
        organizations.town_org_id,
        organizations.town_name,
        per_org.quarter,
        per_org.items,
        per_org.on_time,
        per_org.late,
        per_org.overdue_unpublished,
        per_org.pending,
        per_org.incomplete,
        per_org.escalated,
        case when per_org.items - per_org.pending > 0
             then round(per_org.on_time / (per_org.items - per_org.pending), 4) end as timeliness_rate,
        case when per_org.on_time + per_org.late > 0
             then round(1 - per_org.incomplete / (per_org.on_time + per_org.late), 4) end as completeness_rate
    from per_org
    left join organizations on organizations.org_id = per_org.org_id
)

select * from final
