{#-
  Fairness of the cadre evaluation model in the open: per protected attribute (性别, 民族, 年龄段) and
  group, on the champion's held-out year, how often the predicted grade is the recorded one, the mean
  distance in grades, over- and under-grading, the share graded 优秀 (recorded vs predicted), and how
  far the group's accuracy is below all cadres'; flagged when that gap exceeds [models] fairness_max_gap.
  Computed once, when the model was trained (models/cadre_evaluation/evaluate.py); read here as is.
-#}
with fairness as (
    select * from {{ ref('stg_cadre_evaluation_fairness') }}
),

final as (
    select
        test_year,
        attribute,
        attribute_label,
        group_name,
        cadres,
        round(accuracy, 4) as accuracy,
        round(mean_abs_error, 4) as mean_abs_error,
        round(over_rate, 4) as over_rate,
        round(under_rate, 4) as under_rate,
        round(observed_excellent_share, 4) as observed_excellent_share,
        round(predicted_excellent_share, 4) as predicted_excellent_share,
        case when isnan(accuracy_gap) then null else round(accuracy_gap, 4) end as accuracy_gap,
        flagged,
        max_gap,
        model_version
    from fairness
)

select * from final
