{{ config(tags=['model_outputs']) }}
with source as (
    select * from {{ source('model_outputs', 'cadre_evaluation_fairness') }}
),

renamed as (
    select
        -- the group
        attribute,
        attribute_label,
        `group` as group_name,
        cast(n as int) as cadres,
        -- held-out errors
        cast(accuracy as double) as accuracy,
        cast(mean_abs_error as double) as mean_abs_error,
        cast(over_rate as double) as over_rate,
        cast(under_rate as double) as under_rate,
        cast(observed_share_3 as double) as observed_excellent_share,
        cast(predicted_share_3 as double) as predicted_excellent_share,
        -- the gap and its flag (threshold [models] fairness_max_gap)
        cast(accuracy_gap as double) as accuracy_gap,
        flagged,
        cast(max_gap as double) as max_gap,
        cast(test_year as int) as test_year,
        model_version
    from source
)

select * from renamed
