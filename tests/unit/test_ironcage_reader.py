"""Reading 数据铁笼 export files (pure Python): encodings, formats, planted faults, header aliases.

The export files are written by the demo generator (:func:`redcloud.demo.synth.ironcage.write_exports`)
from a small hand-made :class:`~redcloud.demo.synth.ironcage.IronCage`, so they carry its planted
malformed row and invalid-GBK row; a few edge cases use hand-written bytes.
"""

from __future__ import annotations

import codecs
import io
import json

import pytest
from ironcage_samples import DUTY_OK, _csv_bytes, _fault, write_samples

from redcloud.demo.synth.ironcage import HEADERS
from redcloud.sources import ironcage as IC


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("ironcage_exports"))


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


def test_gb18030_2022_only_bytes_never_become_private_use_characters(tmp_path):
    """FE59 is 龴 (U+9FB4) in GB18030-2022 but a private-use code point in the 2005 table Python
    decodes with: the row is rejected with the reason and the column, never stored as U+E81E. Rare
    characters that both tables agree on (䶮 in four bytes, 𠮷 outside the BMP) read exactly."""
    header = ",".join(HEADERS["duty_records"].values()).encode("gb18030")
    fine = "JS1,D1,䶮𠮷龚赟,,2025-12-01,10,9,95.5".encode("gb18030")
    only_2022 = b"JS2,D1,\xfe\x59" + "明".encode("gb18030") + b",,2025-12-01,10,9,95.5"
    p = tmp_path / "duty_records_gb2022.csv"
    p.write_bytes(b"\n".join([header, fine, only_2022, b""]))
    ef = IC.read_export(p)
    assert [r["cadre_name"] for r in ef.rows] == ["䶮𠮷龚赟"]
    assert [(r["line"], r["reason"]) for r in ef.rejects] == [(3, "private_use_character")]
    assert "cadre_name U+E81E" in ef.rejects[0]["detail"] and ef.rejects[0]["raw"].startswith("JS2,D1,")
    # the same in a JSON-lines export written by a tool that kept the private-use character
    rec = {v: None for v in HEADERS["duty_records"].values()} | {"记实编号": "JS3", "干部姓名": "\ue81e明"}
    j = tmp_path / "duty_records_pua.jsonl"
    j.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    ej = IC.read_export(j)
    assert ej.rows == [] and [r["reason"] for r in ej.rejects] == ["private_use_character"]


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
