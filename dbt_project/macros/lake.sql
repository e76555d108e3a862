{#- Path helpers: sources are read by path from the lake (no metastore registration needed). -#}

{% macro lake_root() -%}
  {%- set root = env_var('REDCLOUD_PATHS__LAKE_ROOT', '') -%}
  {%- if not root -%}
    {{ exceptions.raise_compiler_error("REDCLOUD_PATHS__LAKE_ROOT is not set: run dbt through redcloud.marts, or `eval $(python -m redcloud.marts env)` first") }}
  {%- endif -%}
  {{ return(root.rstrip('/')) }}
{%- endmacro %}

{% macro lake_path(layer, table) -%}
  {{ return(lake_root() ~ '/' ~ layer ~ '/' ~ table) }}
{%- endmacro %}

{#- The logical date of the run as a SQL date literal. -#}
{% macro logical_date() -%}
  date'{{ var("logical_date") }}'
{%- endmacro %}

{#- First day of the logical date's month. -#}
{% macro logical_month() -%}
  trunc({{ logical_date() }}, 'MM')
{%- endmacro %}
