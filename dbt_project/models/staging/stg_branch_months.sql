with source as (
    select * from {{ source('gold', 'fct_branch_month') }}
),

renamed as (
    select
        -- ids
        org_id,
        -- numerics
        meetings_total,
        committee_meetings,
        general_meetings,
        group_meetings,
        party_lectures,
        theme_days,
        other_meetings,
        attendance_rows,
        attended,
        sanhui_required,
        sanhui_held_qtd,
        sanhui_completion_qtd,
        -- booleans
        month_complete,
        -- dates
        month,
        quarter_start,
        as_of_date
    from source
)

select * from renamed
