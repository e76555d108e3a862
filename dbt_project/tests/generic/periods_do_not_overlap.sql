{#- Rows of an SCD2 table whose period overlaps the next period of the same key (valid_to is the
    first day after the period, NULL while open). Marts that count one row per key and date rely on it. -#}
{% test periods_do_not_overlap(model, key, valid_from='valid_from', valid_to='valid_to') %}
select {{ key }}, {{ valid_from }}, {{ valid_to }}, next_from
from (
    select
        {{ key }},
        {{ valid_from }},
        {{ valid_to }},
        lead({{ valid_from }}) over (partition by {{ key }} order by {{ valid_from }}) as next_from
    from {{ model }}
) periods
where next_from is not null
  and ({{ valid_to }} is null or {{ valid_to }} > next_from)
{% endtest %}
