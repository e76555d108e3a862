{#-
  A mean rounded to `digits` decimals that does not depend on the order Spark adds the values in.
  avg() over doubles sums in whatever order the partitions arrive, so the same group can round to
  55.29 in one run and 55.3 in another; an incremental month would then differ from the same month
  of a full refresh. Summing exact decimals (each value first fixed at 10 decimals) makes the mean
  exact; the result stays a double, the column's type.
-#}
{% macro exact_mean(expr, digits=2) -%}
  cast(round(avg(cast({{ expr }} as decimal(24, 10))), {{ digits }}) as double)
{%- endmacro %}
