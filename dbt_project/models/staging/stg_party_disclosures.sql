with source as (
    select * from {{ source('gold', 'fct_party_disclosure') }}
),

renamed as (
    select
        -- ids
        disclosure_id,
        org_id,
        -- text
        item_type,
        title,
        state,
        -- numbers
        items_required,
        items_published,
        completeness,
        workdays_overdue,
        -- flags (the rules' verdicts, from gold)
        is_on_time,
        is_complete,
        reminder_due,
        escalation_due,
        -- dates
        event_date,
        due_date,
        published_on
    from source
)

select * from renamed
