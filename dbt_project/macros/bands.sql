{#-
  Statistics bands from the vocabulary (redcloud.rules.vocab AGE_BANDS, PARTY_YEARS_BANDS), the same
  bands gold dim_member computes: whole years between a date and as_of, labelled.
-#}
{% macro band(from_date, as_of, bands_name) -%}
  {%- set years = 'floor(months_between(' ~ as_of ~ ', ' ~ from_date ~ ') / 12)' -%}
  case
    when {{ from_date }} is null then null
    {%- for upper, label in vocab(bands_name) %}
    {%- if upper is not none %}
    when {{ years }} < {{ upper }} then '{{ label }}'
    {%- else %}
    else '{{ label }}'
    {%- endif %}
    {%- endfor %}
  end
{%- endmacro %}

{% macro age_band(birth_date, as_of) -%}
  {{ band(birth_date, as_of, 'age_bands') }}
{%- endmacro %}

{% macro party_years_band(join_date, as_of) -%}
  {{ band(join_date, as_of, 'party_years_bands') }}
{%- endmacro %}
