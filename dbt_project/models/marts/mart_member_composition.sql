{{
  config(
    materialized='incremental',
    incremental_strategy='merge',
    unique_key=['as_of_date', 'org_id', 'category', 'category_value'],
    incremental_predicates=["DBT_INTERNAL_DEST.as_of_date between " ~ changed_from('mart_member_composition') ~ " and " ~ logical_date()],
    replace_predicate="DBT_INTERNAL_DEST.as_of_date between " ~ changed_from('mart_member_composition') ~ " and " ~ logical_date(),
    partition_by=['as_of_date'],
  )
}}

with spine as (
    {{ snapshot_spine(is_incremental(), 'mart_member_composition') }}
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

on_roll as (
    select
        spine.as_of_date,
        history.member_id,
        history.org_id,
        history.party_status
    from spine
    inner join history
        on history.valid_from <= spine.as_of_date
        and (history.valid_to is null or history.valid_to > spine.as_of_date)
    where history.is_on_roll
),

with_attributes as (
    select
        on_roll.as_of_date,
        on_roll.org_id,
        on_roll.member_id,
        on_roll.party_status,
        members.gender,
        members.ethnicity,
        members.education,
        members.occupation,
        {{ age_band('members.birth_date', 'on_roll.as_of_date') }} as age_band,
        {{ party_years_band('members.join_date', 'on_roll.as_of_date') }} as party_years_band,
        organizations.org_type,
        organizations.county_name
    from on_roll
    inner join members
        on members.member_id = on_roll.member_id
    left join organizations
        on organizations.org_id = on_roll.org_id
),

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

categorised as (
    select
        as_of_date,
        org_id,
        member_id,
        stack({{ wanted | length }}
        {%- for name in wanted %},
            '{{ name }}', {{ categories[name] }}
        {%- endfor %}
        ) as (category, category_value)
    from with_attributes
),

leaf_counts as (
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
        count(*) as members
    from categorised
    group by 1, 2, 3, 4
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

final as (
    select
        rolled_up.as_of_date,
        rolled_up.org_id,
        organizations.org_name,
        organizations.org_level,
        organizations.county_name,
        rolled_up.category,
        rolled_up.category_value,
        cast(rolled_up.members as bigint) as members
    from rolled_up
    left join organizations
        on organizations.org_id = rolled_up.org_id
)

select * from final
