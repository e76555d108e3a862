"""数据铁笼 landing folder -> bronze: encodings, planted faults, exactly-once loading, idempotent reruns.

The export files are written by the real generator (:func:`redcloud.synth.ironcage.write_exports`)
from a small hand-made :class:`~redcloud.synth.ironcage.IronCage`, so they carry its planted
malformed row and invalid-GBK row; a few edge cases use hand-written bytes.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import json
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from redcloud.sources import ironcage as IC
from redcloud.synth import FaultLog
from redcloud.synth.ironcage import HEADERS, IronCage, write_exports

START, END = np.datetime64("2025-12-01"), np.datetime64("2025-12-31")
NAMES = ["李彬宁", "王贞芝", "欧阳娜娜", "龚淼鑫", "喆", "司马懿", "沈才"]
DAY1, DAY2 = dt.date(2025, 12, 31), dt.date(2026, 1, 1)


# -- a small city's iron cage, exported by the real writer -----------------------------------------

def _small_ironcage() -> IronCage:
    ops, n = [], 0
    days = [np.datetime64("2025-12-03") + np.timedelta64(i, "D") for i in range(6)]  # the monthly file
    days += [np.datetime64("2025-12-25") + np.timedelta64(d, "D") for d in range(7) for _ in range(7)]  # daily files
    for d in days:
        n += 1
        recv = d.astype("datetime64[s]") + np.timedelta64(9 * 3600 + 60 * n, "s")
        done = recv + np.timedelta64(3600, "s") if n % 3 else np.datetime64("NaT")
        ops.append(dict(op_id=f"QL{n:09d}", dept_code=f"D{n % 3:06d}", dept_name=f"云岩区第{n % 3}局",
                        item_name="企业设立登记", handler_name=NAMES[n % len(NAMES)],
                        handler_id_number=None if n % 4 == 0 else f"5201021980010{n:05d}",
                        received_at=recv, deadline=d + np.timedelta64(10, "D"), completed_at=done,
                        cadre_id=n % len(NAMES) + 1))
    po = pd.DataFrame(ops)
    po["completed_at"] = po.completed_at.astype("datetime64[s]")
    complaints = pd.DataFrame(dict(
        complaint_id=[f"TS{i:08d}" for i in range(1, 5)], op_id=po.op_id[:4].to_numpy(),
        dept_code=po.dept_code[:4].to_numpy(), handler_name=po.handler_name[:4].to_numpy(),
        received_at=(np.datetime64("2025-12-10T10:00:00") + np.arange(4) * np.timedelta64(1, "D")),
        category=["办事拖延", "服务态度", "推诿扯皮", "吃拿卡要"], status=["已办结", "处理中", "已办结", "已办结"],
        cadre_id=[1, 2, 3, 4]))
    duty = pd.DataFrame(dict(
        record_id=[f"JS{i:09d}" for i in range(1, 6)], dept_code=["D000001"] * 5, cadre_name=NAMES[:5],
        cadre_id_number=[None, "520102198001011234", "520102198001012345", None, "52010219800101345X"],
        duty_month=np.array(["2025-12-01"] * 5, dtype="datetime64[D]"), target_count=[10, 12, 20, 8, 30],
        completed_count=[9, 12, 15, 8, 22], review_score=[95.5, 100.0, 80.2, 98.0, 77.3], cadre_id=[1, 2, 3, 4, 5]))
    return IronCage(departments=pd.DataFrame(), power_operations=po, duty_records=duty, complaints=complaints,
                    handler_truth=pd.DataFrame())


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """(folder, manifest rows by file name, planted faults, the IronCage written)."""
    out = tmp_path_factory.mktemp("ironcage_exports")
    ic = _small_ironcage()
    faults = FaultLog()
    files = write_exports(np.random.default_rng(7), ic, out, START, END, faults)
    return out, {f["file"]: f for f in files}, faults.frame(), ic


def _fault(faults: pd.DataFrame, name: str) -> tuple[str, int]:
    key = faults[faults.fault == name].record_key.tolist()
    assert len(key) == 1, f"the writer should plant exactly one {name}: {key}"
    file, line = key[0].rsplit(":", 1)
    return file, int(line)


# -- the reader (pure Python) ---------------------------------------------------------------------

def test_writer_covers_every_format(exports):
    _, manifest, faults, _ = exports
    formats = {f["format"] for f in manifest.values() if f["kind"] == "power_operations"}
    assert formats == {"csv_gbk", "csv_utf8_bom", "xlsx", "jsonl"}
    assert set(faults.fault) >= {"malformed_export_row", "encoding_error"}


def test_every_file_reads_with_kind_format_encoding_and_counts(exports):
    folder, manifest, faults, _ = exports
    malformed_file, _ = _fault(faults, "malformed_export_row")
    expected_encoding = {"csv_gbk": "gbk", "csv_utf8_bom": "utf-8-sig", "xlsx": "utf-8", "jsonl": "utf-8"}
    for name, m in manifest.items():
        ef = IC.read_export(folder / name)
        assert (ef.kind, ef.format) == (m["kind"], m["format"].split("_")[0])
        assert ef.encoding == expected_encoding[m["format"]], name
        assert ef.sha256 == IC.sha256_bytes((folder / name).read_bytes())
        # every record written is read, as a row or as a reject (the malformed line is an extra record)
        assert ef.n_read == m["rows"] + (name == malformed_file), name
        for r in ef.rows:
            assert set(r) == set(IC.columns(ef.kind)) | set(IC.META_COLUMNS)
            assert (r["_file"], r["_file_sha256"], r["_kind"], r["_format"], r["_encoding"]) == (
                name, ef.sha256, ef.kind, ef.format, ef.encoding)
            assert all(v is None or isinstance(v, str) for k, v in r.items() if k != "_line")
        lines = [r["_line"] for r in ef.rows] + [r["line"] for r in ef.rejects]
        assert len(set(lines)) == len(lines)
        # CSV: header is line 1, so records are on lines 2..n+1; JSONL starts at 1; XLSX sheet row 2..
        first = 1 if ef.format == "jsonl" else 2
        assert sorted(lines) == list(range(first, first + len(lines))), name


def test_gbk_chinese_round_trips_exactly(exports):
    folder, manifest, _, ic = exports
    truth = ic.power_operations.set_index("op_id")
    gbk = [n for n, m in manifest.items() if m["format"] == "csv_gbk" and m["kind"] == "power_operations"]
    assert gbk
    checked = 0
    for name in gbk:
        ef = IC.read_export(folder / name)
        assert ef.encoding == "gbk"
        for r in ef.rows:
            assert r["handler_name"] == truth.loc[r["op_id"], "handler_name"]
            assert r["dept_name"] == truth.loc[r["op_id"], "dept_name"]
            assert r["item_name"] == "企业设立登记"
            checked += 1
    assert checked > 10 and {"龚淼鑫", "欧阳娜娜", "喆"} <= {r for r in truth.handler_name}


def test_planted_malformed_row_is_rejected_and_the_rest_read(exports):
    folder, manifest, faults, _ = exports
    file, line = _fault(faults, "malformed_export_row")
    ef = IC.read_export(folder / file)
    assert [(r["file"], r["line"], r["reason"]) for r in ef.rejects] == [(file, line, "malformed_row")]
    rej = ef.rejects[0]
    assert rej["raw"] == "QL_BROKEN,D000000,缺列的记录,2024-13-45"
    assert "expected 10 fields, got 4" in rej["detail"]
    assert (rej["kind"], rej["format"], rej["encoding"], rej["sha256"]) == ("power_operations", "csv", "gbk", ef.sha256)
    assert len(ef.rows) == manifest[file]["rows"]
    assert line - 1 in {r["_line"] for r in ef.rows} and line + 1 in {r["_line"] for r in ef.rows}


def test_planted_invalid_gbk_row_is_rejected_and_the_rest_read(exports):
    folder, manifest, faults, ic = exports
    file, line = _fault(faults, "encoding_error")
    ef = IC.read_export(folder / file)
    assert ef.encoding == "gbk"  # one bad row does not change the file's encoding
    assert [(r["file"], r["line"], r["reason"]) for r in ef.rejects] == [(file, line, "encoding_error")]
    raw = ef.rejects[0]["raw"]
    op_id = raw.split(",")[0]
    assert op_id in set(ic.power_operations.op_id) and "\ufffd" in raw
    assert ic.power_operations.set_index("op_id").loc[op_id, "handler_name"] in raw  # the good bytes survive
    assert len(ef.rows) == manifest[file]["rows"] - 1
    assert op_id not in {r["op_id"] for r in ef.rows}


def test_encoding_detection_on_hand_written_bytes():
    text = "一,二\n㐀,喆\n"
    assert IC.detect_encoding(text.encode("utf-8")) == "utf-8"
    assert IC.detect_encoding(codecs.BOM_UTF8 + text.encode("utf-8")) == "utf-8-sig"
    assert IC.detect_encoding("一,二\n喆,龚\n".encode("gbk")) == "gbk"
    assert IC.detect_encoding(text.encode("gb18030")) == "gb18030"  # 㐀 is not in GBK
    assert IC.detect_encoding(b"a,b\n1,2\n") == "utf-8"
    many = ("".join(f"{i},龚淼鑫\n" for i in range(30))).encode("utf-8") + b"31,\xff\xfe\n"
    assert IC.detect_encoding(many) == "utf-8"


def _csv_bytes(kind: str, rows: list[str], encoding="utf-8", newline="\n") -> bytes:
    header = ",".join(HEADERS[kind].values())
    return newline.join([header, *rows, ""]).encode(encoding)


DUTY_OK = "JS1,D1,龚淼鑫,,2025-12-01,10,9,95.5"


def test_csv_edge_cases_line_numbers_quotes_crlf(tmp_path):
    p = tmp_path / "duty_records_x.csv"
    rows = [DUTY_OK,
            '"JS2",D1,"欧阳,娜娜","52010219800101345X",2025-12-01,10,9,95.5',  # quoted comma
            "",  # blank line: not a record
            'JS3,D1,"多行\n姓名",,2025-12-01,10,9,95.5',  # quoted newline: one record over two lines
            'JS4,D1,"未闭合的引号,,2025-12-01,10,9,95.5',  # unbalanced quote: only this line rejected
            "JS5,D1,司马懿,,2025-12-01,10,9,95.5,多余",  # one field too many
            "JS6,D1,喆,,2025-12-01,10,9,95.5"]
    p.write_bytes(_csv_bytes("duty_records", rows, "gb18030", "\r\n"))
    ef = IC.read_export(p)
    assert ef.encoding in ("gbk", "gb18030")
    got = {r["record_id"]: (r["_line"], r["cadre_name"], r["cadre_id_number"]) for r in ef.rows}
    assert got == {"JS1": (2, "龚淼鑫", None), "JS2": (3, "欧阳,娜娜", "52010219800101345X"),
                   "JS3": (5, "多行\n姓名", None), "JS6": (9, "喆", None)}
    assert [(r["line"], r["reason"]) for r in ef.rejects] == [(7, "malformed_row"), (8, "malformed_row")]
    assert ef.rejects[1]["detail"] == "expected 8 fields, got 9"
    assert ef.rejects[0]["raw"].startswith("JS4,D1,")


def test_csv_bad_header_rejects_every_row_with_the_reason(tmp_path):
    header = ",".join(v for k, v in HEADERS["complaints"].items() if k != "category")
    p = tmp_path / "complaints_bad.csv"
    p.write_bytes(f"{header}\nTS1,QL1,D1,沈才,2025-12-01 10:00:00,已办结\n".encode("utf-8"))
    ef = IC.read_export(p)
    assert ef.rows == []
    assert [(r["line"], r["reason"]) for r in ef.rejects] == [(2, "malformed_row")]
    assert "投诉类别" in ef.rejects[0]["detail"]


def test_csv_invalid_utf8_line_is_quarantined(tmp_path):
    p = tmp_path / "duty_records_u.csv"
    p.write_bytes(_csv_bytes("duty_records", [DUTY_OK] * 20) + b"JS9,D1,\xe9\xbe,,2025-12-01,1,1,1\n")
    ef = IC.read_export(p)
    assert ef.encoding == "utf-8" and len(ef.rows) == 20
    assert [(r["line"], r["reason"]) for r in ef.rejects] == [(22, "encoding_error")]


def test_jsonl_malformed_records(tmp_path):
    good = {v: None for v in HEADERS["complaints"].values()} | {"投诉编号": "TS1", "被投诉人": "龚淼鑫"}
    missing = {k: v for k, v in good.items() if k != "处理状态"}
    lines = [json.dumps(good, ensure_ascii=False), "", "{not json", json.dumps(missing, ensure_ascii=False),
             json.dumps([1, 2]), json.dumps(good | {"投诉编号": 42}, ensure_ascii=False)]
    p = tmp_path / "complaints_j.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ef = IC.read_export(p)
    assert [(r["_line"], r["complaint_id"], r["handler_name"]) for r in ef.rows] == [(1, "TS1", "龚淼鑫"), (6, "42", "龚淼鑫")]
    assert [(r["line"], r["reason"]) for r in ef.rejects] == [(3, "malformed_row"), (4, "malformed_row"),
                                                            (5, "malformed_row")]
    assert "处理状态" in ef.rejects[1]["detail"]


def test_xlsx_row_too_wide_is_rejected(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(list(HEADERS["duty_records"].values()))
    ws.append(["JS1", "D1", "龚淼鑫", None, "2025-12-01", 10, 9, 95.5])
    ws.append([None] * 8)  # empty row: skipped, but row numbers keep counting
    ws.append(["JS2", "D1", "喆", None, "2025-12-01", 10, 9, 95.5, "多余"])
    buf = io.BytesIO()
    wb.save(buf)
    ef = IC.read_export(tmp_path / "duty_records_w.xlsx", buf.getvalue())
    assert [(r["_line"], r["record_id"], r["cadre_name"], r["target_count"], r["review_score"]) for r in ef.rows] == [
        (2, "JS1", "龚淼鑫", "10", "95.5")]
    assert [(r["line"], r["reason"]) for r in ef.rejects] == [(4, "malformed_row")]


def test_unknown_files_are_refused():
    with pytest.raises(ValueError):
        IC.detect_kind("members_202501.csv")
    with pytest.raises(ValueError):
        IC.detect_format("complaints_202501.xls")


# -- the bronze stage (Spark + Delta) --------------------------------------------------------------

@pytest.fixture()
def lake_env(tmp_path):
    """A private lake and landing folder for one test (settings re-read; restored afterwards)."""
    from redcloud.config import reset_settings

    keys = ("REDCLOUD_PATHS__LAKE_ROOT", "REDCLOUD_PATHS__LANDING_DIR")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["REDCLOUD_PATHS__LAKE_ROOT"] = str(tmp_path / "lake")
    os.environ["REDCLOUD_PATHS__LANDING_DIR"] = str(tmp_path / "landing")
    reset_settings()
    (tmp_path / "landing").mkdir()
    try:
        yield tmp_path / "landing"
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        reset_settings()


def _snapshot(spark) -> dict[str, list]:
    """Every ironcage table's full content, sorted, without the wall-clock ``_loaded_at``."""
    from redcloud import lake
    from redcloud.stages import bronze_ironcage as S

    tables = [("bronze", S.bronze_table(k)) for k in S.KINDS] + [("quarantine", S.QUARANTINE), ("ops", S.REGISTRY)]
    out = {}
    for layer, name in tables:
        df = lake.read(spark, layer, name)
        df = df.select(*sorted(c for c in df.columns if c != "_loaded_at"))
        out[name] = sorted((tuple(r) for r in df.collect()), key=repr)
    return out


def _by_kind(result: list[dict]) -> dict[str, dict]:
    return {r["table"].removeprefix("ironcage__"): r for r in result}


def test_bronze_stage_quarantine_exactly_once_and_idempotent(spark, exports, lake_env):
    from pyspark.sql import functions as F

    from redcloud import lake
    from redcloud.stages import bronze_ironcage as S

    folder, manifest, faults, ic = exports
    landing = lake_env
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
    r1 = _by_kind(S.run(spark, DAY1))
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

    snap1 = _snapshot(spark)

    # -- rerun of the same date: identical tables, even with another copy that sorts first ------
    shutil.copyfile(landing / first_complaints, landing / "complaints_0000_copy.csv")
    r1b = _by_kind(S.run(spark, DAY1))
    assert {k: {x: v for x, v in r.items() if x != "seconds"} for k, r in r1b.items()} == {
        k: {x: v for x, v in r.items() if x != "seconds"} | ({"files_skipped": 2} if k == "complaints" else {})
        for k, r in r1.items()}
    assert _snapshot(spark) == snap1

    # -- a later date: renamed copies of loaded files are skipped, a new file is loaded ----------
    shutil.copyfile(landing / malformed_file, landing / "power_operations_renamed.csv")
    new = landing / "duty_records_20260101.csv"
    new.write_bytes(_csv_bytes("duty_records", [DUTY_OK, "JS2,D1,喆,,2026-01-01,3"], "gbk"))
    r2 = _by_kind(S.run(spark, DAY2))
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
    S.run(spark, DAY1)
    snap = _snapshot(spark)
    for name, rows in snap1.items():
        assert [r for r in snap[name] if DAY1 in r] == rows, name
    assert snap != snap1  # DAY2's partition is still there
    assert lake.read(spark, "bronze", "ironcage__duty_records").where(F.col("_file") == new.name).count() == 1

    # -- a file the date loaded has left the landing folder: the rerun fails, nothing changes ----
    gone = sorted(n for n, m in manifest.items() if m["kind"] == "duty_records")[0]
    (landing / gone).unlink()
    with pytest.raises(RuntimeError, match=gone):
        S.run(spark, DAY1)
    assert _snapshot(spark) == snap
