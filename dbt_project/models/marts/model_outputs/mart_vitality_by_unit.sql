{#-
  Member vitality index (党员活力指数) distribution per organisation (subtree roll-up) and month, by
  the member's current organisation.
  Incremental: a run replaces the months from the first one whose scores changed, or that holds a
  score of a member who moved or was deleted since the last run (var changed_from, set by the marts
  stage), to the logical date's month. The median is exact, so a month recomputed alone equals the
  same month of a full refresh.
-#}
{{
  config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['month', 'org_id'],
    incremental_predicates=["DBT_INTERNAL_DEST.month between " ~ changed_month('mart_vitality_by_unit') ~ " and " ~ logical_month()],
    replace_predicate="DBT_INTERNAL_DEST.month between " ~ changed_month('mart_vitality_by_unit') ~ " and " ~ logical_month(),
  )
}}

with scores as (
    select * from {{ ref('stg_score_member_vitality') }}
    where month <= {{ logical_month() }}
    {% if is_incremental() -%}
    and month >= {{ changed_month('mart_vitality_by_unit') }}
    {%- endif %}
),

members as (
    select member_id, current_org_id as org_id from {{ ref('stg_members') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

closure as (
    select * from {{ ref('int_org_tree_closure') }}
),

scored as (
    select scores.month, members.org_id, scores.member_id, scores.vitality_index
    from scores
    inner join members on members.member_id = scores.member_id
),

rolled_up as (
    select
        scored.month,
        closure.ancestor_org_id as org_id,
        count(*) as members_scored,
        {{ exact_mean('scored.vitality_index') }} as mean_vitality,
        percentile(scored.vitality_index, 0.5) as median_vitality,
        count(case when scored.vitality_index < 40 then 1 end) as members_low,
        count(case when scored.vitality_index >= 40 and scored.vitality_index < 70 then 1 end) as members_mid,
        count(case when scored.vitality_index >= 70 then 1 end) as members_high
    from scored
    inner join closure on closure.org_id = scored.org_id
    group by 1, 2
),

final as (
    select
        rolled_up.month,
        rolled_up.org_id,
        organizations.org_name,
        organizations.org_level,
        organizations.county_name,
        cast(rolled_up.members_scored as bigint) as members_scored,
        rolled_up.mean_vitality,
        round(rolled_up.median_vitality, 2) as median_vitality,
        cast(rolled_up.members_low as bigint) as members_low,
        cast(rolled_up.members_mid as bigint) as members_mid,
        cast(rolled_up.members_high as bigint) as members_high
    from rolled_up
    left join organizations on organizations.org_id = rolled_up.org_id
)

select * from final
