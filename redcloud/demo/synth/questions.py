"""解决疑难问题 (党建APP): members' questions to their branch and when they were answered.

Members ask about 党费, 组织关系转接, 入党程序, 政策 and the app itself; the branch (or, for policy, the
organisation department) answers, usually within a few days, slower in less diligent branches.
Planted (``faults``): about one question in seven of the last 60 days never answered (``unanswered_question``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from redcloud.demo.synth.people import People, sigmoid, stamp
from redcloud.rules.vocab import QUESTION_CATEGORIES

D = np.timedelta64(1, "D")


def build(rng: np.random.Generator, p: People, start: np.datetime64, end: np.datetime64, faults) -> pd.DataFrame:
    """One row per question: question_id, member_id, org_id, category, asked_at, answered_at (NULL while
    open), answered_by (支部 / 组织部门), updated_at."""
    m = p.members
    bl = p.branch_latent.set_index("org_id").diligence
    days = int((end - start) / D) + 1
    n = max(40, len(m) // 4)                      # about one member in four asks something in the period
    who = rng.integers(0, len(m), n)
    asked = start + rng.integers(0, days, n) * D
    org = m.org_id.to_numpy()[who]
    dil = bl.reindex(org).fillna(0.0).to_numpy()
    cat = np.array(QUESTION_CATEGORIES)[rng.integers(0, len(QUESTION_CATEGORIES), n)]
    lag = np.where(rng.random(n) < sigmoid(1.5 + dil), rng.integers(0, 4, n), rng.integers(4, 20, n))
    answered = asked + lag * D
    never = (asked >= end - 60 * D) & (rng.random(n) < 0.15)
    ok = (~never) & (answered <= end)
    asked_at = stamp(rng, asked)
    ans_at = np.maximum(stamp(rng, answered), asked_at)
    o = np.argsort(asked_at, kind="stable")       # question ids in the order they were asked
    ok, never = ok[o], never[o]
    df = pd.DataFrame(dict(question_id=np.arange(1, n + 1), member_id=m.member_id.to_numpy()[who][o], org_id=org[o],
                           category=cat[o], asked_at=asked_at[o]))
    df["answered_at"] = pd.to_datetime(np.where(ok, ans_at[o], np.datetime64("NaT")))
    df["answered_by"] = np.where(ok, np.where(df.category == "政策咨询", "组织部门", "支部"), None)
    df["updated_at"] = pd.to_datetime(np.where(ok, ans_at[o], asked_at[o]))
    for i in np.flatnonzero(never):
        faults.add("unanswered_question", "app", "member_questions", int(df.question_id[i]), "never answered")
    return df
