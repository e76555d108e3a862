{{ config(tags=['model_outputs']) }}
with source as (
    select * from {{ source('model_outputs', 'score_cadre_evaluation') }}
),

renamed as (
    select
        cadre_id,
        cast(year as int) as year,
        grade_label as predicted_grade,  -- 优秀/称职/基本称职/不称职 (the model's code is predicted_grade)
        cast(score as double) as score
    from source
)

select * from renamed
