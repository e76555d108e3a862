{#-
  Incremental writes for the marts that own a range of periods (snapshot dates, months).

  A model that sets `replace_predicate` (SQL over DBT_INTERNAL_DEST, e.g. "DBT_INTERNAL_DEST.month
  between <changed month> and <logical month>") is written with Delta's selective overwrite:
  `insert into <target> replace where <predicate> select <target's columns> from <new rows>`. One
  atomic commit replaces every target row in the range by the new rows (rows the new batch no longer
  has are gone, rows outside the range are untouched), and Delta refuses the commit if a new row falls
  outside the range. That is what a MERGE on the unique key restricted to the range
  (`incremental_predicates`) with `when not matched by source ... then delete` gives, without the
  join of the new rows with the target: on the 300k city the composition mart's daily update took
  70 s as a MERGE over its snapshot range; the four marts over their whole range took 87.5 s as a
  MERGE and 44.9 s written this way (benchmarks/results/ab_300000_h3_20261206T214317.md). Rerunning a date writes the same
  rows; a backfill of an earlier date touches only that date's range. dbt-spark accepts only its own
  strategy names, so these models say `incremental_strategy='merge'`; `var('marts_write', 'replace_where')`
  set to 'merge' restores the MERGE (for a before/after comparison).

  Without `replace_predicate`: identical to dbt-spark's spark__get_merge_sql.
-#}
{% macro spark__get_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) %}
  {%- set predicates = [] if incremental_predicates is none else [] + incremental_predicates -%}
  {%- set dest_columns = adapter.get_columns_in_relation(target) -%}
  {%- set merge_update_columns = config.get('merge_update_columns') -%}
  {%- set merge_exclude_columns = config.get('merge_exclude_columns') -%}
  {%- set update_columns = get_merge_update_columns(merge_update_columns, merge_exclude_columns, dest_columns) -%}
  {%- set replace_predicate = config.get('replace_predicate') -%}

  {%- if replace_predicate and var('marts_write', 'replace_where') == 'replace_where' %}
  insert into {{ target }}
      replace where {{ replace_predicate | replace('DBT_INTERNAL_DEST.', '') }}
      select {{ dest_columns | map(attribute='quoted') | join(', ') }} from {{ source }}
  {%- else %}

  {% if unique_key %}
      {% if unique_key is sequence and unique_key is not mapping and unique_key is not string %}
          {% for key in unique_key %}
              {% do predicates.append('DBT_INTERNAL_SOURCE.' ~ key ~ ' <=> DBT_INTERNAL_DEST.' ~ key) %}
          {% endfor %}
      {% else %}
          {% do predicates.append('DBT_INTERNAL_SOURCE.' ~ unique_key ~ ' <=> DBT_INTERNAL_DEST.' ~ unique_key) %}
      {% endif %}
  {% else %}
      {% do predicates.append('FALSE') %}
  {% endif %}

  merge into {{ target }} as DBT_INTERNAL_DEST
      using {{ source }} as DBT_INTERNAL_SOURCE
      on {{ predicates | join(' and ') }}
      when matched then update set
        {% if update_columns -%}{%- for column_name in update_columns %}
            {{ column_name }} = DBT_INTERNAL_SOURCE.{{ column_name }}
            {%- if not loop.last %}, {%- endif %}
        {%- endfor %}
        {%- else %} * {% endif %}
      when not matched then insert *
      {%- if replace_predicate %}
      when not matched by source and ({{ replace_predicate }}) then delete
      {%- endif %}
  {%- endif %}
{% endmacro %}
