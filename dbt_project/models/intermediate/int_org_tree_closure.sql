{#-
  Closure table of the organisation tree: one row per (ancestor, descendant) pair, including each
  organisation with itself (distance 0). Built from parent_org_id by bounded self-joins (the tree is
  市委 > 区县委 > 乡镇/街道 > 党委/党总支 > 党支部: 5 levels; var max_org_depth leaves headroom), so a
  county's numbers include its towns and branches.
-#}
{%- set max_depth = var('max_org_depth', 8) -%}

with organizations as (
    select org_id, parent_org_id from {{ ref('stg_organizations') }}
),

walk as (
    select
        o0.org_id as org_id,
        o0.org_id as a0
        {%- for i in range(1, max_depth + 1) %},
        o{{ i }}.org_id as a{{ i }}
        {%- endfor %}
    from organizations as o0
    {%- for i in range(1, max_depth + 1) %}
    left join organizations as o{{ i }}
        on o{{ i }}.org_id = o{{ i - 1 }}.parent_org_id
    {%- endfor %}
),

pairs as (
    select
        org_id,
        stack({{ max_depth + 1 }}
        {%- for i in range(0, max_depth + 1) %}, {{ i }}, a{{ i }}{% endfor %}) as (distance, ancestor_org_id)
    from walk
)

select
    ancestor_org_id,
    org_id,
    distance
from pairs
where ancestor_org_id is not null
