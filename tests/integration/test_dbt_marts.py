"""dbt marts on dbt-spark, for real: ``dbt build`` (models, data tests, unit tests) on the test city.

The marts are built into a private lake whose silver and gold tables are the ``main_lake`` ones
(symlinked, read-only), plus small score tables derived from gold so the four model-output marts build
too. Three full builds in all: the first build, a rerun of the same date, a backfill of an earlier
date. Headline numbers are recomputed straight from silver with pandas.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable

from redcloud import marts
from redcloud.config import get_settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # three dbt builds on Spark

INCREMENTAL = {  # mart -> its partition column
    "mart_member_composition": "as_of_date",
    "mart_org_life_monthly": "month",
    "mart_learning_compliance": "month",
    "mart_village_work": "month",
}
BACKFILL_DAY = dt.date(2025, 11, 30)


def _read(root: Path, layer: str, name: str) -> pd.DataFrame:
    return DeltaTable(str(root / layer / name)).to_pandas()


def _content(root: Path, name: str) -> pd.DataFrame:
    df = _read(root, "marts", name)
    df = df[sorted(df.columns)]
    # compare as text: arrays/NaN become comparable, order fixed
    return df.astype(str).sort_values(list(df.columns)).reset_index(drop=True)


def _write_scores(spark, root: Path) -> None:
    """Score tables with the columns the models helper writes, derived deterministically from gold."""
    from pyspark.sql import functions as F

    g = lambda n: spark.read.format("delta").load(str(root / "gold" / n))  # noqa: E731
    mm = g("fct_member_month").select(
        "member_id", "month",
        F.least(F.lit(100.0), F.coalesce(F.col("login_days"), F.lit(0)) * 2.5
                + F.coalesce(F.col("learning_days"), F.lit(0)) * 2.0
                + F.coalesce(F.col("attendance_rate"), F.lit(0.0)) * 20).cast("double").alias("vitality_index"))
    cy = g("fct_cadre_year").select(
        "cadre_id", "year", F.lit(1).cast("int").alias("predicted_grade"),
        F.coalesce("assessment_grade", F.lit("称职")).alias("grade_label"),
        (F.coalesce("learning_answer_rate", F.lit(0.5)) * 100).alias("score"))
    bq = g("fct_branch_quarter").select(
        "org_id", F.concat(F.year("quarter_start").cast("string"), F.lit("Q"),
                           F.quarter("quarter_start").cast("string")).alias("quarter"),
        (F.col("sanhui_completion_rate") * 100).alias("innovation_score"),
        F.when(F.col("activity_types") >= 5, "创新活跃型").otherwise("常规型").alias("archetype"),
        (F.col("suspicious_meetings") > 0).alias("is_anomaly"))
    ip = (spark.read.format("delta").load(str(root / "silver" / "cadres"))
          .where(~F.col("is_deleted"))
          .select("cadre_id", ((F.col("cadre_id") % 100) / 100.0).alias("risk_score"),
                  (F.col("cadre_id") % 17 == 0).alias("flag_gate"),
                  F.array(F.lit("测试标签")).alias("tags")))
    for name, df in (("score_member_vitality", mm), ("score_cadre_evaluation", cy),
                     ("score_branch_innovation", bq), ("score_integrity_portrait", ip)):
        (df.withColumn("model_name", F.lit("test")).withColumn("model_version", F.lit("1"))
         .write.format("delta").mode("overwrite").save(str(root / "gold" / name)))


@pytest.fixture(scope="module")
def lake(main_lake, spark, tmp_path_factory):
    """A private lake: silver and gold tables of main_lake (symlinked), score tables, our marts."""
    root = tmp_path_factory.mktemp("dbt") / "lake"
    (root / "gold").mkdir(parents=True)
    os.symlink(main_lake.root / "silver", root / "silver")
    for t in (main_lake.root / "gold").iterdir():
        os.symlink(t, root / "gold" / t.name)
    _write_scores(spark, root)
    with main_lake.use() as live:
        live.paths.lake_root = str(root)
        yield root


@pytest.fixture(scope="module")
def first_build(lake, spark, main_lake):
    t0 = time.perf_counter()
    result = marts.run(spark, main_lake.day, main_lake.run_id)
    result["wall_seconds"] = round(time.perf_counter() - t0, 1)
    print(f"\nfirst dbt build: {result['wall_seconds']} s; {result['dbt']}")
    return result


def test_build_is_green_with_tests_and_unit_tests(first_build, lake):
    built = {t["table"]: t["rows"] for t in first_build["tables"]}
    assert set(built) == {f"marts/{m}" for m in marts.MARTS}, built
    assert all(n > 0 for n in built.values()), built
    assert first_build["skipped"] == {}
    dbt = first_build["dbt"]
    assert dbt["model"] == {"success": len([p for p in (Path(get_settings().dbt.project_dir) / "models")
                                             .rglob("*.sql")])}, dbt
    assert dbt["unit_test"].get("pass", 0) >= 5 and set(dbt["unit_test"]) == {"pass"}, dbt
    assert dbt["test"].get("pass", 0) >= 40 and set(dbt["test"]) == {"pass"}, dbt
    assert set(dbt["seed"]) == {"success"}
    for m in marts.MARTS:  # Delta tables at <lake_root>/marts/<model>
        assert (lake / "marts" / m / "_delta_log").is_dir()


def test_skips_model_output_marts_without_score_tables(main_lake):
    with main_lake.use():
        p = marts.plan()
        for mart, table in marts.MODEL_OUTPUT_MARTS.items():
            exists = (main_lake.root / "gold" / table / "_delta_log").is_dir()
            assert (mart in p["build"]) == exists and (mart in p["skip"]) != exists


def _subtree(orgs: pd.DataFrame, root_id: int) -> set[int]:
    children = orgs.groupby("parent_org_id")["org_id"].apply(list).to_dict()
    out, todo = set(), [root_id]
    while todo:
        o = todo.pop()
        out.add(o)
        todo += children.get(o, [])
    return out


def test_county_members_by_org_type_match_silver(first_build, lake, main_lake):
    orgs = _read(lake, "silver", "organizations")
    orgs = orgs[~orgs.is_deleted.fillna(False)]
    mem = _read(lake, "silver", "members")
    mem = mem[~mem.is_deleted.fillna(False) & (mem.membership_status == "在册")]
    counties = orgs[orgs.org_level == "区县委"].org_id.tolist()
    county = max(counties, key=lambda c: mem.org_id.isin(_subtree(orgs, c)).sum())
    sub = mem[mem.org_id.isin(_subtree(orgs, county))].merge(orgs[["org_id", "org_type"]], on="org_id")
    expected = sub.groupby("org_type").size().to_dict()
    comp = _read(lake, "marts", "mart_member_composition")
    got = comp[(comp.as_of_date == main_lake.day) & (comp.org_id == county) & (comp.category == "org_type")]
    assert dict(zip(got.category_value, got.members)) == expected
    total = comp[(comp.as_of_date == main_lake.day) & (comp.org_id == county) & (comp.category == "total")]
    assert total.members.tolist() == [len(sub)] and len(sub) > 50


def test_branch_meeting_completion_matches_silver(first_build, lake, main_lake):
    mt = _read(lake, "silver", "meetings")
    mt = mt[~mt.is_deleted.fillna(False)]
    q_start, q_end = dt.date(2025, 10, 1), main_lake.day
    q = mt[(mt.meeting_date >= q_start) & (mt.meeting_date <= q_end)]
    counts = q.pivot_table(index="org_id", columns="meeting_type", values="meeting_id", aggfunc="count").fillna(0)
    held = (counts.get("支委会", 0).clip(upper=3) + counts.get("支部党员大会", 0).clip(upper=1)
            + counts.get("党课", 0).clip(upper=1))
    life = _read(lake, "marts", "mart_org_life_monthly")
    dec = life[life.month == dt.date(2025, 12, 1)].set_index("org_id")
    branch = held.index[held.argmax()]  # a branch with the most complete quarter, and every other branch too
    assert dec.loc[branch, "sanhui_completion_qtd"] == pytest.approx(held[branch] / 5)
    both = dec.join((held / 5).rename("expected"), how="left").fillna({"expected": 0.0})
    assert len(both) > 20
    assert (both.sanhui_completion_qtd.astype(float) - both.expected).abs().max() < 1e-6  # decimal(…, 6) in the mart


def test_department_overdue_rate_matches_silver(first_build, lake, main_lake):
    po = _read(lake, "silver", "power_operations")
    if "is_deleted" in po:
        po = po[~po.is_deleted.fillna(False)]
    eod = pd.Timestamp(main_lake.day + dt.timedelta(days=1), tz="Asia/Shanghai")
    po = po[po.received_at < eod]
    done = po.completed_at.notna() & (po.completed_at < eod)
    overdue = (done & (po.completed_at > po.deadline)) | (~done & (po.deadline < eod))
    dept = po.dept_code.value_counts().index[0]
    expected = overdue[po.dept_code == dept].mean()
    pom = _read(lake, "marts", "mart_power_operation_monthly")
    d = pom[pom.dept_code == dept]
    assert d.operations.sum() == (po.dept_code == dept).sum()
    assert d.overdue.sum() / d.operations.sum() == pytest.approx(expected)
    assert 0 < expected < 1


@pytest.fixture(scope="module")
def rerun(first_build, lake, spark, main_lake):
    before = {m: _content(lake, m) for m in marts.MARTS}
    versions = {m: DeltaTable(str(lake / "marts" / m)).version() for m in INCREMENTAL}
    marts.run(spark, main_lake.day, main_lake.run_id)
    return before, versions


def test_rerun_same_date_changes_nothing(rerun, lake):
    before, versions = rerun
    for m in marts.MARTS:
        pd.testing.assert_frame_equal(_content(lake, m), before[m], obj=m)
    for m in INCREMENTAL:  # the rerun did merge (a new commit), it just changed nothing
        assert DeltaTable(str(lake / "marts" / m)).version() > versions[m]


def test_backfill_touches_only_its_partition(rerun, lake, spark):
    before = {m: _read(lake, "marts", m) for m in INCREMENTAL}
    marts.build(spark, BACKFILL_DAY)
    after = {m: _read(lake, "marts", m) for m in INCREMENTAL}
    for m, col in INCREMENTAL.items():
        key = BACKFILL_DAY if col == "as_of_date" else BACKFILL_DAY.replace(day=1)
        untouched = lambda df: df[df[col] != key].astype(str).sort_values(list(df.columns)).reset_index(drop=True)  # noqa: E731
        pd.testing.assert_frame_equal(untouched(after[m]), untouched(before[m]), obj=m)
        assert (after[m][col] == key).sum() > 0, m
    comp_b, comp_a = before["mart_member_composition"], after["mart_member_composition"]
    assert (comp_b.as_of_date == BACKFILL_DAY).sum() == 0  # 11-30 is not a quarter end: new snapshot
    # the learning month of the backfill only counts working days up to the backfill date
    lc = after["mart_learning_compliance"]
    cadres = lc[(lc.month == dt.date(2025, 11, 1)) & (lc.grain == "cadre")]
    assert len(cadres) > 0 and cadres.workdays_required.max() <= 20  # November 2025 has 20 working days


def test_docs_generate(lake, spark, main_lake, rerun):
    index = marts.docs(spark, main_lake.day)
    html = index.read_text(encoding="utf-8")
    assert "mart_member_composition" in html and "superset_power_operation" in html
