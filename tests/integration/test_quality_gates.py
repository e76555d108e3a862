"""Quality gates on Spark and in the pipeline: GX's Spark engine agrees with pandas, a failed gate
puts the layer back (write-audit-publish), and the real pipeline's silver and gold pass their gates."""

from __future__ import annotations

import pytest
from helpers import make_ctx, settings_for
from quality_samples import D, _fct_member_month, _organizations, planted_ctx

from redcloud.lake import DeltaDataSet


@pytest.fixture(scope="module")
def planted(spark, settings, tmp_path_factory):
    """A run context on a lake holding the planted tables."""
    return planted_ctx(spark, settings, tmp_path_factory.mktemp("quality"))


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

# ---------------------------------------------------------------------------------------------
# the real pipeline on the test city
# ---------------------------------------------------------------------------------------------

def test_real_silver_and_gold_passed_their_gates(city_lake):
    """The city lake's silver and gold were written through their gates: every specific
    suite ran and passed, and ops/quality_results holds one passing row per expectation."""
    from redcloud.quality import suites_module

    suites_module()
    from expectations import gold as gold_suites
    from expectations import silver as silver_suites

    lake = city_lake.ctx().lake
    for layer in ("silver", "gold"):
        q = city_lake.summary[layer]["quality"]
        assert q["passed"] and q["suites"] >= len({"silver": silver_suites, "gold": gold_suites}[layer].SUITES)
    recorded = lake.pandas("ops", "quality_results")
    assert not (~recorded.success).any()
    d2 = recorded[recorded.logical_date == D]
    for layer, suites in (("silver", silver_suites.SUITES), ("gold", gold_suites.SUITES)):
        ran = d2[d2.layer == layer].groupby("table").size()
        assert set(suites) <= set(ran.index), layer
        assert (ran[list(suites)] >= 5).all(), ran
    assert d2.groupby(["layer", "table", "expectation", "column"]).size().max() == 1
