with source as (
    select * from {{ source('gold', 'fct_member_question') }}
),

renamed as (
    select
        -- ids
        question_id,
        member_id,
        org_id,
        -- text
        category,
        answered_by,
        state,
        -- numbers
        answer_workdays,
        workdays_overdue,
        -- flags (the rule's verdict, from gold)
        is_in_time,
        reminder_due,
        -- dates
        asked_on,
        due_date,
        answered_on
    from source
)

select * from renamed
