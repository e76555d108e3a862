{#- Month starts from var('history_start') to the logical date's month (full build), or only the
    logical date's month (incremental run). -#}
{% macro month_spine(incremental) -%}
  {%- if incremental -%}
    select {{ logical_month() }} as month
  {%- else -%}
    select explode(sequence(trunc(date'{{ var("history_start") }}', 'MM'), {{ logical_month() }}, interval 1 month)) as month
  {%- endif -%}
{%- endmacro %}

{#- Snapshot dates for composition: period ends (var snapshot_interval, default quarter) since
    history_start plus the logical date (full build), or only the logical date (incremental run). -#}
{% macro snapshot_spine(incremental) -%}
  {%- if incremental -%}
    select {{ logical_date() }} as as_of_date
  {%- else -%}
    select distinct as_of_date from (
      {%- set step = var('snapshot_interval', 'quarter') %}
      select date_sub(add_months(m, {{ 3 if step == 'quarter' else 1 }}), 1) as as_of_date
      from (select explode(sequence(trunc(date'{{ var("history_start") }}', '{{ 'QUARTER' if step == 'quarter' else 'MM' }}'),
                                    {{ logical_date() }}, interval {{ 3 if step == 'quarter' else 1 }} month)) as m)
      where date_sub(add_months(m, {{ 3 if step == 'quarter' else 1 }}), 1) < {{ logical_date() }}
      union all
      select {{ logical_date() }} as as_of_date
    )
  {%- endif -%}
{%- endmacro %}
