"""Quality gates (Great Expectations 1.x) on hand-built silver and gold tables: planted failures are
caught and named down to the row, results are recorded per expectation, clean tables pass, and a
failed gate puts the layer back (write-audit-publish). The real pipeline's layers pass their gates in
``tests/integration``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import pytest
from helpers import make_ctx, settings_for
from pyspark.sql import functions as F

from redcloud.lake import DeltaDataSet

D = dt.date(2025, 12, 31)
PLAIN_ID = "520102199003078515"


def _hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _silver_meta(i: int, deleted: bool = False) -> dict:
    return dict(updated_at=dt.datetime(2025, 12, 30, 9, 0, i % 60), _batch_id="org.x@2025-12-31", _logical_date=D,
                _row_hash=_hex(f"row{i}"), is_deleted=deleted, deleted_on=D if deleted else None)


SILVER_META_DDL = ("updated_at timestamp, _batch_id string, _logical_date date, _row_hash string, "
                   "is_deleted boolean, deleted_on date")

MEMBER_DDL = ("member_id long, member_name string, gender string, ethnicity string, birth_date date, education string, "
              "occupation string, join_date date, full_member_date date, party_status string, "
              "membership_status string, is_mobile boolean, org_id long, id_number_pseudonym string, "
              "id_number_masked string, phone_pseudonym string, phone_masked string, " + SILVER_META_DDL)


def _member(i: int, member_id: int, deleted: bool = False, **over) -> dict:
    row = dict(member_id=member_id, member_name=f"张{i}", gender="男", ethnicity="汉族", birth_date=dt.date(1980, 1, i),
               education="大学本科", occupation="专业技术人员", join_date=dt.date(2005, 7, 1),
               full_member_date=dt.date(2006, 7, 1), party_status="正式党员", membership_status="在册", is_mobile=False,
               org_id=3, id_number_pseudonym=_hex(f"id{i}"), id_number_masked=f"520102********{1000 + i}",
               phone_pseudonym=_hex(f"ph{i}"), phone_masked=f"139****{1000 + i}", **_silver_meta(i, deleted))
    row.update(over)
    return row


def _members(spark):
    rows = [
        _member(1, 1),
        _member(2, 2, occupation=f"身份证{PLAIN_ID}"),            # a plain 身份证号 inside a free-text column
        _member(3, 3), _member(4, 3),                              # duplicate key, both current
        _member(5, 4), _member(6, 4, deleted=True, id_number_pseudonym=_hex("id5")),  # duplicate, one deleted: fine
        _member(7, 5, gender="未知"),                               # unknown enum value
        _member(8, 6, party_status="预备党员", full_member_date=None),
    ]
    return spark.createDataFrame(rows, MEMBER_DDL)


def _organizations(spark):
    ddl = ("org_id long, org_code string, org_name string, parent_org_id long, org_level string, org_type string, "
           "region_code string, established_date date, " + SILVER_META_DDL)
    rows = [dict(org_id=1, org_code="GY0000001", org_name="中共贵阳市委员会", parent_org_id=None, org_level="市委",
                 org_type="党委", region_code="520100", established_date=dt.date(1950, 1, 1), **_silver_meta(1)),
            dict(org_id=2, org_code="GY0000002", org_name="中共贵阳市南明区委员会", parent_org_id=1, org_level="区县委",
                 org_type="党委", region_code="520102", established_date=dt.date(1955, 1, 1), **_silver_meta(2)),
            dict(org_id=3, org_code="GY0000003", org_name="南明区某社区党支部委员会", parent_org_id=2, org_level="党支部",
                 org_type="社区", region_code="520102", established_date=dt.date(2001, 1, 1), **_silver_meta(3))]
    return spark.createDataFrame(rows, ddl)


def _fct_member_month(spark):
    ddl = ("member_id long, month date, org_id long, login_days long, learning_days long, learning_points long, "
           "articles_read long, amount_due double, amount_paid double, dues_on_time boolean, dues_days_late int, "
           "volunteer_records long, volunteer_hours double, meetings_expected long, meetings_attended long, "
           "meetings_excused long, attendance_rate double")

    def row(mid, month, attended=1, expected=2, rate=None):
        return dict(member_id=mid, month=month, org_id=3, login_days=10, learning_days=5, learning_points=40,
                    articles_read=8, amount_due=20.0, amount_paid=20.0, dues_on_time=True, dues_days_late=0,
                    volunteer_records=1, volunteer_hours=2.0, meetings_expected=expected, meetings_attended=attended,
                    meetings_excused=0, attendance_rate=attended / expected if rate is None else rate)

    rows = [row(1, dt.date(2025, 11, 1)), row(1, dt.date(2025, 12, 1)), row(6, dt.date(2025, 12, 1), 2, 2),
            row(7, dt.date(2025, 11, 1), 1, 2, rate=1.5)]  # out-of-range rate
    return spark.createDataFrame(rows, ddl)


@pytest.fixture(scope="module")
def planted(spark, settings, tmp_path_factory):
    """A run context on a lake holding the planted tables."""
    ctx = make_ctx(settings_for(tmp_path_factory.mktemp("quality"), settings), D, spark)
    for layer, name, df in (("silver", "members", _members(spark)),
                            ("silver", "organizations", _organizations(spark)),
                            ("gold", "fct_member_month", _fct_member_month(spark))):
        ctx.lake.write(spark, DeltaDataSet(name, layer, df))
    return ctx


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
                                     "fct_project_status"}
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


def test_spark_engine_finds_the_same_failures(spark, planted):
    """Above the row threshold GX runs on Spark: it must report the same failures and rows."""
    from redcloud.quality import validate

    df = planted.lake.read(spark, "gold", "fct_member_month")
    on_spark = validate(df, "gold", "fct_member_month", pandas_max_rows=0)
    on_pandas = validate(df, "gold", "fct_member_month")
    assert on_spark.engine == "spark" and on_pandas.engine == "pandas"
    assert on_spark.n_expectations == on_pandas.n_expectations
    def strip(r):
        return {(f["expectation"], f["column"]): (f["unexpected_count"], f["examples"]) for f in r.failures}

    assert strip(on_spark) == strip(on_pandas) and len(strip(on_spark)) == 1


def test_a_failed_gate_puts_every_table_of_the_layer_back(spark, settings, tmp_path):
    """Write-audit-publish: the gated stage writes, the gate fails, every table it wrote is at its
    previous Delta version (a table it created is gone) and ops/quality_results keeps the verdict."""
    from redcloud import pipeline
    from redcloud.quality import GateFailed

    ctx = make_ctx(settings_for(tmp_path, settings), D, spark)
    lake = ctx.lake
    lake.write(spark, DeltaDataSet("fct_member_month", "gold", _fct_member_month(spark).where("member_id != 7")))
    good = sorted(map(tuple, lake.read(spark, "gold", "fct_member_month").collect()))
    v0 = lake.version("gold", "fct_member_month")

    def bad_gold_stage(c):   # writes a bad row into an existing table and creates a new table
        c.lake.write(spark, DeltaDataSet("fct_member_month", "gold", _fct_member_month(spark)))
        c.lake.write(spark, DeltaDataSet("dim_organization", "gold", _organizations(spark)))
        return {"tables": []}

    stage = pipeline.registry.Stage("gold", "t", "t", entry="x:y", gate="gold")
    original = pipeline.resolve
    pipeline.resolve = lambda st: bad_gold_stage if st is stage else original(st)
    try:
        with pytest.raises(GateFailed) as err:
            pipeline._run_leaf(ctx, stage)
    finally:
        pipeline.resolve = original
    assert sorted(map(tuple, lake.read(spark, "gold", "fct_member_month").collect())) == good
    assert lake.read_version(spark, "gold", "fct_member_month", v0).count() == len(good)
    assert not lake.exists("gold", "dim_organization")
    assert set(err.value.restored) == {f"gold/fct_member_month@{v0}", "gold/dim_organization@(none)"}
    recorded = lake.pandas("ops", "quality_results")
    assert (~recorded.success).sum() >= 1 and "fct_member_month" in set(recorded.table)
