{#- Branch innovation (基层党组织创新): score, archetype and anomaly flag per branch and quarter. -#}
with scores as (
    select * from {{ ref('stg_score_branch_innovation') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

final as (
    select
        scores.org_id,
        scores.quarter,
        organizations.org_name,
        organizations.org_type,
        organizations.town_name,
        organizations.county_name,
        round(scores.innovation_score, 2) as innovation_score,
        scores.archetype,
        coalesce(scores.is_anomaly, false) as is_anomaly
    from scores
    left join organizations on organizations.org_id = scores.org_id
)

select * from final
