"""External sources -> silver, and identity fusion, on the test city (the shared city lake).

The city lake loaded the city's 数据铁笼 export files through the landing folder, and its web data
(with a planted duplicate notice and a notice showing a full 身份证号) from the web reference server
over HTTP, then built silver and identity fusion for 2025-12-31. The tests compare the result with the
city's ground truth (``truth/faults.parquet``, ``identity_links.parquet``, ``ironcage_handlers.parquet``,
``cadres.parquet``); the rerun and next-day tests work on a copy.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers import D2 as D
from helpers import make_ctx
from lakes import PLANTED_PLAIN_ID, copy_lake
from pyspark.sql import functions as F

EXTERNAL = ("power_operations", "duty_records", "complaints", "penalties", "enforcement", "news")
ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_LAKE = {}


@pytest.fixture(scope="module")
def run(city_lake):
    """What the city lake's bronze and silver stages returned for the date (and its lake)."""
    _LAKE["lake"] = city_lake.ctx().lake
    b = city_lake.summary["bronze"]["parts"]
    return {"ironcage": b["bronze_ironcage"]["tables"], "web": b["bronze_web"]["tables"],
            "silver": city_lake.summary["silver"], "lake": _LAKE["lake"]}


@pytest.fixture(scope="module")
def truth(city) -> dict[str, pd.DataFrame]:
    t = {n: pd.read_parquet(city / "truth" / f"{n}.parquet")
         for n in ("faults", "identity_links", "ironcage_handlers", "cadres")}
    t["source_cadres"] = pd.read_parquet(city / "source" / "cadre" / "cadres.parquet")
    return t


@pytest.fixture(scope="module")
def links(spark, run) -> pd.DataFrame:
    return run["lake"].read(spark, "silver", "person_links").toPandas()


class _Lake:
    """The module's lake (the city lake, or a copy once the rerun tests start)."""

    def __getattr__(self, name):
        return getattr(_LAKE["lake"], name)


lake = _Lake()


def _pdf(spark, layer, name, *cols) -> pd.DataFrame:
    df = lake.read(spark, layer, name)
    return (df.select(*cols) if cols else df).toPandas()


def _content(spark, layer, name, drop=("_loaded_at",)):
    df = lake.read(spark, layer, name)
    cols = sorted(c for c in df.columns if c not in drop)
    return sorted(repr(tuple(r)) for r in df.select(*cols).collect())


# -- bronze faults, reconciliation ----------------------------------------------------------------

def test_malformed_and_encoding_error_rows_stay_quarantined_in_bronze(spark, run, truth):
    f = truth["faults"]
    planted = f[(f.system == "ironcage") & f.fault.isin(["malformed_export_row", "encoding_error"])]
    assert len(planted) == 2
    rejects = _pdf(spark, "quarantine", "ironcage__rejects", "file", "line", "reason")
    got = {(r.file, int(r.line)): r.reason for r in rejects.itertuples()}
    versions = _pdf(spark, "silver", "power_operation_versions", "op_id", "_file", "_line")
    in_silver = set(zip(versions._file, versions._line.astype(int)))
    for r in planted.itertuples():
        file, line = r.record_key.rsplit(":", 1)
        reason = "malformed_row" if r.fault == "malformed_export_row" else "encoding_error"
        assert got.get((file, int(line))) == reason, (r.record_key, got.get((file, int(line))))
        assert (file, int(line)) not in in_silver
    assert "QL_BROKEN" not in set(versions.op_id)
    assert all(r["balanced"] for r in run["ironcage"])


def test_every_external_batch_reconciles(spark, run):
    rec = {r.entity: r for r in lake.read(spark, "ops", "reconciliation").where(F.col("logical_date") == D).collect()}
    assert set(EXTERNAL) <= set(rec)
    for name in EXTERNAL:
        r = rec[name]
        src = {"penalties": "web__penalties", "enforcement": "web__enforcement", "news": "web__news"}.get(
            name, f"ironcage__{name}")
        bronze = lake.read(spark, "bronze", src).where(F.col("_logical_date") == D).count()
        quarantine = lake.read(spark, "quarantine", name).where(F.col("_logical_date") == D).count()
        assert r.balanced and r.complete and r.bronze_rows == bronze == r.silver_rows + r.quarantine_rows, name
        assert r.source_rows == r.bronze_rows + r.rejected_rows, name
        assert r.quarantine_rows == quarantine, name
        if src.startswith("ironcage__"):   # bronze's rejects are the export rows that could not be read
            assert r.rejected_rows == lake.read(spark, "quarantine", "ironcage__rejects").where(
                (F.col("_logical_date") == D) & (F.col("kind") == name)).count(), name
        assert bronze > 0, name
    # power operations: every accepted version is kept, and silver has one row per op
    po = rec["power_operations"]
    assert lake.read(spark, "silver", "power_operation_versions").where(F.col("_logical_date") == D).count() \
        == po.silver_rows
    s = lake.read(spark, "silver", "power_operations")
    assert s.count() == s.select("op_id").distinct().count() < po.silver_rows


# -- duplicates and versions ----------------------------------------------------------------------

def test_exact_duplicate_export_rows_are_quarantined_as_duplicate_record(spark, run, truth):
    f = truth["faults"]
    planted = set(f[f.fault == "duplicate_export_row"].record_key)
    assert len(planted) >= 5
    q = _pdf(spark, "quarantine", "power_operations", "record_key", "reasons")
    dup = q[q.reasons.map(lambda rs: any(x.startswith("duplicate_record") for x in rs))]
    assert set(dup.record_key) == planted
    # only the copy is quarantined: each planted op is in silver once
    s = lake.read(spark, "silver", "power_operations").where(F.col("op_id").isin(sorted(planted)))
    assert s.count() == len(planted) == s.select("op_id").distinct().count()
    # nothing else in power operations was quarantined
    assert set(q.record_key) == planted


def test_an_operation_exported_again_when_completed_ends_once_with_its_final_status(spark, run):
    b = _pdf(spark, "bronze", "ironcage__power_operations", "op_id", "status", "completed_at", "_file", "_line")
    open_ = set(b[b.status.isin(["在办", "超时未办"])].op_id)
    done = b[b.status.isin(["办结", "超时办结"]) & b.op_id.isin(open_)]
    assert len(done) > 100, "the city should re-export many operations when they complete"
    final = done.drop_duplicates("op_id").set_index("op_id")
    s = _pdf(spark, "silver", "power_operations", "op_id", "status", "completed_at").set_index("op_id")
    got = s.loc[final.index]
    assert got.index.is_unique
    assert (got.status == final.status).all()
    assert (got.completed_at.dt.strftime("%Y-%m-%d %H:%M:%S") == final.completed_at).all()
    v = _pdf(spark, "silver", "power_operation_versions", "op_id", "status")
    hist = v[v.op_id.isin(final.index)].groupby("op_id").status.nunique()
    assert (hist == 2).all(), "both the open and the completed export are kept as versions"


# -- personal data ------------------------------------------------------------------------------------

def test_no_plain_id_number_in_external_silver_or_quarantine(spark, run):
    plain = set(_pdf(spark, "bronze", "ironcage__power_operations", "handler_id_number").handler_id_number.dropna())
    plain |= set(_pdf(spark, "bronze", "ironcage__duty_records", "cadre_id_number").cadre_id_number.dropna())
    assert len(plain) > 20
    tables = [("silver", n) for n in EXTERNAL + ("power_operation_versions", "person_links", "persons")]
    tables += [("quarantine", n) for n in EXTERNAL]
    for layer, name in tables:
        df = lake.read(spark, layer, name)
        cols = [f.name for f in df.schema.fields if f.dataType.simpleString() == "string"]
        for row in df.select(*cols).collect():
            for v in row:
                if v is not None:
                    assert v not in plain and not ID_RE.search(v), f"{layer}/{name}: {v!r}"
    # the ID wrongly published in full is masked like the others
    leak = lake.read(spark, "silver", "penalties").where("notice_id = 'CF9999999'").first()
    assert leak.party_id_masked == PLANTED_PLAIN_ID[:6] + "********" + PLANTED_PLAIN_ID[-4:]
    # pseudonyms of handlers join to members' pseudonyms
    members = lake.read(spark, "silver", "members").select(F.col("id_number_pseudonym").alias("p"))
    po = lake.read(spark, "silver", "power_operations").where("handler_id_number_pseudonym is not null")
    hit = po.join(members, po.handler_id_number_pseudonym == members.p, "left_semi").count()
    assert po.count() > 0 and hit / po.count() > 0.95


def test_the_web_notice_repeated_on_two_pages_is_quarantined_once(spark, run, city):
    last = json.loads((city / "web" / "penalties.json").read_text(encoding="utf-8"))[-1]["notice_id"]
    q = lake.read(spark, "quarantine", "penalties").collect()
    assert [r.record_key for r in q] == [last]
    assert q[0].reasons[0].startswith("duplicate_record")
    assert lake.read(spark, "silver", "penalties").where(F.col("notice_id") == last).count() == 1


# -- identity fusion -------------------------------------------------------------------------------

def test_every_member_is_a_person_and_cadres_link_to_the_right_member(spark, run, truth, links):
    members = lake.read(spark, "silver", "members").select("member_id").toPandas()
    persons = _pdf(spark, "silver", "persons")
    assert sorted(persons.member_id) == sorted(members.member_id)
    assert (persons.person_key == "P" + persons.member_id.astype(str)).all()

    t = truth["identity_links"]
    t = t[t.source == "cadre"].merge(links[links.source == "cadre"], on="source_key", how="left",
                                     suffixes=("", "_got"))
    assert len(t) == len(truth["cadres"])
    sure = t[t.expected_link.isin(["exact", "fuzzy"])]
    assert (sure.expected_link == "fuzzy").sum() >= 1, "the city should have cadres without a 身份证号"
    wrong = sure[(sure.status != "linked") | (sure.person_key != "P" + sure.member_id.astype(str))]
    assert wrong.empty, wrong[["source_key", "expected_link", "member_id", "person_key", "method", "status"]]
    assert (sure[sure.expected_link == "exact"].method == "id_number").all()
    assert (sure[sure.expected_link == "fuzzy"].method == "name_unit").all()
    amb = t[t.expected_link == "ambiguous"]
    assert (amb.status == "ambiguous").all() and amb.person_key.isna().all()
    # the planted conflicting birth date shows in persons
    f = truth["faults"]
    conflicted = f[(f.fault == "conflicting_values") & (f.table == "cadres")].record_key.astype(int)
    assert len(conflicted) >= 1
    by_cadre = persons.dropna(subset=["cadre_id"]).set_index(persons.dropna(subset=["cadre_id"]).cadre_id.astype(int))
    for c in conflicted:
        assert "birth_date" in list(by_cadre.loc[c, "conflicts"]), c
    clean = by_cadre.drop(index=list(conflicted))
    assert clean.conflicts.map(len).eq(0).mean() > 0.95


def _handler_truth(truth) -> pd.DataFrame:
    """(dept_code, handler_name) -> expected person_key and id_shown, for pairs that name one cadre."""
    h = truth["ironcage_handlers"].merge(truth["source_cadres"][["cadre_id", "unit_org_id"]], on="cadre_id") \
        .merge(truth["cadres"][["cadre_id", "member_id"]], on="cadre_id")
    h["dept_code"] = h.unit_org_id.map(lambda u: f"D{u:06d}")
    h = h.drop_duplicates(["dept_code", "handler_name"], keep=False)
    h["expected"] = "P" + h.member_id.astype(str)
    return h[["dept_code", "handler_name", "expected", "id_shown"]]


def test_ironcage_handlers_link_to_the_right_cadre_person(spark, run, truth, links):
    po = _pdf(spark, "silver", "power_operations", "identity_key", "dept_code", "handler_name",
              "handler_id_number_pseudonym").drop_duplicates("identity_key")
    po["has_id"] = po.handler_id_number_pseudonym.notna()
    lk = links[links.source == "ironcage"].rename(columns={"source_key": "identity_key"})
    ev = po.merge(_handler_truth(truth), on=["dept_code", "handler_name"]).merge(lk, on="identity_key", how="left")
    assert len(ev) >= 0.9 * po.shape[0]
    ev["correct"] = ev.person_key == ev.expected
    with_id, name_only = ev[ev.has_id], ev[~ev.has_id]
    assert len(with_id) >= 10 and len(name_only) >= 3
    assert (with_id.has_id == with_id.id_shown).all()
    assert with_id.correct.mean() >= 0.95 and (with_id[with_id.correct].method == "id_number").all()
    # name-only handlers: linked by name within the department's unit/county; never to a wrong person
    linked = name_only[name_only.status == "linked"]
    assert name_only.correct.mean() >= 0.8, name_only[["handler_name", "expected", "person_key", "status"]]
    assert linked.correct.all()
    assert set(name_only.method) <= {"name_unit", "name_region"}
    # duty records carry the same people: their IDs link exactly too
    du = _pdf(spark, "silver", "duty_records", "identity_key", "cadre_id_number_pseudonym").drop_duplicates("identity_key")
    dl = du.merge(lk, on="identity_key", how="left")
    shown = dl[dl.cadre_id_number_pseudonym.notna()]
    assert len(shown) > 0 and (shown.status == "linked").mean() >= 0.95


def test_web_records_link_with_high_precision(spark, run, truth, links):
    t = truth["identity_links"]
    t = t[t.source.str.startswith("web_")].copy()
    w = links[links.source.str.startswith("web_")]
    ev = t.merge(w, on=["source", "source_key"], how="left")
    assert ev.status.notna().all(), "every web record has a link row"
    linked = ev[ev.status == "linked"]
    expected = "P" + linked.member_id.astype("Int64").astype(str)
    correct = (linked.expected_link == "linked") & (linked.person_key == expected)
    assert len(linked) >= 1
    assert correct.mean() >= 0.9
    truly = ev[ev.expected_link == "linked"]
    assert len(truly) >= 1 and (truly.person_key == "P" + truly.member_id.astype("Int64").astype(str)).mean() >= 0.75
    amb = w[w.status == "ambiguous"]
    assert amb.person_key.isna().all() and (amb.candidates > 1).all()
    # the extra web records (planted) have link rows as well
    assert (w.source == "web_penalty").sum() == len(t[t.source == "web_penalty"]) + 1


@pytest.fixture(scope="module")
def copy_ctx(city_lake, spark, tmp_path_factory):
    """From here on the module works on a copy of the city lake."""
    ctx = make_ctx(copy_lake(city_lake, tmp_path_factory.mktemp("external_copy")), D, spark)
    _LAKE["lake"] = ctx.lake
    return ctx


def test_rerunning_external_silver_and_identity_gives_identical_tables(spark, run, copy_ctx):
    from redcloud.stages import identity, silver_external

    tables = [("silver", n) for n in EXTERNAL + ("power_operation_versions", "person_links", "persons")]
    tables += [("quarantine", n) for n in EXTERNAL]
    before = {t: _content(spark, *t) for t in tables}
    versions = {t: copy_ctx.lake.version(*t) for t in tables if t[0] == "silver"}
    silver_external.run(copy_ctx)
    identity.run(copy_ctx)
    for t in tables:
        assert _content(spark, *t) == before[t], f"{t} changed on rerun"
    # nothing changed, so no silver table has a new Delta version
    assert {t: copy_ctx.lake.version(*t) for t in versions} == versions
    rec = lake.read(spark, "ops", "reconciliation").where(F.col("logical_date") == D)
    assert rec.where(F.col("entity").isin(*EXTERNAL)).count() == len(EXTERNAL)


def test_next_day_export_updates_an_open_operation_and_a_redelivered_row_is_a_duplicate(spark, run, copy_ctx):
    """Runs after the rerun test: a daily export for 2026-01-01 re-delivers one row already loaded
    (an exact copy: duplicate), completes one operation that was open (an update), and carries a
    row with a field too many and a row with a GB18030-2022-only character (a private-use code
    point once decoded). The whole chain reconciles in one ops/reconciliation row: 4 source rows =
    2 bronze + 2 rejected; 2 bronze = 1 silver + 1 quarantine; no private-use character in silver."""
    from redcloud.contracts import IRONCAGE_HEADERS as HEADERS
    from redcloud.stages import bronze_ironcage, silver_external
    from spark_jobs.silver.external import BY_NAME

    d2 = D + dt.timedelta(days=1)
    ctx = make_ctx(copy_ctx.settings, d2, spark)
    cols = list(HEADERS["power_operations"])
    b = _pdf(spark, "bronze", "ironcage__power_operations", *cols, "_file", "_line") \
        .sort_values(["op_id", "_file", "_line"])
    s = _pdf(spark, "silver", "power_operations", "op_id", "status")
    open_op = sorted(s[s.status == "在办"].op_id)[0]
    again = b[b.op_id == sorted(s[s.status == "办结"].op_id)[0]].iloc[-1][cols].to_dict()
    done = b[b.op_id == open_op].iloc[-1][cols].to_dict()
    done.update(status="办结", completed_at="2026-01-01 10:00:00")
    frame = pd.DataFrame([again, done])[cols].rename(columns=HEADERS["power_operations"])
    text = frame.to_csv(index=False, lineterminator="\n")
    too_wide = text.splitlines()[1] + ",多余\n"
    private_use = text.splitlines()[2].replace(done["handler_name"], "\ue81e明") + "\n"
    (Path(ctx.settings.paths.landing_dir) / "power_operations_20260101.csv").write_bytes(
        (text + too_wide + private_use).encode("utf-8"))
    loaded = {r["table"]: r for r in bronze_ironcage.run(ctx)["tables"]}
    assert loaded["bronze/ironcage__power_operations"]["bronze_rows"] == 2
    res = silver_external.run(ctx, [BY_NAME["power_operations"]])
    (r,) = res["reconciliation"]
    assert (r["source_rows"], r["bronze_rows"], r["rejected_rows"], r["silver_rows"], r["quarantine_rows"]) \
        == (4, 2, 2, 1, 1)
    assert r["complete"] and r["balanced"]
    rejects = lake.read(spark, "quarantine", "ironcage__rejects").where(F.col("_logical_date") == d2).collect()
    assert sorted((x.line, x.reason) for x in rejects) == [(4, "malformed_row"), (5, "private_use_character")]
    pua = lake.read(spark, "silver", "power_operations").where(F.col("handler_name").rlike("[\\x{E000}-\\x{F8FF}]"))
    assert pua.count() == 0
    q = lake.read(spark, "quarantine", "power_operations").where(F.col("_logical_date") == d2).collect()
    assert [x.record_key for x in q] == [again["op_id"]] and q[0].reasons[0].startswith("duplicate_record")
    row = lake.read(spark, "silver", "power_operations").where(F.col("op_id") == open_op).collect()
    assert len(row) == 1 and row[0].status == "办结" and row[0].completed_at == dt.datetime(2026, 1, 1, 10, 0)
    hist = lake.read(spark, "silver", "power_operation_versions").where(F.col("op_id") == open_op)
    assert sorted(x.status for x in hist.collect()) == ["办结", "在办"]


