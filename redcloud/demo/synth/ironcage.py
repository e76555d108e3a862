"""数据铁笼 (power-operation supervision) records and their exports in mixed formats.

History arrives as monthly export files; the last seven days as daily files. Formats rotate
between CSV in GBK, CSV in UTF-8 with BOM, XLSX and JSON lines, with Chinese column headers as
the source system writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from redcloud.contracts import IRONCAGE_HEADERS
from redcloud.demo.synth.people import People, sigmoid, stamp

D = np.timedelta64(1, "D")
ITEMS = ["企业设立登记", "食品经营许可", "建设工程规划许可", "施工许可证核发", "道路运输经营许可", "环境影响评价审批",
         "社会保险登记", "医疗机构执业登记", "民办学校设立审批", "最低生活保障审核", "农药经营许可", "户外广告设置审批",
         "行政处罚决定", "行政检查", "不动产登记", "排水许可"]
COMPLAINT_KINDS = ["办事拖延", "服务态度", "推诿扯皮", "违规收费", "吃拿卡要"]
FORMATS = ["csv_gbk", "csv_utf8_bom", "xlsx", "jsonl"]

HEADERS = IRONCAGE_HEADERS  # the contract the exports honour (redcloud.contracts)


@dataclass
class IronCage:
    departments: pd.DataFrame
    power_operations: pd.DataFrame   # final state of every operation
    duty_records: pd.DataFrame
    complaints: pd.DataFrame
    handler_truth: pd.DataFrame      # handler name/id as exported -> cadre_id


def build(rng: np.random.Generator, orgs: pd.DataFrame, p: People, start: np.datetime64, end: np.datetime64) -> IronCage:
    cl, cadres = p.cadre_latent, p.cadres
    agencies = orgs[(orgs.org_level == "党支部") & (orgs.org_type == "机关")]
    depts = pd.DataFrame(dict(dept_code=[f"D{o:06d}" for o in agencies.org_id],
                              dept_name=[n.replace("机关党支部委员会", "") for n in agencies.org_name],
                              org_id=agencies.org_id.to_numpy()))
    dept_of_org = dict(zip(depts.org_id, depts.dept_code))
    years = cl.attrs["years"]
    perf = cl.attrs["perf"]
    y_index = {int(y): j for j, y in enumerate(years)}
    integ = cl.integrity_issue.to_numpy()
    onset = cl.integrity_onset.to_numpy().astype("datetime64[D]")
    handlers = np.flatnonzero(cl.branch_type.to_numpy() == "机关")
    months = np.arange(start.astype("datetime64[M]"), end.astype("datetime64[M]") + 1)
    name = cadres.cadre_name.to_numpy()
    idn = p.members.id_number.to_numpy()[cl.member_id.to_numpy() - 1]
    unit = cadres.unit_org_id.to_numpy()
    # the export carries the 身份证号 for most handlers only
    id_shown = rng.random(len(cl)) < 0.8

    ops = []
    for m in months:
        lo, hi = m.astype("datetime64[D]"), (m + 1).astype("datetime64[D]") - D
        y = y_index[int(str(m)[:4])]
        k = rng.poisson(5, len(handlers))
        h = np.repeat(handlers, k)
        nk = len(h)
        recv_day = lo + (rng.random(nk) * ((hi - lo) / D + 1)).astype(int) * D
        received = stamp(rng, recv_day)
        limit = rng.choice([5, 10, 15, 20], nk)
        deadline = recv_day + (limit * 1.4).astype(int) * D
        ontime = rng.random(nk) < sigmoid(2.0 + 0.9 * perf[h, y] - 1.2 * (integ[h] & (onset[h] <= recv_day)))
        done_day = np.where(ontime, recv_day + np.maximum(1, (limit * rng.uniform(0.2, 1.3, nk)).astype(int)) * D,
                            deadline + rng.integers(1, 25, nk) * D)
        ops.append(pd.DataFrame(dict(h=h, received_at=received, deadline=deadline, done_day=done_day,
                                     item_name=np.array(ITEMS)[rng.integers(0, len(ITEMS), nk)])))
    po = pd.concat(ops, ignore_index=True)
    po["op_id"] = [f"QL{i:09d}" for i in range(1, len(po) + 1)]
    h = po.h.to_numpy()
    po["dept_code"] = [dept_of_org[u] for u in unit[h]]
    po["handler_name"] = name[h]
    po["handler_id_number"] = np.where(id_shown[h], idn[h], None)
    po["cadre_id"] = cl.cadre_id.to_numpy()[h]
    done = po.done_day.to_numpy().astype("datetime64[D]")
    po["completed_at"] = np.where(done <= end, stamp(rng, done), np.datetime64("NaT"))
    po = po.drop(columns=["done_day"])
    po = po.merge(depts[["dept_code", "dept_name"]], on="dept_code", how="left")

    # complaints: more where the handler is slow or has an integrity problem
    overdue = np.where(np.isnat(po.completed_at.to_numpy()), True,
                       po.completed_at.to_numpy().astype("datetime64[D]") > po.deadline.to_numpy().astype("datetime64[D]"))
    yrs = np.array([y_index[int(str(x)[:4])] for x in po.received_at.to_numpy().astype("datetime64[Y]")])
    active = integ[h] & (onset[h] <= po.received_at.to_numpy().astype("datetime64[D]"))
    pc = sigmoid(-3.6 - 0.6 * perf[h, yrs] + 1.4 * active + 1.0 * overdue)
    ci = np.flatnonzero(rng.random(len(po)) < pc)
    kind_p = np.where(active[ci][:, None], [0.2, 0.1, 0.2, 0.25, 0.25], [0.4, 0.3, 0.2, 0.06, 0.04])
    kinds = np.array([rng.choice(COMPLAINT_KINDS, p=row / row.sum()) for row in kind_p])
    c_day = po.received_at.to_numpy()[ci].astype("datetime64[D]") + rng.integers(3, 30, len(ci)) * D
    keep = c_day <= end
    complaints = pd.DataFrame(dict(complaint_id=[f"TS{i:08d}" for i in range(1, keep.sum() + 1)],
                                   op_id=po.op_id.to_numpy()[ci][keep], dept_code=po.dept_code.to_numpy()[ci][keep],
                                   handler_name=po.handler_name.to_numpy()[ci][keep],
                                   received_at=stamp(rng, c_day[keep]), category=kinds[keep],
                                   status=np.where(rng.random(keep.sum()) < 0.85, "已办结", "处理中"),
                                   cadre_id=po.cadre_id.to_numpy()[ci][keep]))

    # monthly duty records (岗位责任工作记实) for every cadre
    cm, tm = np.meshgrid(np.arange(len(cl)), np.arange(len(months)), indexing="ij")
    cm, tm = cm.ravel(), tm.ravel()
    yy = np.array([y_index[int(str(m)[:4])] for m in months])[tm]
    target = rng.integers(8, 31, len(cm))
    # a unit sets its own targets (lenient or strict: a confounder no feature names), targets get easier
    # year by year (drift), and each month has its own noise: completion is a weak reading of performance
    units = np.unique(unit)
    lenient = dict(zip(units, rng.normal(0, 0.6, len(units))))
    u_len = np.array([lenient[u] for u in unit])[cm]
    completed = rng.binomial(target, sigmoid(1.4 + 0.6 * perf[cm, yy] + u_len + 0.15 * yy + rng.normal(0, 0.5, len(cm))))
    # reviewers differ too: the 工作记实评分 carries the department's harshness
    harsh = dict(zip(units, rng.normal(0, 4.0, len(units))))
    u_harsh = np.array([harsh[u] for u in unit])[cm]
    duty = pd.DataFrame(dict(record_id=[f"JS{i:09d}" for i in range(1, len(cm) + 1)],
                             dept_code=[dept_of_org.get(u, f"U{u:06d}") for u in unit[cm]],
                             cadre_name=name[cm], cadre_id_number=np.where(id_shown[cm], idn[cm], None),
                             duty_month=months[tm].astype("datetime64[D]"), target_count=target,
                             completed_count=completed,
                             review_score=np.round(np.clip(60 + 40 * completed / target - u_harsh - rng.uniform(0, 5, len(cm)), 0, 100), 1),
                             cadre_id=cl.cadre_id.to_numpy()[cm]))
    handler_truth = pd.DataFrame(dict(cadre_id=cl.cadre_id, handler_name=name, id_shown=id_shown))
    return IronCage(depts, po, duty, complaints, handler_truth)


def _status(po: pd.DataFrame, as_of: np.datetime64) -> np.ndarray:
    comp = po.completed_at.to_numpy().astype("datetime64[s]")
    dl = po.deadline.to_numpy().astype("datetime64[D]")
    done = (~np.isnat(comp)) & (comp <= as_of)
    late = comp.astype("datetime64[D]") > dl
    return np.where(done, np.where(late, "超时办结", "办结"), np.where(dl < as_of.astype("datetime64[D]"), "超时未办", "在办"))


def _write_xlsx(frame: pd.DataFrame, path: Path, sheet: str, as_of: np.datetime64) -> None:
    """XLSX with fixed document and zip timestamps, so the same data gives the same bytes."""
    import datetime as dt
    import re
    import zipfile

    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        ws.append(list(row))
    stamp_ = dt.datetime.fromisoformat(str(as_of.astype("datetime64[s]")))
    wb.properties.created = wb.properties.modified = stamp_
    wb.properties.creator = "数据铁笼"
    tmp = path.with_suffix(".tmp")
    wb.save(tmp)
    with zipfile.ZipFile(tmp) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = re.sub(rb"<dcterms:modified[^>]*>[^<]*</dcterms:modified>",
                              f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp_.isoformat()}Z</dcterms:modified>'.encode(),
                              data)
            dst.writestr(zipfile.ZipInfo(info.filename, date_time=stamp_.timetuple()[:6]), data, zipfile.ZIP_DEFLATED)
    tmp.unlink()


def export_periods(start: np.datetime64, end: np.datetime64) -> list[tuple[str, np.datetime64, np.datetime64]]:
    """(label, first day, last day) of each export file: monthly files, then daily files for the last 7 days."""
    daily_from = end - 6 * D
    out = []
    for m in np.arange(start.astype("datetime64[M]"), end.astype("datetime64[M]") + 1):
        lo, hi = m.astype("datetime64[D]"), min((m + 1).astype("datetime64[D]") - D, daily_from - D)
        if lo <= hi:
            out.append((str(m).replace("-", ""), lo, hi))
    for d in np.arange(daily_from, end + D):
        out.append((str(d).replace("-", ""), d, d))
    return out


def without_missing_duty_records(duty: pd.DataFrame, end: np.datetime64, faults) -> pd.DataFrame:
    """The duty records a department actually exports: about one cadre in 40 has not filed the 记实 of
    one of the last three complete months (planted ``missing_duty_record``, keyed cadre_id|month).
    Chosen by a hash of cadre and month, so no random stream of the city changes."""
    months = duty.duty_month.to_numpy().astype("datetime64[M]")
    last = end.astype("datetime64[M]") - 1     # the last complete month
    recent = (months >= last - 2) & (months <= last)
    h = (duty.cadre_id.to_numpy().astype(np.int64) * 2654435761 + months.astype(np.int64) * 97) % 120
    gone = recent & (h == 0)
    for cid, m in zip(duty.cadre_id.to_numpy()[gone], months[gone]):
        faults.add("missing_duty_record", "ironcage", "duty_records", f"{int(cid)}|{m}-01",
                   "岗位责任工作记实 of the month not filed")
    return duty[~gone]


def write_exports(rng: np.random.Generator, ic: IronCage, out: Path, start: np.datetime64, end: np.datetime64,
                  faults) -> list[dict]:
    """Write the export files; return a manifest row per file. Plants a malformed row, an encoding error
    and re-exported duplicates, each recorded in ``faults``."""
    out.mkdir(parents=True, exist_ok=True)
    files = []
    po = ic.power_operations
    recv = po.received_at.to_numpy().astype("datetime64[D]")
    comp = po.completed_at.to_numpy().astype("datetime64[D]")
    c_recv = ic.complaints.received_at.to_numpy().astype("datetime64[D]")
    periods = export_periods(start, end)
    duty = without_missing_duty_records(ic.duty_records, end, faults)
    malformed_done = encoding_done = False
    for pi, (label, lo, hi) in enumerate(periods):
        as_of = (hi + D).astype("datetime64[s]")
        # an operation is exported when received in the period, and again when completed in a later period
        sel = ((recv >= lo) & (recv <= hi)) | ((comp >= lo) & (comp <= hi) & (recv < lo))
        part = po[sel].copy()
        part["status"] = _status(part, as_of)
        part["completed_at"] = part.completed_at.where(part.completed_at.to_numpy() <= as_of)
        dup = rng.random(len(part)) < 0.001
        if dup.any():
            for op in part.op_id[dup]:
                faults.add("duplicate_export_row", "ironcage", "power_operations", op, f"exported twice in {label}")
            part = pd.concat([part, part[dup]], ignore_index=True)
        kinds = {
            "power_operations": part,
            "complaints": ic.complaints[(c_recv >= lo) & (c_recv <= hi)],
            "duty_records": duty[(duty.duty_month.to_numpy().astype("datetime64[D]") >= lo)
                                 & (duty.duty_month.to_numpy().astype("datetime64[D]") <= hi)],
        }
        for ki, (kind, df) in enumerate(kinds.items()):
            if df.empty:
                continue
            fmt = FORMATS[(pi + ki) % len(FORMATS)]
            cols = HEADERS[kind]
            frame = df[list(cols)].rename(columns=cols)
            for c in frame.columns:
                if frame[c].dtype.kind == "M":
                    frame[c] = frame[c].dt.strftime("%Y-%m-%d %H:%M:%S").where(frame[c].notna(), None)
                elif frame[c].dtype == object:
                    frame[c] = frame[c].map(lambda x: x.isoformat() if hasattr(x, "isoformat") else x)
            frame = frame.astype(object).where(frame.notna(), None)
            base = f"{kind}_{label}"
            if fmt in ("csv_gbk", "csv_utf8_bom"):
                path = out / f"{base}.csv"
                text = frame.to_csv(index=False, lineterminator="\n")
                enc = "gbk" if fmt == "csv_gbk" else "utf-8-sig"
                data = text.encode(enc)
                if kind == "power_operations" and not malformed_done and len(frame) > 3:
                    lines = text.split("\n")
                    lines.insert(3, "QL_BROKEN,D000000,缺列的记录,2024-13-45")
                    data = "\n".join(lines).encode(enc)
                    faults.add("malformed_export_row", "ironcage", "power_operations", f"{path.name}:4",
                               "row with missing columns and an impossible date")
                    malformed_done = True
                elif fmt == "csv_gbk" and kind == "power_operations" and not encoding_done and len(frame) > 5:
                    raw = data.split(b"\n")
                    # bytes that are not valid GBK inside the handler's name on line 6
                    parts = raw[5].split(b",")
                    parts[4] += b"\x80\xff"
                    raw[5] = b",".join(parts)
                    data = b"\n".join(raw)
                    faults.add("encoding_error", "ironcage", "power_operations", f"{path.name}:6",
                               "bytes that are not valid GBK in the 经办人 field")
                    encoding_done = True
                path.write_bytes(data)
            elif fmt == "xlsx":
                path = out / f"{base}.xlsx"
                _write_xlsx(frame, path, kind, as_of)
            else:
                path = out / f"{base}.jsonl"
                with open(path, "w", encoding="utf-8") as fh:
                    for rec in frame.to_dict(orient="records"):
                        fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            files.append(dict(file=path.name, kind=kind, format=fmt, period_start=str(lo), period_end=str(hi),
                              rows=len(frame)))
    return files
