"""Read one 数据铁笼 export file (CSV in GBK/UTF-8, XLSX, JSON lines) into raw rows and rejects.

Pure Python, no Spark: :func:`read_export` turns the bytes of one file into

- ``rows``: one dict per good record, keyed by the canonical column names (the Chinese headers
  of :data:`redcloud.contracts.IRONCAGE_HEADERS` and their aliases mapped back), every value a
  string or ``None``;
- ``rejects``: one dict per record that could not be read, with a ``reason``
  (``encoding_error``, ``malformed_row`` or ``private_use_character``), a human ``detail`` and the
  ``raw`` text.

A value with a private-use code point (U+E000–U+F8FF, planes 15–16) is never a real character in
these exports: Python's ``gb18030`` codec follows the 2005 table, so bytes a GB18030-2022 exporter
writes for characters such as 龴 (FE59) decode to private-use code points without any error; a
self-made glyph (自造字) does the same. Such a record is rejected as ``private_use_character``, naming
the column and the code point, so it is re-exported (in UTF-8) rather than stored wrong.

Nothing is dropped silently: every non-blank physical line of a CSV/JSONL file (after the CSV
header) and every non-empty sheet row of an XLSX file (after the header row) ends up in exactly
one of the two lists. Bronze is raw, so values are not typed or validated here (silver does that);
the only normalisation is that an empty CSV field and an empty XLSX cell become ``None``, like a
JSON ``null``, so the three formats give the same rows.

Every row and reject carries where it came from: ``_file``, ``_line`` (1-based physical line of a
CSV/JSONL file, the CSV header being line 1; the sheet row number for XLSX), ``_file_sha256``,
``_kind``, ``_format`` and ``_encoding``.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import json
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from redcloud.contracts import IRONCAGE_HEADER_ALIASES, IRONCAGE_HEADERS, IRONCAGE_KINDS

HEADERS = IRONCAGE_HEADERS
KINDS = IRONCAGE_KINDS  # power_operations, duty_records, complaints
FORMATS = {".csv": "csv", ".xlsx": "xlsx", ".jsonl": "jsonl"}
REASONS = ("encoding_error", "malformed_row", "private_use_character")
META_COLUMNS = ["_file", "_line", "_file_sha256", "_kind", "_format", "_encoding"]
REJECT_COLUMNS = ["kind", "file", "line", "sha256", "reason", "detail", "raw", "format", "encoding"]
# candidate encodings tried strictly, in this order, before charset-normalizer is asked
CANDIDATE_ENCODINGS = ("utf-8", "gbk", "gb18030")
# a candidate that decodes all but this share of the lines with non-ASCII bytes is taken
# (the remaining lines become ``encoding_error`` rejects)
MAX_BAD_LINE_SHARE = 0.1
XLSX_ENCODING = "utf-8"  # OOXML parts are UTF-8 XML; reported so every row carries an encoding


@dataclass
class ExportFile:
    """One export file read into raw rows and rejects."""

    file: str
    kind: str
    format: str
    encoding: str | None
    sha256: str
    rows: list[dict] = field(default_factory=list)
    rejects: list[dict] = field(default_factory=list)

    @property
    def n_read(self) -> int:
        """Records read from the file: good rows plus rejects."""
        return len(self.rows) + len(self.rejects)


def columns(kind: str) -> list[str]:
    """Canonical data columns of one kind, in export order."""
    return list(HEADERS[kind])


def header_map(kind: str) -> dict[str, str]:
    """Export header (Chinese, a department's alias, or already canonical) -> canonical column name."""
    out = dict(IRONCAGE_HEADER_ALIASES.get(kind, {}))
    out.update({zh: col for col, zh in HEADERS[kind].items()})
    out.update({col: col for col in HEADERS[kind]})
    return out


def detect_kind(name: str) -> str:
    """``power_operations`` / ``duty_records`` / ``complaints`` from the file name prefix."""
    base = Path(name).name
    for kind in KINDS:
        if base.startswith(kind + "_"):
            return kind
    raise ValueError(f"{base}: not a 数据铁笼 export (expected a name starting with one of "
                     f"{', '.join(k + '_' for k in KINDS)})")


def detect_format(name: str) -> str:
    """``csv`` / ``xlsx`` / ``jsonl`` from the file extension."""
    suffix = Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{Path(name).name}: unsupported export format {suffix!r} "
                         f"(expected one of {', '.join(FORMATS)})")
    return FORMATS[suffix]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_hash(path: Path) -> str:
    """SHA-256 of a file's content (its identity in the landing folder), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------
# encodings

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _ascii_compatible(encoding: str) -> bool:
    """True when ASCII bytes (in particular ``\\n``) mean the same in ``encoding``: lines split on bytes."""
    try:
        return "\n,\"".encode(encoding) == b"\n,\"" and codecs.lookup(encoding).name not in ("utf-7",)
    except (LookupError, UnicodeError):
        return False


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
        return True
    except (UnicodeDecodeError, LookupError):
        return False


def _split_lines(data: bytes) -> list[bytes]:
    """Physical lines, each with its ``\\n`` terminator (the last one may have none)."""
    parts = data.split(b"\n")
    lines = [p + b"\n" for p in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def detect_encoding(data: bytes) -> str:
    """The text encoding of a CSV/JSONL export.

    A byte-order mark wins; then the first of UTF-8, GBK, GB18030 that decodes the whole file
    strictly; then, when some lines are corrupt, the candidate that decodes all but a small share of
    the lines with non-ASCII bytes (so one bad row does not change the encoding of the file);
    charset-normalizer is the last resort.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            return name
    for enc in CANDIDATE_ENCODINGS:
        if _decodes(data, enc):
            return enc
    non_ascii = [ln for ln in _split_lines(data) if not ln.isascii()]
    bad = {enc: sum(not _decodes(ln, enc) for ln in non_ascii) for enc in CANDIDATE_ENCODINGS}
    best = min(CANDIDATE_ENCODINGS, key=lambda e: bad[e])  # min keeps the first on ties
    if bad[best] <= MAX_BAD_LINE_SHARE * len(non_ascii):
        return best
    from charset_normalizer import from_bytes

    guess = from_bytes(data).best()
    if guess is not None and guess.encoding:
        return guess.encoding
    return best  # nothing fits well: the lines that do not decode are rejected one by one


def _decode_lines(data: bytes, encoding: str) -> list[tuple[int, bytes, str | None]]:
    """``(line number, raw bytes, text or None when the line does not decode strictly)``."""
    if _ascii_compatible(encoding):
        out = []
        for i, raw in enumerate(_split_lines(data), start=1):
            try:
                out.append((i, raw, raw.decode(encoding)))
            except UnicodeDecodeError:
                out.append((i, raw, None))
        return out
    # UTF-16/32: bytes cannot be split on b"\n"; decode the whole text and flag lines that needed
    # a replacement character.
    text = data.decode(encoding, errors="replace")
    out = []
    for i, line in enumerate(text.splitlines(keepends=True), start=1):
        raw = line.encode(encoding, errors="replace")
        out.append((i, raw, None if "\ufffd" in line else line))
    return out


def _raw_text(raw: bytes, encoding: str) -> str:
    return raw.decode(encoding, errors="replace").rstrip("\r\n")


# --------------------------------------------------------------------------------------------
# values


def _cell(value) -> str | None:
    """An XLSX cell or JSON value as the raw string bronze keeps (``None`` stays ``None``)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _json_value(value) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


# --------------------------------------------------------------------------------------------
# the reader


class _Collector:
    """Builds rows and rejects with the file's provenance attached."""

    def __init__(self, ef: ExportFile):
        self.ef = ef
        self.cols = columns(ef.kind)

    def row(self, line: int, values: dict[str, str | None], raw: str = "") -> None:
        rec = {c: values.get(c) for c in self.cols}
        pua = private_use(rec)
        if pua:
            self.reject(line, "private_use_character", pua, raw or json.dumps(rec, ensure_ascii=False))
            return
        rec.update(_file=self.ef.file, _line=line, _file_sha256=self.ef.sha256, _kind=self.ef.kind,
                   _format=self.ef.format, _encoding=self.ef.encoding)
        self.ef.rows.append(rec)

    def reject(self, line: int, reason: str, detail: str, raw: str) -> None:
        assert reason in REASONS, reason
        self.ef.rejects.append(dict(kind=self.ef.kind, format=self.ef.format, encoding=self.ef.encoding,
                                    file=self.ef.file, line=line, sha256=self.ef.sha256, reason=reason,
                                    detail=detail, raw=raw))


def private_use(values: dict[str, str | None]) -> str:
    """Where ``values`` hold private-use code points, as a message naming the column and code point
    ("" when none do)."""
    found = []
    for col, v in values.items():
        for ch in v or "":
            if unicodedata.category(ch) == "Co":
                found.append(f"{col} U+{ord(ch):04X}")
                break
    if not found:
        return ""
    return ("私用区字符 private-use character in " + ", ".join(found)
            + "：GB18030-2022 与 2005 映射不同的字节或自造字，请导出方以 UTF-8 重新导出")


def _check_header(kind: str, names: list[str]) -> tuple[list[str] | None, str]:
    """Canonical names for the header cells, or ``None`` and why the header cannot be used."""
    hmap = header_map(kind)
    names = [(n or "").strip().lstrip("\ufeff") for n in names]
    unknown = [n for n in names if n not in hmap]
    mapped = [hmap[n] for n in names if n in hmap]
    missing = [HEADERS[kind][c] for c in columns(kind) if c not in mapped]
    dupes = sorted({c for c in mapped if mapped.count(c) > 1})
    problems = []
    if missing:
        problems.append("缺少列 missing columns: " + ", ".join(missing))
    if unknown:
        problems.append("未知列 unexpected columns: " + ", ".join(unknown))
    if dupes:
        problems.append("重复列 duplicate columns: " + ", ".join(dupes))
    if problems:
        return None, "header unusable: " + "; ".join(problems)
    return mapped, ""


def _read_csv(ef: ExportFile, data: bytes, out: _Collector) -> None:
    good: list[tuple[int, str]] = []  # (line number, text) of the decodable, non-blank lines
    header_lost = False
    for no, raw, text in _decode_lines(data, ef.encoding):
        if text is None:
            out.reject(no, "encoding_error", f"line {no} is not valid {ef.encoding}", _raw_text(raw, ef.encoding))
            header_lost = header_lost or not good  # the header line itself did not decode
        elif text.strip():
            good.append((no, text))

    def record(i: int) -> tuple[list[str], int]:
        """Parse one CSV record starting at ``good[i]``: (fields, physical lines consumed).

        Quoted fields may span lines (RFC 4180), so the reader is fed line by line from ``i``.
        """
        used = 0

        def feed():
            nonlocal used
            for _, text in _iter_from(good, i):
                used += 1
                yield text

        fields = next(csv.reader(feed()), [])
        return fields, max(used, 1)

    header: list[str] | None = None
    problem = f"header line is not valid {ef.encoding}" if header_lost else "empty file"
    i = 0
    if good and not header_lost:
        try:
            names, i = record(0)
            header, problem = _check_header(ef.kind, names)
        except csv.Error as e:
            i, problem = 1, f"header line cannot be parsed: {e}"
    if header is None:
        for no, text in good[i:]:  # without a usable header no line can be read: reject each one
            out.reject(no, "malformed_row", problem, text.rstrip("\r\n"))
        return
    while i < len(good):
        start = good[i][0]
        try:
            fields, used = record(i)
            error = None if len(fields) == len(header) else f"expected {len(header)} fields, got {len(fields)}"
        except csv.Error as e:
            fields, used, error = [], 1, f"CSV syntax error: {e}"
        if error and used > 1:
            # an unbalanced quote swallowed the following lines: reject only this line, re-read the rest
            used, error = 1, f"expected {len(header)} fields; unbalanced quote on this line"
        raw = "".join(t for _, t in _iter_from(good, i, used)).rstrip("\r\n")
        i += used
        if error:
            out.reject(start, "malformed_row", error, raw)
        else:
            out.row(start, {c: (v if v != "" else None) for c, v in zip(header, fields)}, raw)


def _iter_from(seq: list, start: int, count: int | None = None):
    end = len(seq) if count is None else min(len(seq), start + count)
    for j in range(start, end):
        yield seq[j]


def _read_jsonl(ef: ExportFile, data: bytes, out: _Collector) -> None:
    hmap = header_map(ef.kind)
    for no, raw, text in _decode_lines(data, ef.encoding):
        if text is None:
            out.reject(no, "encoding_error", f"line {no} is not valid {ef.encoding}", _raw_text(raw, ef.encoding))
            continue
        if not text.strip():
            continue
        line = text.strip().lstrip("\ufeff")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            out.reject(no, "malformed_row", f"not valid JSON: {e}", line)
            continue
        if not isinstance(rec, dict):
            out.reject(no, "malformed_row", f"expected a JSON object, got {type(rec).__name__}", line)
            continue
        names = list(rec)
        mapped, problem = _check_header(ef.kind, names)
        if mapped is None:
            out.reject(no, "malformed_row", problem.replace("header unusable", "record keys wrong"), line)
            continue
        out.row(no, {hmap[k.strip().lstrip("\ufeff")]: _json_value(v) for k, v in rec.items()}, line)


def _read_xlsx(ef: ExportFile, data: bytes, out: _Collector) -> None:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(data), read_only=False, data_only=True)
    sheet = ef.kind if ef.kind in wb.sheetnames else wb.sheetnames[0]
    for ws in wb.worksheets:
        rows = ws.iter_rows(values_only=True)
        if ws.title != sheet:
            # records in any other sheet are not expected; keep them visible rather than ignore them
            for no, values in enumerate(rows, start=1):
                cells = [_cell(v) for v in values]
                if any(c is not None for c in cells):
                    out.reject(no, "malformed_row", f"row in unexpected sheet {ws.title!r}",
                               json.dumps(cells, ensure_ascii=False))
            continue
        header: list[str] | None = None
        problem = ""
        width = 0
        for no, values in enumerate(rows, start=1):
            cells = [_cell(v) for v in values]
            while cells and cells[-1] is None:  # trailing empty cells carry nothing
                cells.pop()
            if not cells:
                continue
            raw = json.dumps(cells, ensure_ascii=False)
            if width == 0:  # the first non-empty row is the header
                width = len(cells)
                header, problem = _check_header(ef.kind, [c or "" for c in cells])
                continue
            if header is None:
                out.reject(no, "malformed_row", problem, raw)
            elif len(cells) > width:
                out.reject(no, "malformed_row", f"expected {width} fields, got {len(cells)}", raw)
            else:
                out.row(no, dict(zip(header, cells + [None] * (width - len(cells)))), raw)
    wb.close()


def read_export(path: str | Path, data: bytes | None = None) -> ExportFile:
    """Read one export file (``data``: its bytes, when already read) into rows and rejects."""
    path = Path(path)
    if data is None:
        data = path.read_bytes()
    kind, fmt = detect_kind(path.name), detect_format(path.name)
    encoding = XLSX_ENCODING if fmt == "xlsx" else detect_encoding(data)
    ef = ExportFile(file=path.name, kind=kind, format=fmt, encoding=encoding, sha256=sha256_bytes(data))
    out = _Collector(ef)
    {"csv": _read_csv, "jsonl": _read_jsonl, "xlsx": _read_xlsx}[fmt](ef, data, out)
    ef.rows.sort(key=lambda r: r["_line"])
    ef.rejects.sort(key=lambda r: r["line"])
    return ef
