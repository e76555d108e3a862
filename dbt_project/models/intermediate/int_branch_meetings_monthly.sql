{#- Branch x month: meetings held by type and attendance, from silver meetings and attendance. -#}
with meetings as (
    select * from {{ ref('stg_meetings') }}
),

attendance as (
    select * from {{ ref('stg_meeting_attendance') }}
),

attendance_per_meeting as (
    select
        meeting_id,
        count(*) as attendance_rows,
        count(case when is_present then 1 end) as attended
    from attendance
    group by 1
),

final as (
    select
        meetings.org_id,
        meetings.meeting_month as month,
        meetings.meeting_date,
        meetings.meeting_id,
        meetings.meeting_type,
        coalesce(attendance_per_meeting.attendance_rows, 0) as attendance_rows,
        coalesce(attendance_per_meeting.attended, 0) as attended
    from meetings
    left join attendance_per_meeting
        on attendance_per_meeting.meeting_id = meetings.meeting_id
)

select * from final
