"""党员志愿服务超市 (app): registered volunteer teams, the needs villages and communities publish, the team
matched to each need, and what the service delivered (people helped, hours, money raised).

The seed: "帮扶729人…4891小时…55940元". Teams are registered by branches (实名注册 volunteers); every
village or community branch publishes a few needs a quarter; most are matched within days to a team of
the same county and completed within weeks. Planted (``faults``): needs matched late
(``late_volunteer_match``) and about one in seven of the last 60 days' never matched (``unmatched_volunteer_need``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from redcloud.demo.synth.people import People, stamp

D = np.timedelta64(1, "D")
NEED_KINDS = ("助老助残", "环境整治", "政策宣讲", "帮扶慰问", "文明交通", "义诊义剪")
MONEY_KINDS = ("帮扶慰问",)   # needs that raise money or goods (元)


def build(rng: np.random.Generator, p: People, orgs: pd.DataFrame, start: np.datetime64, end: np.datetime64,
          faults) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(volunteer_teams, volunteer_needs).

    teams: team_id, org_id, team_name, founded_date, registered_members, updated_at;
    needs: need_id, org_id, category, title, published_at, beneficiaries, team_id, matched_at, completed_at,
    service_hours, funds_yuan, updated_at (team and times NULL until they happen)."""
    branches = orgs[orgs.org_level == "党支部"]
    county = dict(zip(orgs.org_id, orgs.region_code))
    names = dict(zip(orgs.org_id, orgs.org_name))
    hosts = branches.org_id.to_numpy()[rng.random(len(branches)) < 0.35]
    if len(hosts) == 0:
        hosts = branches.org_id.to_numpy()[:1]
    founded = start - rng.integers(30, 1500, len(hosts)) * D
    teams = pd.DataFrame(dict(team_id=np.arange(1, len(hosts) + 1), org_id=hosts,
                              team_name=[f"{names[o]}党员志愿服务队" for o in hosts], founded_date=founded,
                              registered_members=rng.integers(5, 41, len(hosts))))
    teams["updated_at"] = stamp(rng, np.maximum(founded, start - 400 * D))
    by_county: dict[str, np.ndarray] = {}
    for c in set(county[o] for o in hosts):
        by_county[c] = teams.team_id.to_numpy()[[county[o] == c for o in hosts]]
    places = branches[branches.org_type.isin(["村", "社区"])].org_id.to_numpy()
    rows = []
    for q in np.arange(start.astype("datetime64[M]"), end.astype("datetime64[M]") + 1, 3):
        lo = q.astype("datetime64[D]")
        for o in places:
            for _ in range(int(rng.poisson(1.0))):
                rows.append((int(o), lo + int(rng.integers(0, 91)) * D))
    needs = pd.DataFrame(rows, columns=["org_id", "published"])
    needs = needs[needs.published.to_numpy().astype("datetime64[D]") <= end].reset_index(drop=True)
    n = len(needs)
    pub = needs.published.to_numpy().astype("datetime64[D]")
    kind = np.array(NEED_KINDS)[rng.integers(0, len(NEED_KINDS), n)]
    late = rng.random(n) < 0.10
    never = (pub >= end - 60 * D) & (rng.random(n) < 0.15)
    matched = pub + np.where(late, rng.integers(10, 31, n), rng.integers(0, 5, n)) * D
    done = matched + rng.integers(3, 31, n) * D
    is_matched = ~never & (matched <= end)
    is_done = is_matched & (done <= end)
    people = rng.integers(1, 12, n)
    team = np.array([by_county.get(county[o], teams.team_id.to_numpy())[
        int(rng.integers(0, len(by_county.get(county[o], teams.team_id.to_numpy()))))] for o in needs.org_id])
    hours = np.round(people * rng.uniform(1.0, 4.0, n), 1)
    funds = np.where(np.isin(kind, MONEY_KINDS), np.round(rng.lognormal(7.2, 0.8, n), -1), 0.0)
    pub_at = stamp(rng, pub)
    out = pd.DataFrame(dict(
        need_id=np.arange(1, n + 1), org_id=needs.org_id.to_numpy(), category=kind,
        title=[f"{names[o]}{k}需求" for o, k in zip(needs.org_id, kind)], published_at=pub_at, beneficiaries=people,
        matched_at=pd.to_datetime(np.where(is_matched, np.maximum(stamp(rng, matched), pub_at), np.datetime64("NaT"))),
        completed_at=pd.to_datetime(np.where(is_done, stamp(rng, done), np.datetime64("NaT"))),
        service_hours=np.where(is_done, hours, 0.0), funds_yuan=np.where(is_done, funds, 0.0)))
    out.insert(6, "team_id", pd.Series(team, dtype="Int64").where(is_matched, pd.NA))
    out["updated_at"] = out.completed_at.fillna(out.matched_at).fillna(out.published_at)
    for i in np.flatnonzero(late & is_matched):
        faults.add("late_volunteer_match", "app", "volunteer_needs", int(out.need_id[i]), "matched 10-30 days after publication")
    for i in np.flatnonzero(never):
        faults.add("unmatched_volunteer_need", "app", "volunteer_needs", int(out.need_id[i]), "never matched to a team")
    return teams, out
