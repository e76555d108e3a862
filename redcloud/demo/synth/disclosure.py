"""党务公开 (app system 3): what each 党支部 must disclose, when the event happened and when (and how
completely) it was published.

Every branch discloses its 党费收缴情况 and 组织生活开展情况 after each quarter, the 民主评议党员结果 in
January and the 评先评优结果 in July, and its 发展党员情况 after some quarters. Most are published a few
days after the event; diligent branches are prompt, others late. Planted (``faults``): late
disclosures, disclosures missing some required items, and a few recent ones never published.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from redcloud.demo.synth.people import People, sigmoid, stamp
from redcloud.rules.vocab import DISCLOSURE_ITEMS

D = np.timedelta64(1, "D")


def build(rng: np.random.Generator, p: People, orgs: pd.DataFrame, start: np.datetime64, end: np.datetime64,
          faults) -> pd.DataFrame:
    """One row per disclosure: disclosure_id, org_id, item_type, title, event_date, published_at (NULL when
    not published), items_required, items_published, updated_at."""
    bl = p.branch_latent
    org_ids, dil = bl.org_id.to_numpy(), bl.diligence.to_numpy()
    names = dict(zip(orgs.org_id, orgs.org_name))
    rows = []
    for q in np.arange(start.astype("datetime64[M]"), end.astype("datetime64[M]") + 1, 3):
        q_end = (q + 3).astype("datetime64[D]")            # the day after the quarter: the event day
        year, month = int(str(q)[:4]), int(str(q)[5:7])
        label = f"{year}年第{(month - 1) // 3 + 1}季度"
        for b in range(len(org_ids)):
            events = [("党费收缴情况", q_end, label), ("组织生活开展情况", q_end, label)]
            if rng.random() < 0.35:
                events.append(("发展党员情况", q_end, label))
            if month == 1:
                events.append(("民主评议党员结果", q.astype("datetime64[D]") + 20 * D, f"{year - 1}年度"))
            if month == 7:
                events.append(("评先评优结果", q.astype("datetime64[D]"), f"{year}年“七一”"))
            for kind, day, period in events:
                rows.append((int(org_ids[b]), kind, f"{names.get(int(org_ids[b]), '')}{period}{kind}公开", day,
                             float(dil[b])))
    df = pd.DataFrame(rows, columns=["org_id", "item_type", "title", "event_date", "diligence"])
    df = df[df.event_date.to_numpy().astype("datetime64[D]") <= end].reset_index(drop=True)
    n = len(df)
    ev = df.event_date.to_numpy().astype("datetime64[D]")
    late = rng.random(n) < 0.10 * sigmoid(-1.2 * df.diligence.to_numpy()) * 2
    lag = np.where(late, rng.integers(20, 60, n), rng.integers(1, 10, n))
    pub = ev + lag * D
    # a few recent disclosures are never published (the last 100 days); others not yet due stay open too
    never = (ev >= end - 100 * D) & (rng.random(n) < 0.05)
    pub_ok = (~never) & (pub <= end)
    required = np.array([DISCLOSURE_ITEMS[k] for k in df.item_type])
    short = pub_ok & (rng.random(n) < 0.06)
    published_items = np.where(short, required - rng.integers(1, 2, n), required)
    df["disclosure_id"] = np.arange(1, n + 1)
    df["published_at"] = pd.to_datetime(np.where(pub_ok, stamp(rng, pub), np.datetime64("NaT")))
    df["items_required"] = required
    df["items_published"] = np.where(pub_ok, published_items, 0)
    df["updated_at"] = pd.to_datetime(np.where(pub_ok, df.published_at.to_numpy(), stamp(rng, ev)))
    for i in np.flatnonzero(late & pub_ok):
        faults.add("late_disclosure", "app", "party_disclosures", int(df.disclosure_id[i]),
                   f"published {int(lag[i])} days after the event")
    for i in np.flatnonzero(short):
        faults.add("incomplete_disclosure", "app", "party_disclosures", int(df.disclosure_id[i]),
                   f"{int(published_items[i])} of {int(required[i])} required items published")
    for i in np.flatnonzero(never):
        faults.add("unpublished_disclosure", "app", "party_disclosures", int(df.disclosure_id[i]),
                   "never published")
    df["event_date"] = ev
    return df[["disclosure_id", "org_id", "item_type", "title", "event_date", "published_at", "items_required",
               "items_published", "updated_at"]]
