"""Quality gates (Great Expectations 1.x) on hand-built silver and gold tables: planted failures are
caught and named down to the row, results are recorded per expectation, clean tables pass, and a
failed gate puts the layer back (write-audit-publish). The real pipeline's layers pass their gates in
``tests/integration``.
"""

from __future__ import annotations

import json

import pytest
from pyspark.sql import functions as F
from quality_samples import PLAIN_ID, D, planted_ctx


@pytest.fixture(scope="module")
def planted(spark, settings, tmp_path_factory):
    """A run context on a lake holding the planted tables."""
    return planted_ctx(spark, settings, tmp_path_factory.mktemp("quality"))


def _failing(results) -> dict:
    return {(r.table, f["expectation"], f["column"]): f for r in results for f in r.failures}


def test_every_silver_entity_and_gold_table_has_a_suite():
    from redcloud.quality import suites_module
    from spark_jobs.silver.entities import BY_NAME

    expectations = suites_module()
    from expectations import gold as gold_suites
    from expectations import silver as silver_suites

    specific = {"silver": silver_suites.SUITES, "gold": gold_suites.SUITES}
    assert set(specific["silver"]) == set(BY_NAME)
    assert set(specific["gold"]) == {"dim_organization", "dim_member", "fct_member_month", "fct_project_lifecycle",
                                     "fct_project_status", "fct_power_operation", "fct_cadre_year", "fct_cadre_duty_month",
                                     "fct_unit_leadership", "fct_cadre_change", "fct_party_disclosure",
                                     "fct_project_support", "fct_cadre_training_year",
                                     "fct_member_question", "fct_volunteer_need"}
    # every other silver/gold table gets at least the baseline suite (not empty, no plain PII)
    for layer in ("silver", "gold"):
        assert set(expectations.suites(layer)) == set(specific[layer]) | set(expectations.BASELINE_TABLES[layer])
    for layer in ("silver", "gold"):
        for s in specific[layer].values():
            built = s.build(["some_text", "id_number_pseudonym", "_row_hash"])
            pii = [e for e in built if (e.meta or {}).get("check") == "no_plain_pii"]
            assert [e.configuration.kwargs["column"] for e in pii] == ["some_text"]   # hashes are not scanned
            assert any((e.meta or {}).get("check") in ("key_unique", "key_not_null") for e in built)


def test_gate_names_failing_expectations_and_rows(planted):
    from redcloud.quality import GateFailed, gate

    with pytest.raises(GateFailed) as err:
        gate(planted, "silver", tables=["organizations", "members", "meetings"])  # meetings: not in this lake
    exc = err.value
    assert [r.table for r in exc.results] == ["members"], "only members fails; organizations is clean"
    fails = _failing(exc.results)
    assert set(fails) == {("members", "expect_column_values_to_be_unique", "member_id"),
                          ("members", "expect_column_values_to_not_match_regex", "occupation"),
                          ("members", "expect_column_values_to_be_in_set", "gender")}
    dup = fails[("members", "expect_column_values_to_be_unique", "member_id")]
    assert dup["unexpected_count"] == 2 and sorted(e["key"]["member_id"] for e in dup["examples"]) == [3, 3]
    pii = fails[("members", "expect_column_values_to_not_match_regex", "occupation")]
    assert pii["examples"] == [{"key": {"member_id": 2}, "value": f"身份证{PLAIN_ID}"}]
    enum = fails[("members", "expect_column_values_to_be_in_set", "gender")]
    assert enum["examples"] == [{"key": {"member_id": 5}, "value": "未知"}] and enum["kwargs"]["value_set"] == ["男", "女"]
    msg = str(exc)
    for needle in ("silver/members", "expect_column_values_to_be_unique [key_unique] column=member_id",
                   "member_id=3 -> 3", "expect_column_values_to_not_match_regex [no_plain_pii] column=occupation",
                   f"member_id=2 -> '身份证{PLAIN_ID}'", "expect_column_values_to_be_in_set [in_set] column=gender",
                   "member_id=5 -> '未知'", "is_deleted == False", "质量闸门未通过"):
        assert needle in msg, f"{needle!r} missing from:\n{msg}"
    assert "silver/organizations" not in msg


def test_quality_results_are_recorded_per_expectation_and_rerun_safely(spark, planted):
    from redcloud.quality import GateFailed, gate

    lake = planted.lake
    with pytest.raises(GateFailed) as err:
        gate(planted, "silver", tables=["organizations", "members"])
    res = lake.read(spark, "ops", "quality_results").where(F.col("logical_date") == D).where("layer = 'silver'")
    rows = res.collect()
    with pytest.raises(GateFailed):
        gate(planted, "silver", tables=["organizations", "members"])  # rerun of the date: same rows
    again = lake.read(spark, "ops", "quality_results").where(F.col("logical_date") == D).where("layer = 'silver'")
    assert again.count() == len(rows)
    by_table = {}
    for r in rows:
        by_table.setdefault(r.table, []).append(r)
    assert set(by_table) == {"organizations", "members"}
    assert all(r.success for r in by_table["organizations"]) and len(by_table["organizations"]) >= 15
    failed = {(r.expectation, r.column): r for r in by_table["members"] if not r.success}
    assert len(failed) == 3 and len(by_table["members"]) >= 30
    pii = failed[("expect_column_values_to_not_match_regex", "occupation")]
    assert pii.unexpected_count == 1 and pii.check_name == "no_plain_pii"
    assert json.loads(pii.examples) == [{"key": {"member_id": 2}, "value": f"身份证{PLAIN_ID}"}]
    assert json.loads(pii.kwargs)["regex"].startswith("(?<![0-9A-Za-z])")
    n_exp = {r.table: r.n_expectations for r in err.value.results}
    assert len(by_table["members"]) == n_exp["members"]
    keys = [(r.expectation, r.column) for r in rows if r.table == "members"]
    assert len(keys) == len(set(keys)), "(expectation, column) must be unique per table"


def test_out_of_range_rate_in_gold_is_caught_with_its_compound_key(planted):
    from redcloud.quality import GateFailed, gate

    with pytest.raises(GateFailed) as err:
        gate(planted, "gold", tables=["fct_member_month", "dim_member"])  # dim_member absent: skipped
    fails = _failing(err.value.results)
    assert set(fails) == {("fct_member_month", "expect_column_values_to_be_between", "attendance_rate")}
    f = fails[("fct_member_month", "expect_column_values_to_be_between", "attendance_rate")]
    assert f["examples"] == [{"key": {"member_id": 7, "month": "2025-11-01"}, "value": 1.5}]
    assert f["kwargs"]["min_value"] == 0 and f["kwargs"]["max_value"] == 1
    assert "member_id=7, month='2025-11-01' -> 1.5" in str(err.value)


def test_a_clean_table_passes_and_a_table_without_suite_is_refused(spark, planted):
    from redcloud.quality import gate, suites_module

    expectations = suites_module()
    results = gate(planted, "silver", tables=["organizations"])
    assert len(results) == 1 and results[0].success and results[0].rows == 3 and not results[0].failures
    string_cols = [f.name for f in planted.lake.read(spark, "silver", "organizations").schema.fields
                   if f.dataType.simpleString() == "string"]
    assert results[0].n_expectations == len(expectations.suite_for("silver", "organizations").build(string_cols))
    with pytest.raises(KeyError, match="no quality suite"):
        gate(planted, "silver", tables=["no_such_table"])


def test_batch_scope_checks_the_days_rows_and_the_whole_tables_keys(spark, settings, tmp_path):
    """Silver's default gate: row-level expectations on the rows the date committed, uniqueness and
    row counts on the whole table; ``scope="table"`` rechecks every row."""
    import datetime as dt

    from helpers import make_ctx, settings_for
    from quality_samples import _organizations

    from redcloud.lake import DeltaDataSet
    from redcloud.quality import GateFailed, gate

    earlier = D - dt.timedelta(days=1)
    ctx = make_ctx(settings_for(tmp_path, settings), D, spark)
    orgs = _organizations(spark)
    # an old row (committed the day before) breaking a row-level rule; the date's rows are clean
    old_bad = orgs.withColumn("region_code", F.when(F.col("org_id") == 3, F.lit("52A102")).otherwise(F.col("region_code")))
    old_bad = old_bad.withColumn("_logical_date", F.when(F.col("org_id") == 3, F.lit(earlier)).otherwise(F.col("_logical_date")))

    def write(df):
        ctx.lake.write(spark, DeltaDataSet("organizations", "silver", df))

    write(old_bad)
    assert ctx.settings.quality.silver_scope == "batch"
    [res] = gate(ctx, "silver", ["organizations"])
    assert res.success and res.rows == 3 and res.batch_rows == 2
    by = {(o["expectation"], o["column"]): o for o in res.outcomes}
    assert by[("expect_column_values_to_match_regex", "region_code")]["element_count"] == 2
    assert by[("expect_column_values_to_be_unique", "org_code")]["element_count"] == 3   # the whole table
    with pytest.raises(GateFailed, match="region_code_format") as err:
        gate(ctx, "silver", ["organizations"], scope="table")
    assert err.value.results[0].failures[0]["examples"] == [{"key": {"org_id": 3}, "value": "52A102"}]

    # the date's row repeats an old row's org_code: uniqueness is checked across the whole table
    dup = old_bad.withColumn("org_code", F.when(F.col("org_id") == 2, F.lit("GY0000003")).otherwise(F.col("org_code")))
    write(dup)
    with pytest.raises(GateFailed) as err:
        gate(ctx, "silver", ["organizations"])
    assert {(f["expectation"], f["column"]) for f in err.value.results[0].failures} == {
        ("expect_column_values_to_be_unique", "org_code")}

    # a bad row in the date's batch is caught and named
    write(old_bad.withColumn("org_type", F.when(F.col("org_id") == 2, F.lit("未知")).otherwise(F.col("org_type"))))
    with pytest.raises(GateFailed, match="org_id=2 -> '未知'"):
        gate(ctx, "silver", ["organizations"])

    # nothing committed on the date: row-level expectations hold over 0 rows; the table must not be empty
    write(old_bad.withColumn("_logical_date", F.lit(earlier)))
    [res] = gate(ctx, "silver", ["organizations"])
    assert res.success and res.batch_rows == 0
    assert by.keys() == {(o["expectation"], o["column"]) for o in res.outcomes}
    write(old_bad.limit(0))
    with pytest.raises(GateFailed, match="not_empty"):
        gate(ctx, "silver", ["organizations"])


def test_a_writer_names_the_rows_it_replaced_in_a_gold_table(planted):
    """``batches``: the micro-batch's gold increments are checked on the days they replaced."""
    import datetime as dt

    from redcloud.quality import GateFailed, gate

    month = F.col("month")
    [res] = gate(planted, "gold", ["fct_member_month"], batches={"fct_member_month": month >= F.lit(dt.date(2025, 12, 1))})
    assert res.success and res.rows == 4 and res.batch_rows == 2   # member 7's bad November row is not in it
    with pytest.raises(GateFailed, match="member_id=7, month='2025-11-01' -> 1.5"):
        gate(planted, "gold", ["fct_member_month"], batches={"fct_member_month": month >= F.lit(dt.date(2025, 11, 1))})
