{{ config(tags=['model_outputs']) }}
with source as (
    select * from {{ source('model_outputs', 'score_branch_innovation') }}
),

renamed as (
    select
        org_id,
        cast(quarter as string) as quarter,
        cast(innovation_score as double) as innovation_score,
        archetype,
        cast(is_anomaly as boolean) as is_anomaly
    from source
)

select * from renamed
