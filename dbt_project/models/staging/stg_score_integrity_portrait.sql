{{ config(tags=['model_outputs']) }}
with source as (
    select * from {{ source('model_outputs', 'score_integrity_portrait') }}
),

renamed as (
    select
        cadre_id,
        cast(risk_score as double) as risk_score,
        cast(flag_gate as boolean) as flag_gate,
        tags
    from source
)

select * from renamed
