{#- Integrity portrait (诚信画像) per leading cadre: risk score, tags and the gate flag for 评先选优/选拔任用. -#}
with scores as (
    select * from {{ ref('stg_score_integrity_portrait') }}
),

cadres as (
    select * from {{ ref('stg_cadres') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

final as (
    select
        scores.cadre_id,
        cadres.cadre_name,
        cadres.rank,
        cadres.position,
        cadres.unit_org_id,
        organizations.org_name as unit_name,
        organizations.county_name,
        round(scores.risk_score, 4) as risk_score,
        coalesce(scores.flag_gate, false) as flag_gate,
        scores.tags
    from scores
    left join cadres on cadres.cadre_id = scores.cadre_id
    left join organizations on organizations.org_id = cadres.unit_org_id
)

select * from final
