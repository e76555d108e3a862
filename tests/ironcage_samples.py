"""Small 数据铁笼 exports for the reader and bronze tests: a hand-made IronCage written by the demo's writer."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from redcloud.demo.synth import FaultLog
from redcloud.demo.synth.ironcage import HEADERS, IronCage, write_exports

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


def write_samples(out):
    """(folder, manifest rows by file name, planted faults, the IronCage written)."""
    ic = _small_ironcage()
    faults = FaultLog()
    files = write_exports(np.random.default_rng(7), ic, out, START, END, faults)
    return out, {f["file"]: f for f in files}, faults.frame(), ic


def _fault(faults: pd.DataFrame, name: str) -> tuple[str, int]:
    key = faults[faults.fault == name].record_key.tolist()
    assert len(key) == 1, f"the writer should plant exactly one {name}: {key}"
    file, line = key[0].rsplit(":", 1)
    return file, int(line)


def _csv_bytes(kind: str, rows: list[str], encoding="utf-8", newline="\n") -> bytes:
    header = ",".join(HEADERS[kind].values())
    return newline.join([header, *rows, ""]).encode(encoding)


DUTY_OK = "JS1,D1,龚淼鑫,,2025-12-01,10,9,95.5"


