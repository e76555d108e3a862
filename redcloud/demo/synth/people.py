"""Members, their status history, cadres with posts and assessments, village-stationed cadres."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from redcloud.demo.synth import identity
from redcloud.demo.synth.orgs import OTHER_REGIONS

D = np.timedelta64(1, "D")

AGE_BY_TYPE = {"村": (55, 14), "社区": (58, 15), "机关": (42, 9), "国企": (44, 10), "非公企业": (38, 9),
               "学校": (40, 10), "医院": (41, 10)}
EDUCATION = ["初中及以下", "高中/中专", "大专", "大学本科", "研究生"]
EDU_BY_TYPE = {"村": [0.45, 0.33, 0.14, 0.07, 0.01], "社区": [0.25, 0.35, 0.22, 0.16, 0.02],
               "机关": [0.0, 0.03, 0.15, 0.62, 0.20], "国企": [0.03, 0.15, 0.30, 0.45, 0.07],
               "非公企业": [0.05, 0.25, 0.35, 0.32, 0.03], "学校": [0.0, 0.02, 0.10, 0.63, 0.25],
               "医院": [0.0, 0.05, 0.20, 0.55, 0.20]}
OCCUPATION_BY_TYPE = {"村": ["农牧渔民", "农牧渔民", "农牧渔民", "离退休人员", "其他职业"],
                      "社区": ["离退休人员", "离退休人员", "社区工作者", "其他职业", "企业员工"],
                      "机关": ["党政机关工作人员"], "国企": ["企业管理人员", "专业技术人员", "工人"],
                      "非公企业": ["企业管理人员", "企业员工", "专业技术人员"],
                      "学校": ["专业技术人员", "专业技术人员", "学生"], "医院": ["专业技术人员"]}
CADRE_P = {"机关": 0.45, "国企": 0.12, "学校": 0.05, "医院": 0.05, "社区": 0.06, "村": 0.07, "非公企业": 0.01}
RANKS = ["县处级正职", "县处级副职", "乡科级正职", "乡科级副职"]
RANK_P = {"机关": [0.05, 0.12, 0.35, 0.48], "村": [0.0, 0.0, 0.3, 0.7], "社区": [0.0, 0.0, 0.3, 0.7]}
RANK_P_DEFAULT = [0.0, 0.08, 0.40, 0.52]
POSITIONS = {
    "机关": {"县处级正职": "局长", "县处级副职": "副局长", "乡科级正职": "科长", "乡科级副职": "副科长"},
    "村": {"乡科级正职": "乡镇党委委员", "乡科级副职": "乡镇干部"},
    "社区": {"乡科级正职": "街道党工委委员", "乡科级副职": "街道干部"},
    "default": {"县处级副职": "副总经理", "乡科级正职": "部门主任", "乡科级副职": "部门副主任"},
}
GRADES = ["优秀", "称职", "基本称职", "不称职"]
DISCIPLINE = ["诫勉谈话", "党内警告", "党内严重警告", "撤销党内职务"]


def stamp(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """A timestamp during office hours on each given day (datetime64[s])."""
    secs = rng.integers(8 * 3600, 19 * 3600, len(days))
    return days.astype("datetime64[s]") + secs.astype("timedelta64[s]")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class People:
    members: pd.DataFrame
    status_changes: pd.DataFrame
    cadres: pd.DataFrame
    cadre_posts: pd.DataFrame
    assessments: pd.DataFrame
    discipline: pd.DataFrame
    village_assignments: pd.DataFrame
    # hidden per-entity truth and latent state used by behaviour generation
    member_latent: pd.DataFrame
    cadre_latent: pd.DataFrame
    branch_latent: pd.DataFrame


def build(rng: np.random.Generator, orgs: pd.DataFrame, weights: np.ndarray, n: int,
          start: np.datetime64, end: np.datetime64, faults) -> People:
    branches = orgs[orgs.org_level == "党支部"].reset_index(drop=True)
    mb = np.sort(rng.choice(len(branches), n, p=weights))
    btype = branches.org_type.to_numpy()[mb]
    org_id = branches.org_id.to_numpy()[mb]
    county_code = branches.region_code.to_numpy()[mb]
    member_id = np.arange(1, n + 1)

    # --- demographics ---------------------------------------------------------------------
    p_male = np.where(np.isin(btype, ["学校", "医院"]), 0.5, 0.72)
    gender = np.where(rng.random(n) < p_male, "男", "女")
    mu = np.array([AGE_BY_TYPE[t][0] for t in btype])
    sd = np.array([AGE_BY_TYPE[t][1] for t in btype])
    age = np.clip(rng.normal(mu, sd), 20, 92)
    birth = end - (age * 365.25).astype(int) * D
    join_age = np.minimum(18 + rng.gamma(2.0, 5.0, n), age - 0.5)
    join = birth + (join_age * 365.25).astype(int) * D + rng.integers(0, 30, n) * D
    # ~4% join during the period (new members, 预备党员 for their first year)
    period_days = int((end - start) / D)
    new = rng.random(n) < 0.04
    join = np.where(new, start + rng.integers(0, period_days - 30, n) * D, join)
    new &= (join - birth) / D >= 18 * 365.25
    join = np.where((join - birth) / D < 18 * 365.25, birth + int(18.2 * 365.25) * D, join)
    full = join + 365 * D
    party_status = np.where(full <= end, "正式党员", "预备党员")
    edu = np.empty(n, dtype=object)
    occ = np.empty(n, dtype=object)
    for t in np.unique(btype):
        m = btype == t
        edu[m] = np.array(EDUCATION)[rng.choice(5, m.sum(), p=EDU_BY_TYPE[t])]
        occ[m] = np.array(OCCUPATION_BY_TYPE[t])[rng.integers(0, len(OCCUPATION_BY_TYPE[t]), m.sum())]
    occ = np.where(age >= 62, np.where(rng.random(n) < 0.8, "离退休人员", occ), occ)
    ethnic = identity.ethnicities(rng, n)
    region = np.where(rng.random(n) < 0.85, county_code, np.array(OTHER_REGIONS)[rng.integers(0, len(OTHER_REGIONS), n)])
    name = identity.names(rng, gender)
    id_number = identity.id_numbers(rng, region, birth, gender)
    phone = identity.phones(rng, n)

    # --- status over the period -------------------------------------------------------------
    age_mid = age - 1.5
    p_death = np.where(age_mid > 75, 0.09, np.where(age_mid > 60, 0.025, 0.004))
    dies = rng.random(n) < p_death
    transfers_out = (~dies) & (age < 60) & (rng.random(n) < 0.05)
    mobile = (~dies) & (~transfers_out) & (age < 55) & (rng.random(n) < 0.04)
    transfer_in = (~new) & (~dies) & (rng.random(n) < 0.04)
    ev_date = start + rng.integers(10, period_days - 5, n) * D
    in_date = start + rng.integers(0, period_days - 60, n) * D
    active_from = np.where(transfer_in, in_date, join)
    # exits happen after the member became active
    ev_date = np.maximum(ev_date, active_from + 30 * D)
    exits = (dies | transfers_out) & (ev_date <= end)
    dies &= exits
    transfers_out &= exits
    membership = np.where(dies, "已去世", np.where(transfers_out, "已转出", "在册"))
    active_to = np.where(exits, ev_date, np.datetime64("NaT"))

    # when each member row was last touched in the source system
    created = np.where(active_from < start, start - rng.integers(30, 900, n) * D, active_from)
    last_change = created.copy()
    for flag, when in ((new & (full <= end), full), (exits, ev_date), (mobile, ev_date)):
        last_change = np.where(flag & (when > last_change), when, last_change)
    recorded = last_change.copy()
    # late-arriving updates: a death/transfer recorded 60-120 days after it happened
    late = exits & (rng.random(n) < 0.04) & (ev_date + 120 * D <= end)
    recorded = np.where(late, ev_date + rng.integers(60, 121, n) * D, recorded)
    updated_at = stamp(rng, np.minimum(recorded, end))

    members = pd.DataFrame(dict(
        member_id=member_id, member_name=name, gender=gender, ethnicity=ethnic, birth_date=birth,
        id_number=id_number, phone=phone, education=edu, occupation=occ, join_date=join,
        full_member_date=np.where(full <= end, full, np.datetime64("NaT")), party_status=party_status,
        membership_status=membership, is_mobile=mobile, org_id=org_id, updated_at=updated_at,
    ))

    # status change log
    ch = []
    for kind, flag, when, frm, to in (
        ("入党", new, join, None, org_id), ("转正", new & (full <= end), full, None, org_id),
        ("转入", transfer_in, in_date, None, org_id), ("转出", transfers_out, ev_date, org_id, None),
        ("流动", mobile, ev_date, org_id, org_id), ("去世", dies, ev_date, org_id, None),
    ):
        idx = np.flatnonzero(flag)
        ch.append(pd.DataFrame(dict(member_id=member_id[idx], change_type=kind, change_date=when[idx],
                                    from_org_id=None if frm is None else frm[idx],
                                    to_org_id=None if to is None else to[idx])))
    changes = pd.concat(ch, ignore_index=True).sort_values(["change_date", "member_id"], kind="stable")
    rec = changes.change_date.to_numpy().astype("datetime64[D]")
    late_ids = set(member_id[late])
    is_late = changes.member_id.isin(late_ids) & changes.change_type.isin(["转出", "去世"])
    rec = np.where(is_late, recorded[changes.member_id.to_numpy() - 1], rec)
    changes["updated_at"] = stamp(rng, rec)
    changes.insert(0, "change_id", np.arange(1, len(changes) + 1))
    for col in ("from_org_id", "to_org_id"):
        changes[col] = changes[col].astype("Int64")
    for mid in member_id[late]:
        faults.add("late_arriving_update", "org", "member_status_changes", int(mid),
                   "status change recorded 60-120 days after it happened")

    # --- latent state --------------------------------------------------------------------
    branch_eff = rng.normal(0, 1, len(branches))
    v_base = rng.normal(0, 1, n) * 0.9 + 0.4 * branch_eff[mb]
    member_latent = pd.DataFrame(dict(member_id=member_id, v_base=v_base, branch_idx=mb,
                                      active_from=active_from, active_to=active_to))

    # --- cadres --------------------------------------------------------------------------
    p_c = np.array([CADRE_P[t] for t in btype])
    eligible = (age >= 26) & (age <= 59) & ~(dies & (ev_date < start + 365 * D)) & ~transfers_out
    is_cadre = eligible & (rng.random(n) < p_c)
    cm = np.flatnonzero(is_cadre)
    nc = len(cm)
    ctype = btype[cm]
    rank = np.empty(nc, dtype=object)
    for t in np.unique(ctype):
        m = ctype == t
        rank[m] = np.array(RANKS)[rng.choice(4, m.sum(), p=RANK_P.get(t, RANK_P_DEFAULT))]
    position = np.array([POSITIONS.get(t, POSITIONS["default"]).get(r, "干部") for t, r in zip(ctype, rank)])
    competence = 0.3 * v_base[cm] + rng.normal(0, 0.95, nc)
    diligence = 0.5 * competence + rng.normal(0, 0.8, nc)
    leading = np.isin(rank, ["县处级正职", "县处级副职", "乡科级正职"])
    integrity = rng.random(nc) < np.where(leading, 0.07, 0.01)
    cadre_id = np.arange(1, nc + 1)
    rank_start = end - rng.integers(100, 8 * 365, nc) * D
    c_name = name[cm].copy()
    c_birth = birth[cm].copy()
    c_id = id_number[cm].astype(object)
    # planted: missing 身份证号 in the cadre system, conflicting values with the member system
    missing = rng.random(nc) < 0.02
    c_id[missing] = None
    conflict = (~missing) & (rng.random(nc) < 0.015)
    c_birth[conflict] = c_birth[conflict] + rng.choice([-1, 1], conflict.sum()) * rng.integers(1, 400, conflict.sum()) * D
    for i in np.flatnonzero(missing):
        faults.add("missing_id_number", "cadre", "cadres", int(cadre_id[i]), "cadre record has no 身份证号; link by name + unit")
    for i in np.flatnonzero(conflict):
        faults.add("conflicting_values", "cadre", "cadres", int(cadre_id[i]),
                   "birth_date differs from the member system for the same 身份证号")
    cadres = pd.DataFrame(dict(
        cadre_id=cadre_id, cadre_name=c_name, id_number=c_id, gender=gender[cm], birth_date=c_birth,
        ethnicity=ethnic[cm], unit_org_id=org_id[cm], position=position, rank=rank,
        rank_start_date=rank_start, phone=phone[cm], cadre_status="在职",
        updated_at=stamp(rng, np.minimum(np.maximum(rank_start, start - 400 * D), end)),
    ))
    # post history (SCD2 source): the current post plus up to two earlier ones; some change in the period
    posts = []
    lower = {"县处级正职": "县处级副职", "县处级副职": "乡科级正职", "乡科级正职": "乡科级副职", "乡科级副职": "科员"}
    n_prev = rng.integers(0, 3, nc)
    for i in range(nc):
        s = rank_start[i]
        posts.append((cadre_id[i], org_id[cm][i], position[i], rank[i], s, None))
        r = rank[i]
        for _ in range(n_prev[i]):
            r = lower.get(r, "科员")
            s_prev = s - int(rng.integers(2 * 365, 5 * 365)) * D
            posts.append((cadre_id[i], org_id[cm][i], "干部" if r == "科员" else position[i].replace("副", "") + "助理",
                          r, s_prev, s - D))
            s = s_prev
    cadre_posts = pd.DataFrame(posts, columns=["cadre_id", "unit_org_id", "position", "rank", "start_date", "end_date"])
    cadre_posts = cadre_posts.sort_values(["cadre_id", "start_date"], kind="stable").reset_index(drop=True)
    cadre_posts.insert(0, "post_id", np.arange(1, len(cadre_posts) + 1))
    cadre_posts["end_date"] = pd.to_datetime(cadre_posts["end_date"])
    cadre_posts["updated_at"] = stamp(rng, np.minimum(np.maximum(cadre_posts.start_date.to_numpy().astype("datetime64[D]"),
                                                                 start - 400 * D), end))

    # annual assessment grades: latent performance drives the grade (and the behaviour later)
    y0, y1 = int(str(start)[:4]) - 2, int(str(end)[:4])
    years = np.arange(y0, y1 + 1)
    perf = 0.8 * competence[:, None] + 0.6 * rng.normal(0, 1, (nc, len(years)))
    score = perf + 0.3 * diligence[:, None] - 1.2 * integrity[:, None] + rng.normal(0, 0.35, (nc, len(years)))
    grades = np.empty((nc, len(years)), dtype=object)
    for j in range(len(years)):
        q = np.quantile(score[:, j], [0.03, 0.10, 0.85])
        grades[:, j] = np.where(score[:, j] < q[0], "不称职", np.where(score[:, j] < q[1], "基本称职",
                                np.where(score[:, j] < q[2], "称职", "优秀")))
    ci, yj = np.meshgrid(np.arange(nc), np.arange(len(years)), indexing="ij")
    assessed = np.array([np.datetime64(f"{y}-12-28") for y in years])[yj.ravel()]
    # no grade for a year before the cadre held any post
    first_post = cadre_posts.groupby("cadre_id").start_date.min().to_numpy().astype("datetime64[D]")
    keep = assessed >= first_post[ci.ravel()]
    assessments = pd.DataFrame(dict(cadre_id=cadre_id[ci.ravel()], assess_year=years[yj.ravel()],
                                    grade=grades.ravel(), assessed_at=stamp(rng, assessed)))[keep]
    assessments.insert(0, "assessment_id", np.arange(1, len(assessments) + 1))
    assessments["updated_at"] = assessments["assessed_at"]

    # discipline records (the observed label for integrity; the truth is ``integrity``)
    disc = integrity & (rng.random(nc) < 0.55) | (~integrity & (rng.random(nc) < 0.004))
    di = np.flatnonzero(disc)
    d_date = start + rng.integers(0, period_days, len(di)) * D
    discipline = pd.DataFrame(dict(discipline_id=np.arange(1, len(di) + 1), cadre_id=cadre_id[di], action_date=d_date,
                                   action_type=np.array(DISCIPLINE)[rng.integers(0, 4, len(di))],
                                   reason=np.array(["违反廉洁纪律", "违反工作纪律", "违反群众纪律"])[rng.integers(0, 3, len(di))],
                                   updated_at=stamp(rng, d_date + 3 * D)))
    discipline = discipline[discipline.updated_at <= end + D]

    # village-stationed cadres: one 第一书记 per village branch where cadres allow
    villages = branches.org_id.to_numpy()[branches.org_type.to_numpy() == "村"]
    pool = rng.permutation(np.flatnonzero(np.isin(rank, ["乡科级副职", "乡科级正职"])))
    k = min(len(villages), len(pool))
    a_start = start + rng.integers(-365, 365, k) * D
    a_end = a_start + rng.integers(540, 900, k) * D
    village_assignments = pd.DataFrame(dict(
        assignment_id=np.arange(1, k + 1), cadre_id=cadre_id[pool[:k]], village_org_id=villages[:k],
        role=np.where(rng.random(k) < 0.8, "第一书记", "驻村工作队员"), start_date=a_start,
        end_date=np.where(a_end <= end, a_end, np.datetime64("NaT")),
        updated_at=stamp(rng, np.clip(a_start, start - 400 * D, end)),
    ))

    cadre_latent = pd.DataFrame(dict(cadre_id=cadre_id, member_id=member_id[cm], competence=competence,
                                     diligence=diligence, integrity_issue=integrity, leading=leading,
                                     branch_type=ctype, rank=rank))
    cadre_latent.attrs["years"] = years
    cadre_latent.attrs["perf"] = perf
    branch_latent = pd.DataFrame(dict(org_id=branches.org_id, org_type=branches.org_type, diligence=branch_eff))
    return People(members, changes, cadres, cadre_posts, assessments, discipline, village_assignments,
                  member_latent, cadre_latent, branch_latent)
