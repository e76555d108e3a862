{{ config(tags=['model_outputs']) }}
with source as (
    select * from {{ source('model_outputs', 'score_cadre_evaluation') }}
),

renamed as (
    select
        cadre_id,
        cast(year as int) as year,
        predicted_grade,
        cast(score as double) as score
    from source
)

select * from renamed
