{#-
  The rows a data test reads.

  An incremental mart's run rewrites one range of periods (its `replace_predicate`: the snapshot dates
  or months from its first changed date to the logical date) and leaves every other row as the run
  that wrote it, and tested it, left it. So, on an incremental run of a mart that already exists, its
  row-level and key tests (not_null, accepted_values, expression_is_true, unique_combination: every
  mart's key holds its period column) read only the rewritten range; before, they read 36 months of
  rows on a 36-month lake to check the few periods the day changed.

  Whole-table reads stay where the answer can change outside the range:
  - `relationships` tests: the other table (the organisation tree) may have changed;
  - a first build, a `--full-refresh`, and any mart that is not incremental: all rows are new.

  The test's own `where` config still applies (and-ed). This overrides dbt's
  `default__get_where_subquery`, which dbt calls for the model a generic test reads. The var
  `test_scope: all` makes every test read every row (`python -m benchmarks.ab --cases test_scope`).
-#}
{% macro spark__get_where_subquery(relation) -%}
  {%- set filters = [] -%}
  {%- set where = config.get('where') -%}
  {%- if where -%}{%- do filters.append('(' ~ where ~ ')') -%}{%- endif -%}
  {%- set rewritten = rewritten_range() -%}
  {%- if rewritten -%}{%- do filters.append('(' ~ rewritten ~ ')') -%}{%- endif -%}
  {%- if filters -%}
    {%- do return('(select * from ' ~ relation ~ ' where ' ~ filters | join(' and ') ~ ') dbt_subquery') -%}
  {%- else -%}
    {%- do return(relation) -%}
  {%- endif -%}
{%- endmacro %}

{#- The predicate of the range this run of the tested mart rewrote, or none (test every row). -#}
{% macro rewritten_range() -%}
  {%- if not execute or flags.FULL_REFRESH or model.resource_type != 'test' or var('test_scope', 'rewritten') == 'all' -%}
    {%- do return(none) -%}
  {%- endif -%}
  {%- if (model.test_metadata or {}).get('name') == 'relationships' -%}
    {%- do return(none) -%}
  {%- endif -%}
  {%- set tested = graph.nodes.get(model.attached_node) if model.attached_node else none -%}
  {%- if tested is none or tested.config.materialized != 'incremental'
        or tested.name not in var('existing_marts', []) -%}
    {%- do return(none) -%}
  {%- endif -%}
  {%- set predicate = tested.config.get('replace_predicate') -%}
  {%- do return(predicate | replace('DBT_INTERNAL_DEST.', '') if predicate else none) -%}
{%- endmacro %}
