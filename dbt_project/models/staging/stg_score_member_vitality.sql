{{ config(tags=['model_outputs']) }}
with source as (
    select * from {{ source('model_outputs', 'score_member_vitality') }}
),

renamed as (
    select
        member_id,
        trunc(cast(month as date), 'MM') as month,
        cast(vitality_index as double) as vitality_index
    from source
)

select * from renamed
