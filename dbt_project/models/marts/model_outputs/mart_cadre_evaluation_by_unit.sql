{#- Cadre evaluation (干部考核评价) by unit, year and predicted grade. -#}
with scores as (
    select * from {{ ref('stg_score_cadre_evaluation') }}
),

cadre_years as (
    select * from {{ ref('stg_cadre_years') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

joined as (
    select
        scores.year,
        cadre_years.unit_org_id,
        scores.predicted_grade,
        scores.score,
        cadre_years.assessment_grade
    from scores
    inner join cadre_years
        on cadre_years.cadre_id = scores.cadre_id and cadre_years.year = scores.year
),

final as (
    select
        joined.year,
        joined.unit_org_id,
        organizations.org_name as unit_name,
        organizations.county_name,
        joined.predicted_grade,
        cast(count(*) as bigint) as cadres,
        {{ exact_mean('joined.score') }} as mean_score,
        cast(count(case when joined.assessment_grade = joined.predicted_grade then 1 end) as bigint)
            as cadres_matching_recorded_grade
    from joined
    left join organizations on organizations.org_id = joined.unit_org_id
    group by 1, 2, 3, 4, 5
)

select * from final
