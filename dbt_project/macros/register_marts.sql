{#-
  Register existing mart tables (Delta folders under <lake_root>/marts) in the session catalog, so that
  incremental models see their table in a fresh process instead of rebuilding it. `names` is the list of
  marts whose Delta log exists (redcloud.marts passes it; the Hive metastore of a stand-alone dbt keeps
  registrations between runs).
-#}
{% macro register_marts(names=none) %}
  {%- set names = names if names is not none else var('existing_marts', []) -%}
  {%- if execute and names -%}
    {% do run_query('create schema if not exists ' ~ target.schema) %}
    {%- for name in names -%}
      {% do run_query('create table if not exists ' ~ target.schema ~ '.' ~ name ~ " using delta location '" ~ lake_path('marts', name) ~ "'") %}
    {%- endfor -%}
  {%- endif -%}
{% endmacro %}
