{#- Statistics bands, identical to spark_jobs/gold dim_member (age and 党龄 at a given date). -#}
{% macro age_band(birth_date, as_of) -%}
  {%- set years = 'floor(months_between(' ~ as_of ~ ', ' ~ birth_date ~ ') / 12)' -%}
  case
    when {{ birth_date }} is null then null
    when {{ years }} < 31 then '30岁及以下'
    when {{ years }} < 41 then '31-40岁'
    when {{ years }} < 51 then '41-50岁'
    when {{ years }} < 61 then '51-60岁'
    when {{ years }} < 71 then '61-70岁'
    else '71岁及以上'
  end
{%- endmacro %}

{% macro party_years_band(join_date, as_of) -%}
  {%- set years = 'floor(months_between(' ~ as_of ~ ', ' ~ join_date ~ ') / 12)' -%}
  case
    when {{ join_date }} is null then null
    when {{ years }} < 5 then '5年以下'
    when {{ years }} < 10 then '5-9年'
    when {{ years }} < 20 then '10-19年'
    when {{ years }} < 30 then '20-29年'
    when {{ years }} < 50 then '30-49年'
    else '50年及以上'
  end
{%- endmacro %}
