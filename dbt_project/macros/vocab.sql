{#-
  The business vocabulary (redcloud/rules/vocab.py), handed to dbt as JSON in REDCLOUD_DBT_VOCAB by
  redcloud.marts (and by the Airflow dbt DAG): statuses, levels and bands are never spelled in SQL.
  vocab('han') -> '汉族'; vocab('org_levels') -> a list. YAML tests read the same variable:
  values: "{{ fromjson(env_var('REDCLOUD_DBT_VOCAB'))['org_levels'] }}".
-#}
{% macro vocab(name) -%}
  {%- set text = env_var('REDCLOUD_DBT_VOCAB', '') -%}
  {%- if not text -%}
    {{ exceptions.raise_compiler_error("REDCLOUD_DBT_VOCAB is not set: run dbt through redcloud.marts, or `eval $(python -m redcloud.marts env)` first") }}
  {%- endif -%}
  {{ return(fromjson(text)[name]) }}
{%- endmacro %}

{#- A vocabulary value as a SQL string literal. -#}
{% macro vocab_literal(name) -%}
  '{{ vocab(name) | replace("'", "''") }}'
{%- endmacro %}
