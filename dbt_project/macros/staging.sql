{#- The staging selects of the tables mart_member_composition reads at an earlier Delta version too
    (its update from the last build, var update_from): stg_members and stg_member_status_history are
    these selects over the current table, so both versions go through the same definition. -#}

{% macro stg_members_select(relation) -%}
with source as (
    select * from {{ relation }}
),

renamed as (
    select
        -- ids
        member_id,
        org_id as current_org_id,
        -- text (pseudonymised upstream; no plain identifiers here)
        gender,
        ethnicity,
        education,
        occupation,
        party_status as current_party_status,
        membership_status as current_membership_status,
        -- dates
        birth_date,
        join_date,
        full_member_date
    from source
    where not coalesce(is_deleted, false)
)

select * from renamed
{%- endmacro %}

{% macro stg_member_status_history_select(relation) -%}
with source as (
    select * from {{ relation }}
),

renamed as (
    select
        -- ids
        member_id,
        org_id,
        -- text
        membership_status,
        party_status,
        opened_by,
        -- booleans
        is_on_roll,
        is_mobile,
        is_current,
        -- validity (valid_to exclusive, null = open)
        valid_from,
        valid_to
    from source
)

select * from renamed
{%- endmacro %}

{#- A source table at the Delta version `version` (time travel). -#}
{% macro at_version(relation, version) -%}
  {{ relation }} version as of {{ version | int }}
{%- endmacro %}
