"""帮扶措施 and their funding (app: 精准帮扶): what each 帮扶 project does and who pays for it.

The seed: "对帮扶措施、帮扶项目…自流程化精准管理…政府帮扶为主，社会帮扶为辅". Each project carries one to
four measures taken in its first weeks; each is funded through the government channel (财政专项资金,
行业部门资金, 东西部协作资金) or the social one (企业捐助, 社会组织, 个人捐赠), about seven yuan in ten
from the government. Planted (``faults``): about one running project in twelve has no measure at all.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from redcloud.demo.synth.people import stamp
from redcloud.rules.vocab import FUNDERS, GOVERNMENT, MEASURE_TYPES, SOCIAL

D = np.timedelta64(1, "D")


def build(rng: np.random.Generator, projects: pd.DataFrame, end: np.datetime64, faults) -> pd.DataFrame:
    """One row per measure: measure_id, project_id, measure_type, description, funding_channel, funder,
    amount_yuan, start_date, updated_at."""
    rows = []
    start = projects.start_date.to_numpy().astype("datetime64[D]")
    done = ~np.isnat(projects.completed_date.to_numpy().astype("datetime64[D]"))
    bare = (~done) & (start <= end - 30 * D) & (rng.random(len(projects)) < 1 / 12)
    for i, p in enumerate(projects.itertuples(index=False)):
        if bare[i]:
            faults.add("project_without_measures", "app", "project_measures", int(p.project_id),
                       "running project with no 帮扶措施 recorded")
            continue
        k = int(np.clip(rng.poisson(2.0), 1, 4))
        shares = rng.dirichlet(np.ones(k))
        gov = rng.random(k) < 0.7
        days = start[i] + rng.integers(0, 25, k) * D
        for j in range(k):
            if days[j] > end:
                continue
            kind = MEASURE_TYPES[p.category][int(rng.integers(0, len(MEASURE_TYPES[p.category])))]
            channel = GOVERNMENT if gov[j] else SOCIAL
            funder = FUNDERS[channel][int(rng.integers(0, len(FUNDERS[channel])))]
            rows.append((int(p.project_id), kind, f"{p.project_name}：{kind}", channel, funder,
                         float(np.round(p.budget_yuan * shares[j], -1)), days[j]))
    df = pd.DataFrame(rows, columns=["project_id", "measure_type", "description", "funding_channel", "funder",
                                     "amount_yuan", "start_date"])
    df.insert(0, "measure_id", np.arange(1, len(df) + 1))
    df["updated_at"] = stamp(rng, df.start_date.to_numpy().astype("datetime64[D]"))
    return df
