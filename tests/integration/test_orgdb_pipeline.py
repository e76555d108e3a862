"""Real PostgreSQL sources -> bronze -> silver -> gold on the test city (the shared city lake).

The city lake loaded the organisation databases for 2025-12-30 (the initial load) and then
2025-12-31 (the incremental batch). The last tests work on a copy: rerun a date, then change the
source (a late update, deletes) and run the next date.
"""

from __future__ import annotations

import datetime as dt
import re

import pandas as pd
import pytest
import sqlalchemy as sa
from helpers import D1, D2, make_ctx
from lakes import copy_lake
from pyspark.sql import functions as F

from redcloud.contracts import PRIMARY_KEYS, SYSTEMS
from redcloud.stages import silver

D3 = dt.date(2026, 1, 1)


def _count(url, sql, **params):
    eng = sa.create_engine(url)
    with eng.connect() as c:
        n = c.execute(sa.text(sql), params).scalar()
    eng.dispose()
    return n


def _content(spark, lake, layer, name):
    df = lake.read(spark, layer, name)
    cols = sorted(c for c in df.columns if c not in ("_loaded_at",))
    return sorted(repr(tuple(r)) for r in df.select(*cols).collect())


def _by_source(result: dict) -> dict:
    return {r["source"]: r for r in result["tables"]}


@pytest.fixture(scope="module")
def runs(city_lake):
    return {"bronze": {D1: _by_source(city_lake.bronze_d1),
                       D2: _by_source(city_lake.summary["bronze"]["parts"]["bronze_orgdb"])},
            "gold": city_lake.summary["gold"], "lake": city_lake.ctx().lake}


def test_bronze_holds_every_source_row_with_load_metadata(spark, source_dbs, runs):
    lake = runs["lake"]
    for system, tables in SYSTEMS.items():
        for t in tables:
            total = _count(source_dbs[system], f"select count(*) from {t}")
            day2 = _count(source_dbs[system], f"select count(*) from {t} where updated_at >= :d", d=D2)
            b = lake.read(spark, "bronze", f"{system}__{t}")
            assert b.where("_op = 'U'").count() == total, t
            r1, r2 = runs["bronze"][D1][f"{system}.{t}"], runs["bronze"][D2][f"{system}.{t}"]
            assert r1["source_rows"] + r2["source_rows"] == total
            assert r2["source_rows"] == day2, f"{t}: the incremental batch is not the day's changes"
            assert r2["watermark"] is not None
            assert {"_op", "_source", "_batch_id", "_logical_date", "_loaded_at", "_row_hash"} <= set(b.columns)
    methods = {r["method"] for r in runs["bronze"][D1].values()}
    assert methods == {"sqlalchemy", "spark-jdbc"}, "both extraction paths should be exercised"


def test_planted_faults_are_quarantined_with_the_right_reason(spark, city, runs):
    lake = runs["lake"]
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    q = {r.record_key: r.reasons for r in lake.read(spark, "quarantine", "members").collect()}
    for fault in ("invalid_id_check_digit", "impossible_date", "orphan_reference", "duplicate_record"):
        keys = faults[(faults.fault == fault) & (faults.table == "members")].record_key
        assert len(keys) > 0
        for k in keys:
            assert k in q, f"member {k} ({fault}) was not quarantined"
            assert any(reason.startswith(fault) for reason in q[k]), (k, q[k])
    orphan_att = faults[(faults.fault == "orphan_reference") & (faults.table == "meeting_attendance")].record_key
    qa = {r.record_key: r.reasons for r in lake.read(spark, "quarantine", "meeting_attendance").collect()}
    assert set(orphan_att) <= set(qa) and all("member_id" in qa[k][0] for k in orphan_att)
    # and nothing clean was quarantined: every quarantined member is a planted fault
    planted = set(faults[faults.table == "members"].record_key)
    assert set(q) <= planted


def test_reconciliation_balances_source_bronze_silver_quarantine(spark, runs):
    orgdb = {f"{s}__{t}" for s, ts in SYSTEMS.items() for t in ts}
    rec = [r for r in runs["lake"].read(spark, "ops", "reconciliation").where(F.col("logical_date").isin(D1, D2))
           .collect() if r.bronze_table in orgdb]
    assert len(rec) == 2 * len(orgdb)
    assert all(r.balanced and r.complete and r.source_kind == "orgdb" for r in rec)
    for day in (D1, D2):
        by_source = runs["bronze"][day]
        for r in (x for x in rec if x.logical_date == day):
            assert r.source_rows == r.bronze_rows == by_source[r.bronze_table.replace("__", ".")]["source_rows"]
            assert r.rejected_rows == 0
            assert r.bronze_rows == r.silver_rows + r.quarantine_rows


def _string_columns(df):
    return [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]


def test_no_plain_id_number_or_phone_in_silver_or_gold(spark, source_dbs, runs):
    lake = runs["lake"]
    ids = set(pd.read_sql("select id_number, phone from members", sa.create_engine(source_dbs["org"])).stack())
    # bounded by non-alphanumerics, so digits inside hex hashes do not count
    id_re = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
    phone_re = re.compile(r"(?<![0-9A-Za-z])1[3-9]\d{9}(?![0-9A-Za-z])")
    scanned = 0
    for layer in ("silver", "gold", "marts"):
        for name in lake.tables(layer):
            df = lake.read(spark, layer, name)
            cols = _string_columns(df)
            if not cols:
                continue
            for row in df.select(*cols).collect():
                for v in row:
                    if v is None:
                        continue
                    assert v not in ids, f"{layer}/{name} holds a plain identifier"
                    assert not id_re.search(v) and not phone_re.search(v), f"{layer}/{name}: {v!r}"
            scanned += 1
    assert scanned >= 30


def test_gold_tables_exist_with_rows(spark, runs):
    names = {r["table"]: r["rows"] for r in runs["gold"]["tables"]}
    assert names["gold/dim_organization"] > 50 and names["gold/fct_member_month"] > 1000
    org = runs["lake"].read(spark, "gold", "dim_organization")
    # every branch rolls up to a county and a town
    branches = org.where("org_level = '党支部'")
    assert branches.where("county_org_id is null or town_org_id is null").count() == 0


@pytest.fixture(scope="module")
def copy_ctx(city_lake, spark, tmp_path_factory):
    """A copy of the city lake, for the tests that change it (rerun, next day)."""
    return make_ctx(copy_lake(city_lake, tmp_path_factory.mktemp("orgdb_copy")), D2, spark)


def test_rerunning_a_date_leaves_every_table_identical(spark, copy_ctx):
    """Bronze and silver reruns of a date change no content, and silver commits no new Delta version
    (only rows whose content differs are merged)."""
    from redcloud.stages import bronze_orgdb
    from spark_jobs.silver.entities import BY_NAME

    # one table per source system, and the tables with planted faults, deletions and status changes
    rerun = {"org": ["members", "member_status_changes"], "cadre": ["cadres"], "app": ["meetings", "volunteer_records"]}
    entities = [BY_NAME[t] for ts in rerun.values() for t in ts]
    lake = copy_ctx.lake
    tables = [("bronze", f"{s}__{t}") for s, ts in rerun.items() for t in ts]
    tables += [("silver", e.name) for e in entities] + [("quarantine", "members")]
    before = {t: _content(spark, lake, *t) for t in tables}
    versions = {e.name: lake.version("silver", e.name) for e in entities}
    bronze_orgdb.run(copy_ctx, systems=rerun)
    silver.run_entities(copy_ctx, entities=entities)
    for t in tables:
        assert _content(spark, lake, *t) == before[t], f"{t} changed on rerun"
    assert {e.name: lake.version("silver", e.name) for e in entities} == versions


def test_late_updates_and_deletes_flow_through_the_next_day(spark, source_dbs, copy_ctx):
    from redcloud.stages import bronze_orgdb
    from spark_jobs.silver.entities import BY_NAME

    ctx3 = make_ctx(copy_ctx.settings, D3, spark)
    lake = ctx3.lake
    app, org = sa.create_engine(source_dbs["app"]), sa.create_engine(source_dbs["org"])
    gone_rows = pd.read_sql("select * from volunteer_records order by record_id limit 3", app)
    gone = gone_rows.record_id.tolist()
    with org.begin() as c:
        member = pd.read_sql(sa.text("select * from members where membership_status = '在册' order by member_id limit 1"),
                             c)
    mid = int(member.member_id.iat[0])
    try:
        with app.begin() as c:
            c.execute(sa.text("delete from volunteer_records where record_id = any(:ids)"), {"ids": gone})
        with org.begin() as c:
            c.execute(sa.text("update members set membership_status = '已去世', updated_at = :t where member_id = :m"),
                      {"t": dt.datetime(2026, 1, 1, 9, 30), "m": mid})
        res = _by_source(bronze_orgdb.run(ctx3, systems={"org": ["members"], "app": ["volunteer_records"]}))
        assert res["app.volunteer_records"]["deleted"] == 3 and res["org.members"]["source_rows"] == 1
        silver.run_entities(ctx3, entities=[BY_NAME["members"], BY_NAME["volunteer_records"]])
        vr = lake.read(spark, "silver", "volunteer_records").where(F.col("record_id").isin(gone)).collect()
        assert len(vr) == 3 and all(r.is_deleted and r.deleted_on == D3 for r in vr)
        m = lake.read(spark, "silver", "members").where(F.col("member_id") == mid).first()
        assert m.membership_status == "已去世"
        # the bronze history keeps both versions of the member
        assert lake.read(spark, "bronze", "org__members").where(F.col("member_id") == mid).count() == 2
        assert PRIMARY_KEYS["volunteer_records"] == "record_id"
    finally:   # the source databases are shared by the session: put them back
        gone_rows.to_sql("volunteer_records", app, if_exists="append", index=False)
        with org.begin() as c:
            c.execute(sa.text("update members set membership_status = :s, updated_at = :t where member_id = :m"),
                      {"s": member.membership_status.iat[0], "t": member.updated_at.iat[0].to_pydatetime(), "m": mid})
