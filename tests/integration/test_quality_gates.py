"""The real pipeline's silver and gold pass their quality gates (the shared city lake)."""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# the real pipeline on the test city
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_lake(spark, settings, source_dbs):
    from redcloud import pipeline
    from redcloud.stages import gold, silver

    path = Path(settings.paths.run_dir) / "lake_quality_real"
    with lake_at(settings, path):
        pipeline.bronze_orgdb(spark, D)       # a fresh lake: the whole history in one batch
        silver.run(spark, D)
        gold.run(spark, D)
    return path


def test_real_silver_and_gold_pass_their_gates(spark, settings, real_lake):
    from redcloud.quality import GateFailed, gate, suites_module

    suites_module()
    from expectations import gold as gold_suites
    from expectations import silver as silver_suites

    # this lake holds what the org-database stages build; the baseline-only tables of the other
    # stages are not in it (the gate skips them), so every *specific* suite must run and pass
    specific = {"silver": list(silver_suites.SUITES), "gold": list(gold_suites.SUITES)}
    timings = {}
    with lake_at(settings, real_lake):
        for layer in ("silver", "gold"):
            t0 = time.perf_counter()
            try:
                results = gate(spark, layer, D)
            except GateFailed as e:  # show the whole report
                pytest.fail(f"the real {layer} does not pass its suites:\n{e}")
            timings[layer] = round(time.perf_counter() - t0, 1)
            assert [r.table for r in results] == specific[layer], "every suite ran"
            assert all(r.success and r.n_expectations >= 10 for r in results)
            assert all(r.rows > 0 for r in results if r.table in ("members", "organizations", "fct_member_month"))
        recorded = lake.read(spark, "ops", "quality_results").where(F.col("logical_date") == D)
        assert recorded.where("not success").count() == 0
        assert recorded.select("layer", "table").distinct().count() == len(specific["silver"]) + len(specific["gold"])
    print(f"\nquality gate seconds: {timings}")
