"""数据铁笼 landing folder -> bronze (Spark + Delta): quarantine, exactly-once loading, idempotent reruns."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from helpers import make_ctx, settings_for
from ironcage_samples import DUTY_OK, _csv_bytes, _fault, write_samples

from redcloud.sources import ironcage as IC

DAY1, DAY2 = dt.date(2025, 12, 31), dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("ironcage_exports"))


@pytest.fixture()
def env(tmp_path, settings, spark):
    """(landing folder, settings) of a private lake for one test."""
    (tmp_path / "landing").mkdir()
    return tmp_path / "landing", settings_for(tmp_path, settings)


def _snapshot(spark, lake) -> dict[str, list]:
    """Every ironcage table's full content, sorted, without the wall-clock ``_loaded_at``."""
    from redcloud.stages import bronze_ironcage as S

    tables = [("bronze", S.bronze_table(k)) for k in S.KINDS] + [("quarantine", S.QUARANTINE), ("ops", S.REGISTRY)]
    out = {}
    for layer, name in tables:
        df = lake.read(spark, layer, name)
        df = df.select(*sorted(c for c in df.columns if c != "_loaded_at"))
        out[name] = sorted((tuple(r) for r in df.collect()), key=repr)
    return out


def _by_kind(result: dict) -> dict[str, dict]:
    return {r["table"].removeprefix("bronze/ironcage__"): r for r in result["tables"]}


def test_bronze_stage_quarantine_exactly_once_and_idempotent(spark, exports, env):
    from pyspark.sql import functions as F

    from redcloud.stages import bronze_ironcage as S

    folder, manifest, faults, ic = exports
    landing, settings = env
    ctx1, ctx2 = make_ctx(settings, DAY1, spark), make_ctx(settings, DAY2, spark)
    lake = ctx1.lake
    for name in manifest:
        shutil.copyfile(folder / name, landing / name)
    (landing / "power_operations_20260101.csv.part").write_bytes(b"half a file")  # still being copied
    (landing / "readme.txt").write_text("not an export")
    dup_same_run = "complaints_zz_copy.csv"  # same content, other name, same run: loaded once
    first_complaints = sorted(n for n, m in manifest.items() if m["kind"] == "complaints")[0]
    shutil.copyfile(landing / first_complaints, landing / dup_same_run)

    malformed_file, malformed_line = _fault(faults, "malformed_export_row")
    enc_file, enc_line = _fault(faults, "encoding_error")

    # -- first run ----------------------------------------------------------------------------
    r1 = _by_kind(S.run(ctx1))
    for kind, r in r1.items():
        files = [m for m in manifest.values() if m["kind"] == kind]
        assert r["files_loaded"] == len(files)
        assert r["files_skipped"] == (1 if kind == "complaints" else 0)
        assert r["source_rows"] == sum(m["rows"] for m in files) + (kind == "power_operations")
        assert r["source_rows"] == r["bronze_rows"] + r["quarantine_rows"] and r["balanced"]
    assert r1["power_operations"]["quarantine_rows"] == 2
    assert r1["complaints"]["quarantine_rows"] == r1["duty_records"]["quarantine_rows"] == 0

    q = lake.read(spark, "quarantine", S.QUARANTINE).collect()
    assert sorted((r.kind, r.file, r.line, r.reason) for r in q) == sorted([
        ("power_operations", malformed_file, malformed_line, "malformed_row"),
        ("power_operations", enc_file, enc_line, "encoding_error")])
    assert all(r.sha256 == IC.sha256_bytes((landing / r.file).read_bytes()) and r.raw and r.detail for r in q)

    po = lake.read(spark, "bronze", "ironcage__power_operations")
    assert set(po.columns) >= set(IC.columns("power_operations")) | set(S.META) | {"_row_hash", "_logical_date"}
    assert all(f.dataType.typeName() == "string" for f in po.schema.fields if f.name in IC.columns("power_operations"))
    assert po.schema["_line"].dataType.typeName() == "long"
    # the other rows of the two faulty files are all in bronze, the GBK names exactly as exported
    truth = ic.power_operations.set_index("op_id").handler_name.to_dict()
    for file, n in ((malformed_file, manifest[malformed_file]["rows"]), (enc_file, manifest[enc_file]["rows"] - 1)):
        got = po.where(F.col("_file") == file).select("op_id", "handler_name", "_encoding", "_line").collect()
        assert len(got) == n
        assert all(r._encoding == "gbk" and r.handler_name == truth[r.op_id] for r in got)
        assert len({r._line for r in got}) == n
    gbk_names = {r.handler_name for r in po.where(F.col("_encoding") == "gbk").select("handler_name").collect()}
    assert {"龚淼鑫", "欧阳娜娜", "喆"} & gbk_names
    assert po.where(F.col("_file") == "power_operations_20260101.csv.part").count() == 0
    complaints = lake.read(spark, "bronze", "ironcage__complaints")
    assert complaints.where(F.col("_file") == dup_same_run).count() == 0
    assert complaints.count() == sum(m["rows"] for m in manifest.values() if m["kind"] == "complaints")

    snap1 = _snapshot(spark, lake)

    # -- rerun of the same date: identical tables, even with another copy that sorts first ------
    shutil.copyfile(landing / first_complaints, landing / "complaints_0000_copy.csv")
    r1b = _by_kind(S.run(ctx1))
    assert {k: {x: v for x, v in r.items() if x != "seconds"} for k, r in r1b.items()} == {
        k: {x: v for x, v in r.items() if x != "seconds"} | ({"files_skipped": 2} if k == "complaints" else {})
        for k, r in r1.items()}
    assert _snapshot(spark, lake) == snap1

    # -- a later date: renamed copies of loaded files are skipped, a new file is loaded ----------
    shutil.copyfile(landing / malformed_file, landing / "power_operations_renamed.csv")
    new = landing / "duty_records_20260101.csv"
    new.write_bytes(_csv_bytes("duty_records", [DUTY_OK, "JS2,D1,喆,,2026-01-01,3"], "gbk"))
    r2 = _by_kind(S.run(ctx2))
    assert r2["power_operations"]["files_loaded"] == 0 and r2["complaints"]["files_loaded"] == 0
    assert r2["power_operations"]["files_skipped"] == r1["power_operations"]["files_loaded"] + 1
    assert r2["power_operations"]["source_rows"] == r2["power_operations"]["bronze_rows"] == 0
    assert (r2["duty_records"]["files_loaded"], r2["duty_records"]["source_rows"],
            r2["duty_records"]["bronze_rows"], r2["duty_records"]["quarantine_rows"]) == (1, 2, 1, 1)
    po_all = lake.read(spark, "bronze", "ironcage__power_operations")
    assert po_all.count() == r1["power_operations"]["bronze_rows"]  # nothing loaded twice
    reg = lake.read(spark, "ops", S.REGISTRY).collect()
    assert len(reg) == len({r.sha256 for r in reg}) == len(manifest) + 1
    assert {r.file for r in reg if r._logical_date == DAY2} == {new.name}

    # -- rerunning (backfilling) the earlier date again changes nothing it owns ------------------
    S.run(ctx1)
    snap = _snapshot(spark, lake)
    for name, rows in snap1.items():
        assert [r for r in snap[name] if DAY1 in r] == rows, name
    assert snap != snap1  # DAY2's partition is still there
    assert lake.read(spark, "bronze", "ironcage__duty_records").where(F.col("_file") == new.name).count() == 1

    # -- a file the date loaded has left the landing folder: the rerun fails, nothing changes ----
    gone = sorted(n for n, m in manifest.items() if m["kind"] == "duty_records")[0]
    (landing / gone).unlink()
    with pytest.raises(RuntimeError, match=gone):
        S.run(ctx1)
    assert _snapshot(spark, lake) == snap
