{{ stg_member_status_history_select(source('silver', 'member_status_history')) }}
