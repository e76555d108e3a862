with source as (
    select * from {{ source('gold', 'fct_volunteer_need') }}
),

renamed as (
    select
        -- ids
        need_id,
        org_id,
        team_id,
        -- text
        category,
        title,
        state,
        -- numbers
        match_workdays,
        people_served,
        service_hours,
        funds_yuan,
        workdays_overdue,
        -- flags (the rule's verdict, from gold)
        matched_in_time,
        reminder_due,
        -- dates
        published_on,
        match_due_date,
        matched_on,
        completed_on
    from source
)

select * from renamed
