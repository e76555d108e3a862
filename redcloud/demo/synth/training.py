"""干部调训 (app system 4, education): training classes and who was sent to which (调训计划), who attended.

Each year the city runs classes (党校主体班, 专题培训班, 网络专题班) of one to five days; every cadre is
planned into one to three of them. Attendance depends on the cadre's diligence; an attended class
credits its hours. Planted (``faults``): cadres planned for a class who did not attend (``training_absence``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from redcloud.demo.synth.people import People, sigmoid, stamp

D = np.timedelta64(1, "D")
KINDS = (("党校主体班", 5, 40.0), ("专题培训班", 3, 24.0), ("网络专题班", 2, 12.0), ("理论学习班", 1, 8.0))
TOPICS = ("习近平新时代中国特色社会主义思想", "党纪学习教育", "乡村振兴", "基层治理", "数字政府", "安全生产", "依法行政")


def build(rng: np.random.Generator, p: People, start: np.datetime64, end: np.datetime64,
          faults) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training_classes, training_enrollments).

    classes: class_id, class_name, class_type, start_date, end_date, hours, updated_at;
    enrollments: enrollment_id, class_id, cadre_id, attended, hours_credited, updated_at."""
    cl = p.cadre_latent
    cadre_ids = cl.cadre_id.to_numpy()
    dil = cl.diligence.to_numpy()
    y0, y1 = int(str(start)[:4]), int(str(end)[:4])
    classes, enrol = [], []
    for y in range(y0, y1 + 1):
        k = max(4, len(cadre_ids) // 12)
        kinds = rng.integers(0, len(KINDS), k)
        first = np.datetime64(f"{y}-02-15")
        days = first + rng.integers(0, 290, k) * D
        ids = []
        for j in range(k):
            name, length, hours = KINDS[kinds[j]]
            cid = len(classes) + 1
            ids.append(cid)
            classes.append((cid, f"{y}年{TOPICS[int(rng.integers(0, len(TOPICS)))]}{name}（第{j + 1}期）", name,
                            days[j], days[j] + (length - 1) * D, hours))
        ids = np.array(ids)
        for i, c in enumerate(cadre_ids):
            n = int(rng.integers(1, 4))
            for cls in rng.choice(ids, n, replace=False):
                enrol.append((int(cls), int(c), bool(rng.random() < sigmoid(1.6 + 0.8 * dil[i]))))
    cdf = pd.DataFrame(classes, columns=["class_id", "class_name", "class_type", "start_date", "end_date", "hours"])
    cdf = cdf[cdf.start_date.to_numpy().astype("datetime64[D]") <= end].reset_index(drop=True)
    cdf["updated_at"] = stamp(rng, cdf.start_date.to_numpy().astype("datetime64[D]") - 20 * D)
    edf = pd.DataFrame(enrol, columns=["class_id", "cadre_id", "attended"])
    edf = edf[edf.class_id.isin(cdf.class_id)].reset_index(drop=True)
    ends = cdf.set_index("class_id").end_date
    over = ends.reindex(edf.class_id).to_numpy().astype("datetime64[D]") <= end
    hours = cdf.set_index("class_id").hours.reindex(edf.class_id).to_numpy()
    # a class still running on the city's last day has no attendance yet
    edf["attended"] = np.where(over, edf.attended, None)
    edf["hours_credited"] = np.where(over & (edf.attended == True), hours, 0.0)  # noqa: E712
    edf.insert(0, "enrollment_id", np.arange(1, len(edf) + 1))
    edf["updated_at"] = stamp(rng, np.minimum(ends.reindex(edf.class_id).to_numpy().astype("datetime64[D]") + D, end))
    for r in edf[over & (edf.attended == False)].itertuples():  # noqa: E712
        faults.add("training_absence", "app", "training_enrollments", int(r.enrollment_id),
                   f"cadre {int(r.cadre_id)} planned for class {int(r.class_id)} did not attend")
    return cdf, edf
