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

{#- The first date an incremental run of `mart` recomputes: the earliest date whose inputs changed
    since the last marts run (var changed_from, {mart: date}, computed by redcloud.marts), not before
    var history_start and not after the logical date; without an entry, the logical date. -#}
{% macro changed_from(mart) -%}
  {%- set d = var('changed_from', {}).get(mart) -%}
  {%- if d -%}
  greatest(date'{{ var("history_start") }}', least(date'{{ d }}', {{ logical_date() }}))
  {%- else -%}
  {{ logical_date() }}
  {%- endif -%}
{%- endmacro %}

{#- First day of the month of changed_from(mart). -#}
{% macro changed_month(mart) -%}
  trunc({{ changed_from(mart) }}, 'MM')
{%- endmacro %}
