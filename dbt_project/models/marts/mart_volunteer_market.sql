{#-
  党员志愿服务超市 per county and month published: needs published, matched (in time), completed, still
  unmatched past the 时限 (gold's verdict, [rules] volunteer_match_workdays), teams matched, and what the
  completed services delivered: people helped (帮扶人数), service hours and funds raised (元) — the seed's
  "帮扶729人…4891小时…55940元". grain: one row per (county_org_id, month); the city's own branches
  count under the city (county_org_id NULL is not possible: every publishing branch has a county).
-#}
with needs as (
    select * from {{ ref('stg_volunteer_needs') }}
    where published_on <= {{ logical_date() }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

joined as (
    select needs.*, organizations.county_org_id, organizations.county_name
    from needs
    inner join organizations on organizations.org_id = needs.org_id
),

final as (
    select
        county_org_id,
        max(county_name) as county_name,
        trunc(published_on, 'MM') as month,
        cast(count(*) as bigint) as needs_published,
        cast(count(matched_on) as bigint) as needs_matched,
        cast(count(case when matched_in_time then 1 end) as bigint) as matched_in_time,
        cast(count(completed_on) as bigint) as needs_completed,
        cast(count(case when state = {{ vocab_literal("need_unmatched") }} then 1 end) as bigint) as unmatched_overdue,
        cast(count(distinct team_id) as bigint) as teams_matched,
        cast(sum(people_served) as bigint) as people_served,
        round(sum(service_hours), 1) as service_hours,
        round(sum(funds_yuan), 2) as funds_yuan
    from joined
    where county_org_id is not null
    group by county_org_id, trunc(published_on, 'MM')
)

select * from final
