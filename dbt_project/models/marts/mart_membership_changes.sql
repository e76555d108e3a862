with changes as (
    select * from {{ ref('stg_member_status_changes') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

closure as (
    select * from {{ ref('int_org_tree_closure') }}
),

attributed as (
    select
        change_id,
        member_id,
        change_type,
        trunc(change_date, 'MM') as month,
        -- leaving events count against the organisation left, arriving events against the one joined
        case when change_type in ('转出', '去世', '流动') then from_org_id else to_org_id end as org_id
    from changes
    where change_date <= {{ logical_date() }}
),

rolled_up as (
    select
        attributed.month,
        closure.ancestor_org_id as org_id,
        count(case when attributed.change_type = '入党' then 1 end) as joined,
        count(case when attributed.change_type = '转正' then 1 end) as became_full_members,
        count(case when attributed.change_type = '转入' then 1 end) as transferred_in,
        count(case when attributed.change_type = '转出' then 1 end) as transferred_out,
        count(case when attributed.change_type = '流动' then 1 end) as became_mobile,
        count(case when attributed.change_type = '去世' then 1 end) as deceased
    from attributed
    inner join closure
        on closure.org_id = attributed.org_id
    group by 1, 2
),

final as (
    select
        rolled_up.month,
        rolled_up.org_id,
        organizations.org_name,
        organizations.org_level,
        organizations.county_name,
        cast(rolled_up.joined as bigint) as joined,
        cast(rolled_up.became_full_members as bigint) as became_full_members,
        cast(rolled_up.transferred_in as bigint) as transferred_in,
        cast(rolled_up.transferred_out as bigint) as transferred_out,
        cast(rolled_up.became_mobile as bigint) as became_mobile,
        cast(rolled_up.deceased as bigint) as deceased,
        cast(rolled_up.joined + rolled_up.transferred_in
             - rolled_up.transferred_out - rolled_up.deceased as bigint) as net_change
    from rolled_up
    left join organizations
        on organizations.org_id = rolled_up.org_id
)

select * from final
