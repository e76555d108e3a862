{%- set mart = 'mart_member_composition' -%}
{#- The last build's versions when only members' records and periods changed since (redcloud.marts
    UPDATED_MARTS; none on a full build): the held snapshots are then updated, not recounted. -#}
{%- set base = var('update_from', {}).get(mart) if is_incremental() else none -%}
{{
  config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['as_of_date', 'org_id', 'category', 'category_value'],
    incremental_predicates=["DBT_INTERNAL_DEST.as_of_date between " ~ changed_from(mart) ~ " and " ~ logical_date()],
    replace_predicate="DBT_INTERNAL_DEST.as_of_date between " ~ changed_from(mart) ~ " and " ~ logical_date(),
    partition_by=['as_of_date'],
  )
}}

with spine as (
    {{ snapshot_spine(is_incremental(), mart) }}
),

history as (
    select * from {{ ref('stg_member_status_history') }}
),

members as (
    select * from {{ ref('stg_members') }}
),

organizations as (
    select * from {{ ref('stg_organizations') }}
),

closure as (
    select * from {{ ref('int_org_tree_closure') }}
),
{%- if base %}

{#- The counts are additive: a snapshot's row is the sum of its members' contributions. A snapshot
    the last build holds becomes its rows plus the changed members' contributions now minus their
    contributions then (the inputs at the versions that build read); a snapshot it does not hold
    (the logical date, a new period end) is counted in full. A member is "changed" when any of its
    staged rows differs between the two versions (a superset is harmless: an unchanged member's
    two contributions cancel). The organisation tree is the same at both versions (a change there
    recounts, see redcloud.marts.changed_from). -#}
held_dates as (
    select distinct as_of_date
    from {{ this }} version as of {{ base['marts/' ~ mart] | int }}
    where as_of_date between {{ changed_from(mart) }} and {{ logical_date() }}
),

counted_dates as (
    select spine.as_of_date from spine left anti join held_dates on held_dates.as_of_date = spine.as_of_date
),

updated_dates as (
    select spine.as_of_date from spine left semi join held_dates on held_dates.as_of_date = spine.as_of_date
),

history_then as (
    {{ stg_member_status_history_select(at_version(source('silver', 'member_status_history'),
                                                   base['silver/member_status_history'])) }}
),

members_then as (
    {{ stg_members_select(at_version(source('silver', 'members'), base['silver/members'])) }}
),

history_added as (select * from history except select * from history_then),
history_removed as (select * from history_then except select * from history),
members_added as (select * from members except select * from members_then),
members_removed as (select * from members_then except select * from members),

changed_members as (
    select member_id from history_added
    union select member_id from history_removed
    union select member_id from members_added
    union select member_id from members_removed
),

history_now_changed as (select * from history left semi join changed_members using (member_id)),
members_now_changed as (select * from members left semi join changed_members using (member_id)),
history_then_changed as (select * from history_then left semi join changed_members using (member_id)),
members_then_changed as (select * from members_then left semi join changed_members using (member_id)),
{%- set parts = [('counted', 'counted_dates', 'history', 'members', ''),
                 ('now', 'updated_dates', 'history_now_changed', 'members_now_changed', ''),
                 ('then', 'updated_dates', 'history_then_changed', 'members_then_changed', '-')] %}
{%- else %}
{%- set parts = [('counted', 'spine', 'history', 'members', '')] %}
{%- endif %}

{#- category -> expression over with_attributes; var composition_categories selects a subset (unit tests). -#}
{%- set categories = {
    'total': "'合计'",
    'gender': "coalesce(gender, '未知')",
    'age_band': "coalesce(age_band, '未知')",
    'ethnicity': "coalesce(ethnicity, '未知')",
    'minority': "case when ethnicity is null then '未知' when ethnicity = " ~ vocab_literal('han') ~ " then " ~ vocab_literal('han') ~ " else '少数民族' end",
    'education': "coalesce(education, '未知')",
    'party_years_band': "coalesce(party_years_band, '未知')",
    'occupation': "coalesce(occupation, '未知')",
    'org_type': "coalesce(org_type, '未知')",
    'party_status': "coalesce(party_status, '未知')",
    'county': "coalesce(county_name, '市直')",
} -%}
{%- set wanted = var('composition_categories', categories.keys() | list) -%}

{%- for part, dates, part_history, part_members, sign in parts %}

on_roll_{{ part }} as (
    select
        dates.as_of_date,
        h.member_id,
        h.org_id,
        h.party_status
    from {{ dates }} as dates
    inner join {{ part_history }} as h
        on h.valid_from <= dates.as_of_date
        and (h.valid_to is null or h.valid_to > dates.as_of_date)
    where h.is_on_roll
),

with_attributes_{{ part }} as (
    select
        on_roll.as_of_date,
        on_roll.org_id,
        on_roll.member_id,
        on_roll.party_status,
        m.gender,
        m.ethnicity,
        m.education,
        m.occupation,
        {{ age_band('m.birth_date', 'on_roll.as_of_date') }} as age_band,
        {{ party_years_band('m.join_date', 'on_roll.as_of_date') }} as party_years_band,
        organizations.org_type,
        organizations.county_name
    from on_roll_{{ part }} as on_roll
    inner join {{ part_members }} as m
        on m.member_id = on_roll.member_id
    left join organizations
        on organizations.org_id = on_roll.org_id
),

categorised_{{ part }} as (
    select
        as_of_date,
        org_id,
        member_id,
        stack({{ wanted | length }}
        {%- for name in wanted %},
            '{{ name }}', {{ categories[name] }}
        {%- endfor %}
        ) as (category, category_value)
    from with_attributes_{{ part }}
),

leaf_counts_{{ part }} as (
    -- counted per (date, own organisation) first: a member's row then fans out to the ancestors as one
    -- of few group rows instead of one row per member (members x categories x ancestors before).
    -- count(*), not count(distinct member_id): a member is on one roll period at a snapshot (the
    -- periods of stg_member_status_history never overlap), joins one stg_members row (unique) and has
    -- one value per category (stack): all tested, so the rows of a group are distinct members.
    select
        as_of_date,
        org_id,
        category,
        category_value,
        {{ sign }}count(*) as members
    from categorised_{{ part }}
    group by 1, 2, 3, 4
),
{%- endfor %}

leaf_counts as (
    {%- for part, _, _, _, _ in parts %}
    select * from leaf_counts_{{ part }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

rolled_up as (
    -- each organisation reaches each ancestor once (int_org_tree_closure is unique, tested), so the
    -- sum over descendants counts each member once
    select
        leaf_counts.as_of_date,
        closure.ancestor_org_id as org_id,
        leaf_counts.category,
        leaf_counts.category_value,
        sum(leaf_counts.members) as members
    from leaf_counts
    inner join closure
        on closure.org_id = leaf_counts.org_id
    group by 1, 2, 3, 4
),
{%- if base %}

counts as (
    -- the held rows of the updated snapshots plus the changes; a group left with no member is gone
    select as_of_date, org_id, category, category_value, sum(members) as members
    from (
        select as_of_date, org_id, category, category_value, members from rolled_up
        union all
        select held.as_of_date, held.org_id, held.category, held.category_value, held.members
        from {{ this }} version as of {{ base['marts/' ~ mart] | int }} as held
        left semi join updated_dates on updated_dates.as_of_date = held.as_of_date
    )
    group by 1, 2, 3, 4
    having sum(members) <> 0
),
{%- else %}

counts as (
    select * from rolled_up
),
{%- endif %}

final as (
    select
        counts.as_of_date,
        counts.org_id,
        organizations.org_name,
        organizations.org_level,
        organizations.county_name,
        counts.category,
        counts.category_value,
        cast(counts.members as bigint) as members
    from counts
    left join organizations
        on organizations.org_id = counts.org_id
)

select * from final
