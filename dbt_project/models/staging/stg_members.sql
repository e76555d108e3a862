{{ stg_members_select(source('silver', 'members')) }}
