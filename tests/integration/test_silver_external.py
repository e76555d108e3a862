"""External sources -> silver, and identity fusion, on the test city with real Spark + Delta.

One module fixture runs the pipeline once for 2025-12-31 in a private lake: the organisation databases
to bronze and silver, the city's 数据铁笼 export files through the landing folder to bronze, the city's
web data to bronze (built with the bronze_web parsers and schema, no web server), then
``silver_external`` and ``identity``. The tests compare the result with the city's ground truth
(``truth/faults.parquet``, ``identity_links.parquet``, ``ironcage_handlers.parquet``, ``cadres.parquet``).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from redcloud import lake
from redcloud.lake import DeltaDataSet

D = dt.date(2025, 12, 31)
pytestmark = pytest.mark.slow

EXTERNAL = ("power_operations", "duty_records", "complaints", "penalties", "enforcement", "news")
ID_RE = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
PLANTED_PLAIN_ID = "520102198001011237"  # a full 身份证号 wrongly published in a web notice
WEB_BASE = "http://web.test"


# -- web bronze without a web server --------------------------------------------------------------

def _article_html(r: dict) -> str:
    """The article page as redcloud.sources.web_server renders it."""
    return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
            f'<title>{html.escape(r["title"])}</title></head><body><article>'
            f'<h1>{html.escape(r["title"])}</h1><time>{r["published_date"]}</time>'
            f'<p>{html.escape(r["body"])}</p></article></body></html>')


def web_records(city: Path) -> dict[str, list[dict]]:
    """The city's web data, plus two planted problems: a notice repeated on the next page (an exact
    duplicate, as when pagination shifts during a crawl) and a notice showing a full 身份证号."""
    data = {ds: json.loads((city / "web" / f"{ds}.json").read_text(encoding="utf-8"))
            for ds in ("penalties", "enforcement", "news")}
    pen = data["penalties"]
    if pen:
        leak = dict(pen[0], notice_id="CF9999999", party_id_masked=PLANTED_PLAIN_ID)
        data["penalties"] = pen + [pen[-1], leak]
    return data


def write_web_bronze(spark, city: Path, day: dt.date) -> dict[str, int]:
    """bronze/web__{penalties,enforcement,news} for ``day`` exactly as bronze_web writes them."""
    from redcloud.sources.web_client import FetchResult
    from redcloud.stages import bronze_web as BW
    from spark_jobs import bronze as B

    fetched = dt.datetime(2025, 12, 31, 1, 0, tzinfo=dt.timezone.utc)
    loaded_at = dt.datetime(2025, 12, 31, 9, 0)
    out = {}
    for ds, records in web_records(city).items():
        if ds == "news":
            rows = [BW.parse_article(FetchResult(url=f"{WEB_BASE}/news/{r['news_id']}.html", status=200,
                                                 fetched_at=fetched, etag=None, last_modified=None,
                                                 body=_article_html(r), kind="article")) for r in records]
        else:
            rows = []
            for i in range(0, len(records), BW.PAGE_SIZE):
                page = i // BW.PAGE_SIZE + 1
                body = json.dumps(dict(items=records[i:i + BW.PAGE_SIZE], page=page), ensure_ascii=False)
                rows += BW.parse_json_page(ds, FetchResult(
                    url=f"{WEB_BASE}{BW.JSON_APIS[ds]}?page={page}&page_size={BW.PAGE_SIZE}", status=200,
                    fetched_at=fetched, etag=None, last_modified=None, body=body))
        df = B.with_load_metadata(spark.createDataFrame(rows, BW.record_schema(ds)), source=f"web.{ds}",
                                  logical_date=day, loaded_at=loaded_at)
        df = df.withColumn("_row_hash", B.row_hash(BW.data_columns(ds)))
        lake.write(spark, DeltaDataSet(f"web__{ds}", "bronze", df, mode="replace_partition",
                                       partition_col="_logical_date", partition_value=day))
        out[ds] = len(rows)
    return out


# -- the pipeline, once ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(spark, city, source_dbs, tmp_path_factory):
    from redcloud import pipeline
    from redcloud.config import get_settings, reset_settings
    from redcloud.stages import bronze_ironcage, identity, silver, silver_external

    base = tmp_path_factory.mktemp("silver_external")
    keys = ("REDCLOUD_PATHS__LAKE_ROOT", "REDCLOUD_PATHS__LANDING_DIR")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["REDCLOUD_PATHS__LAKE_ROOT"] = str(base / "lake")
    os.environ["REDCLOUD_PATHS__LANDING_DIR"] = str(base / "landing")
    reset_settings()
    try:
        landing = Path(get_settings().paths.landing_dir)
        landing.mkdir(parents=True, exist_ok=True)
        for f in sorted((city / "ironcage").iterdir()):
            shutil.copyfile(f, landing / f.name)
        out = {"orgdb": pipeline.bronze_orgdb(spark, D), "ironcage": bronze_ironcage.run(spark, D),
               "web": write_web_bronze(spark, city, D)}
        out["silver"] = silver.run(spark, D)
        out["external"] = silver_external.run(spark, D)
        out["identity"] = identity.run(spark, D)
        yield out
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings()


@pytest.fixture(scope="module")
def truth(city) -> dict[str, pd.DataFrame]:
    t = {n: pd.read_parquet(city / "truth" / f"{n}.parquet")
         for n in ("faults", "identity_links", "ironcage_handlers", "cadres")}
    t["source_cadres"] = pd.read_parquet(city / "source" / "cadre" / "cadres.parquet")
    return t


@pytest.fixture(scope="module")
def links(spark, run) -> pd.DataFrame:
    return lake.read(spark, "silver", "person_links").toPandas()


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
        assert r.balanced and r.bronze_rows == bronze == r.silver_rows + r.quarantine_rows, name
        assert r.quarantine_rows == quarantine, name
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


def test_rerunning_external_silver_and_identity_gives_identical_tables(spark, run):
    from redcloud.stages import identity, silver_external

    tables = [("silver", n) for n in EXTERNAL + ("power_operation_versions", "person_links", "persons")]
    tables += [("quarantine", n) for n in EXTERNAL]
    before = {t: _content(spark, *t) for t in tables}
    silver_external.run(spark, D)
    identity.run(spark, D)
    for t in tables:
        assert _content(spark, *t) == before[t], f"{t} changed on rerun"
    rec = lake.read(spark, "ops", "reconciliation").where(F.col("logical_date") == D)
    assert rec.where(F.col("entity").isin(*EXTERNAL)).count() == len(EXTERNAL)


def test_next_day_export_updates_an_open_operation_and_a_redelivered_row_is_a_duplicate(spark, run):
    """Runs after the rerun test: a daily export for 2026-01-01 re-delivers one row already loaded
    (an exact copy: duplicate) and completes one operation that was open (an update)."""
    from redcloud.config import get_settings
    from redcloud.stages import bronze_ironcage, silver_external
    from redcloud.synth.ironcage import HEADERS
    from spark_jobs.silver.external import BY_NAME

    d2 = D + dt.timedelta(days=1)
    cols = list(HEADERS["power_operations"])
    b = _pdf(spark, "bronze", "ironcage__power_operations", *cols, "_file", "_line") \
        .sort_values(["op_id", "_file", "_line"])
    s = _pdf(spark, "silver", "power_operations", "op_id", "status")
    open_op = sorted(s[s.status == "在办"].op_id)[0]
    again = b[b.op_id == sorted(s[s.status == "办结"].op_id)[0]].iloc[-1][cols].to_dict()
    done = b[b.op_id == open_op].iloc[-1][cols].to_dict()
    done.update(status="办结", completed_at="2026-01-01 10:00:00")
    frame = pd.DataFrame([again, done])[cols].rename(columns=HEADERS["power_operations"])
    (Path(get_settings().paths.landing_dir) / "power_operations_20260101.csv").write_bytes(
        frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    loaded = {r["table"]: r for r in bronze_ironcage.run(spark, d2)}
    assert loaded["ironcage__power_operations"]["bronze_rows"] == 2
    res = silver_external.run(spark, d2, [BY_NAME["power_operations"]])
    (r,) = res["reconciliation"]
    assert (r["bronze_rows"], r["silver_rows"], r["quarantine_rows"], r["balanced"]) == (2, 1, 1, True)
    q = lake.read(spark, "quarantine", "power_operations").where(F.col("_logical_date") == d2).collect()
    assert [x.record_key for x in q] == [again["op_id"]] and q[0].reasons[0].startswith("duplicate_record")
    row = lake.read(spark, "silver", "power_operations").where(F.col("op_id") == open_op).collect()
    assert len(row) == 1 and row[0].status == "办结" and row[0].completed_at == dt.datetime(2026, 1, 1, 10, 0)
    hist = lake.read(spark, "silver", "power_operation_versions").where(F.col("op_id") == open_op)
    assert sorted(x.status for x in hist.collect()) == ["办结", "在办"]


# -- identity rules on hand-made records (cases the city has few or none of) -------------------------

def test_identity_flags_ambiguity_instead_of_guessing(spark):
    from spark_jobs.identity import build_identity

    members = spark.createDataFrame([
        (1, "张伟", 10, "H1", "520102********0011", "男", dt.date(1980, 1, 1), "汉族", "ph1"),
        (2, "张伟", 10, "H2", "520102********0022", "男", dt.date(1985, 1, 1), "汉族", "ph2"),   # twin in unit 10
        (3, "李娜", 10, "H3", "520102********0033", "女", dt.date(1990, 1, 1), "汉族", "ph3"),
        (4, "王芳", 11, "H4", "520103********0044", "女", dt.date(1975, 1, 1), "苗族", "ph4"),
        (5, "赵强", 12, "H5", "520102********0055", "男", dt.date(1970, 1, 1), "汉族", "ph5"),
        (6, "赵强", 13, "H6", "520102********0055", "男", dt.date(1971, 1, 1), "汉族", "ph6"),   # same mask + name
    ], "member_id long, member_name string, org_id long, id_number_pseudonym string, id_number_masked string, "
       "gender string, birth_date date, ethnicity string, phone_pseudonym string")
    orgs = spark.createDataFrame([(10, "中共南明区财政局机关党支部委员会", "520102"),
                                  (11, "中共云岩区财政局机关党支部委员会", "520103"),
                                  (12, "中共南明区教育局机关党支部委员会", "520102"),
                                  (13, "中共南明区民政局机关党支部委员会", "520102")],
                                 "org_id long, org_name string, region_code string")
    cadres = spark.createDataFrame([
        (100, "张伟", 10, None, "男", dt.date(1980, 1, 1), "汉族", None),        # ambiguous: two 张伟 in unit 10
        (101, "李娜", 10, None, "女", dt.date(1990, 1, 1), "汉族", "ph3"),       # fuzzy: one 李娜 in unit 10
        (102, "王芳", 11, "H4", "女", dt.date(1976, 5, 5), "苗族", "ph4"),       # exact, birth date conflicts
        (103, "赵强", 12, "H5", "男", dt.date(1970, 1, 1), "汉族", "ph5"),
        (104, "赵强", 13, "H6", "男", dt.date(1971, 1, 1), "汉族", "ph6"),
        (105, "周杰", 11, "H9", "男", dt.date(1971, 1, 1), "汉族", None),        # ID matches no member
    ], "cadre_id long, cadre_name string, unit_org_id long, id_number_pseudonym string, gender string, "
       "birth_date date, ethnicity string, phone_pseudonym string")
    ops = spark.createDataFrame([
        ("D000012|赵强|-", "D000012", "赵强", None),   # two 赵强 cadres in the county, one in the dept's unit
        ("D000010|李娜|-", "D000010", "李娜", None),   # one 李娜 cadre in the county
        ("D000010|张伟|-", "D000010", "张伟", None),   # the only 张伟 cadre is itself unresolved
        ("D000011|王芳|H4", "D000011", "王芳", "H4"),
        ("D000099|王芳|-", "D000099", "王芳", None),   # unknown department
    ], "identity_key string, dept_code string, handler_name string, handler_id_number_pseudonym string")
    comp = spark.createDataFrame([("D000013|赵强|-", "D000014", "赵强")],   # dept 14 unknown -> no county
                                 "identity_key string, dept_code string, handler_name string")
    pen = spark.createDataFrame([("N1", "赵强", "520102********0055"), ("N2", "王芳", "520103********0044"),
                                 ("N3", "王芳", "520103********9999"), ("N4", "李娜", None)],
                                "notice_id string, party_name string, party_id_masked string")
    news = spark.createDataFrame([("X1", "王芳同志获评优秀共产党员", "云岩区财政局机关党支部王芳同志扎根基层。"),
                                  ("X2", "赵强：扎根一线的好干部", "南明区某单位赵强同志受到好评。")],
                                 "news_id string, title string, body string")
    res = build_identity(members, cadres, orgs, power_operations=ops, complaints=comp, penalties=pen, news=news)
    got = {(r.source, r.source_key): r for r in res.links.collect()}

    def check(source, key, status, person=None, method=None, n=None):
        r = got[(source, key)]
        assert (r.status, r.person_key) == (status, person), (key, r)
        if method:
            assert r.method == method, (key, r)
        if n is not None:
            assert r.candidates == n, (key, r)

    check("cadre", "100", "ambiguous", None, "name_unit", 2)
    check("cadre", "101", "linked", "P3", "name_unit", 1)
    check("cadre", "102", "linked", "P4", "id_number", 1)
    check("cadre", "105", "unlinked", None, "id_number", 0)
    check("ironcage", "D000012|赵强|-", "linked", "P5", "name_unit")
    check("ironcage", "D000010|李娜|-", "linked", "P3", "name_unit")
    check("ironcage", "D000010|张伟|-", "ambiguous", None)
    check("ironcage", "D000011|王芳|H4", "linked", "P4", "id_number")
    check("ironcage", "D000099|王芳|-", "unlinked", None)
    check("ironcage", "D000013|赵强|-", "unlinked", None)
    check("web_penalty", "N1", "ambiguous", None, "masked_id_name", 2)
    check("web_penalty", "N2", "linked", "P4", "masked_id_name")
    check("web_penalty", "N3", "unlinked", None)
    check("web_penalty", "N4", "unlinked", None)
    check("web_news", "X1", "linked", "P4", "name_text")
    check("web_news", "X2", "unlinked", None)
    assert all(r.status == "linked" for (s, _), r in got.items() if s == "member") and \
        sum(s == "member" for s, _ in got) == 6
    persons = {r.person_key: r for r in res.persons.collect()}
    assert len(persons) == 6
    assert persons["P4"].cadre_id == 102 and persons["P4"].conflicts == ["birth_date"]
    assert persons["P3"].cadre_id == 101 and persons["P3"].conflicts == []
    assert persons["P1"].cadre_id is None and persons["P2"].cadre_id is None
