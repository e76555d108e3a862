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
    history_start plus the logical date (full build); an incremental run takes the period ends from
    changed_from(mart) on, the logical date, and the snapshots the table already holds in that range
    (earlier runs' dates are recomputed, not dropped). -#}
{% macro snapshot_spine(incremental, mart=none) -%}
  {%- set months = 3 if var('snapshot_interval', 'quarter') == 'quarter' else 1 -%}
  {%- set start = changed_from(mart) if incremental else "date'" ~ var('history_start') ~ "'" -%}
    select distinct as_of_date from (
      select date_sub(add_months(m, {{ months }}), 1) as as_of_date
      from (select explode(sequence(trunc({{ start }}, '{{ 'QUARTER' if months == 3 else 'MM' }}'),
                                    {{ logical_date() }}, interval {{ months }} month)) as m)
      where date_sub(add_months(m, {{ months }}), 1) < {{ logical_date() }}
        and date_sub(add_months(m, {{ months }}), 1) >= {{ start }}
      union all
      select {{ logical_date() }} as as_of_date
      {%- if incremental %}
      union all
      select as_of_date from {{ this }} where as_of_date between {{ start }} and {{ logical_date() }}
      {%- endif %}
    )
{%- endmacro %}
