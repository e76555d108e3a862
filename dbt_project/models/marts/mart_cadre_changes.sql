{#-
  Cadre changes (干部队伍变化) per unit, quarter and kind: 任职, 晋升, 降职, 交流, 岗位调整, 免职, counted
  where the change lands (the new post's unit; the old one for 免职), from gold fct_cadre_change.
  grain: one row per (unit_org_id, quarter, change_type).
-#}
with changes as (
    select * from {{ ref('stg_cadre_changes') }}
    where change_date <= {{ logical_date() }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

per_unit as (
    select
        unit_org_id,
        quarter,
        change_type,
        cast(count(*) as bigint) as changes,
        cast(count(distinct cadre_id) as bigint) as cadres,
        cast(count(case when from_unit_org_id is not null and from_unit_org_id <> unit_org_id then 1 end) as bigint)
            as from_other_units
    from changes
    group by 1, 2, 3
),

final as (
    select
        per_unit.unit_org_id,
        organizations.org_name as unit_name,
        organizations.county_org_id,
        organizations.county_name,
        per_unit.quarter,
        per_unit.change_type,
        per_unit.changes,
        per_unit.cadres,
        per_unit.from_other_units
    from per_unit
    left join organizations on organizations.org_id = per_unit.unit_org_id
)

select * from final
