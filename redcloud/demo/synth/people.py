"""Members, their status history, cadres with posts and assessments, village-stationed cadres.

Calibrated to the 党内统计公报 (``targets.toml``): ages, 党龄, sex, education and occupation of the
stock; recruits (young, more women, many students) joining through the period with their 预备期 of one
year; deaths by age. The member rows and the status-change log agree by construction: every join and
转正 date since the log began has its event, every event its row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from redcloud.demo.synth import identity, targets
from redcloud.demo.synth.orgs import COUNTIES, OTHER_REGIONS, county_leadership_name

D = np.timedelta64(1, "D")
YEAR = 365.25

# age profile by kind of branch (mean, sd), a tilt that the calibration to the 公报's age bands keeps
AGE_BY_KIND = {"村": (50, 19), "社区": (60, 16), "机关": (44, 12), "国企": (44, 12), "非公企业": (38, 11),
               "学校": (44, 12), "学生": (20.5, 2.0), "医院": (42, 12)}
# log-odds of being a woman and of a 大专+ education by kind of branch (cohort trends are added)
FEMALE_BY_KIND = {"村": -0.35, "社区": 0.35, "机关": 0.0, "国企": -0.25, "非公企业": 0.0, "学校": 0.6, "学生": 0.3,
                  "医院": 0.9}
# (students hold the level they completed, 高中/中专, as the 公报 counts them)
COLLEGE_BY_KIND = {"村": -2.2, "社区": -0.5, "机关": 2.4, "国企": 0.9, "非公企业": 0.4, "学校": 2.8, "学生": -9.0,
                   "医院": 2.2}
COLLEGE_SPLIT = {"机关": [0.2, 0.62, 0.18], "学校": [0.1, 0.6, 0.3], "学生": [0.35, 0.6, 0.05], "医院": [0.2, 0.55, 0.25]}
COLLEGE_SPLIT_DEFAULT = [0.45, 0.5, 0.05]          # 大专, 大学本科, 研究生
W, FARM, PRO, MGR, GOV, STU, OTHER, RET = targets.OCCUPATIONS
# occupations of members still at work, by kind of branch
WORK_BY_KIND = {"村": ([FARM, W, OTHER, MGR], [0.84, 0.04, 0.08, 0.04]),
                "社区": ([OTHER, W, PRO, MGR, FARM], [0.42, 0.12, 0.12, 0.20, 0.14]),
                "机关": ([GOV, W, PRO, MGR], [0.72, 0.06, 0.14, 0.08]),
                "国企": ([W, PRO, MGR], [0.30, 0.33, 0.37]),
                "非公企业": ([W, PRO, MGR, OTHER], [0.25, 0.28, 0.32, 0.15]),
                "学校": ([PRO, MGR], [0.85, 0.15]), "学生": ([PRO], [1.0]),
                "医院": ([PRO, MGR, W], [0.80, 0.14, 0.06])}
RETIRE_AGE = {"男": 60, "女": 55}
VILLAGE_RETIRED = 0.15      # old village members with a pension (most stay 农牧渔民)
JOIN_AGE = (1.15, 8.5)      # join age = 18 + Gamma(shape, scale), truncated at the member's age
LOG_START_YEARS = 1         # the status-change log starts a year before the period (every 转正 has its 入党)
GRADES = ["优秀", "称职", "基本称职", "不称职"]
DISCIPLINE = ["诫勉谈话", "党内警告", "党内严重警告", "撤销党内职务"]


def stamp(rng: np.random.Generator, days: np.ndarray) -> np.ndarray:
    """A timestamp during office hours on each given day (datetime64[s])."""
    secs = rng.integers(8 * 3600, 19 * 3600, len(days))
    return days.astype("datetime64[s]") + secs.astype("timedelta64[s]")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _calibrate(logit: np.ndarray, target: float) -> np.ndarray:
    """Probabilities sigmoid(logit + c) whose mean is ``target`` (c by bisection)."""
    lo, hi = -20.0, 20.0
    for _ in range(60):
        c = (lo + hi) / 2
        if sigmoid(logit + c).mean() < target:
            lo = c
        else:
            hi = c
    return sigmoid(logit + (lo + hi) / 2)


def age_densities(kind_share: dict[str, float]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per kind of branch, a density over ages 18..100 (on the 公报's date) such that the mix of kinds
    reproduces the 公报's age bands while each kind keeps its own profile (iterative proportional fitting)."""
    ages = np.arange(18, 101)
    band = targets.age_band(ages)
    share = targets.shares(targets.load()["stock"]["age"])
    shape = np.ones(len(ages))
    shape[ages <= 21] = [0.3, 0.6, 0.9, 1.0]
    shape[ages >= 61] = np.exp(-(ages[ages >= 61] - 61) / 13.0)
    target = np.zeros(len(ages))
    for k, v in share.items():
        m = band == k
        target[m] = v * shape[m] / shape[m].sum()
    tilt = {k: stats.norm.pdf(ages, *AGE_BY_KIND[k]) + 1e-6 for k in kind_share}
    base = target.copy()
    for _ in range(200):
        dens = {k: base * tilt[k] / (base * tilt[k]).sum() for k in kind_share}
        overall = sum(kind_share[k] * dens[k] for k in kind_share)
        base *= np.where(overall > 0, target / overall, 1.0)
    return ages, {k: base * tilt[k] / (base * tilt[k]).sum() for k in kind_share}


def _yearly_hazard(age: np.ndarray) -> np.ndarray:
    """Deaths per member-year by age (Gompertz; about China's life table)."""
    return np.exp(-10.6 + 0.097 * age)


def _born_code(rng, region: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """The 身份证号 region code as it was at birth: 观山湖区 (520115) exists since November 2012; people
    born there earlier carry the code of the district the area then belonged to."""
    old = (region == "520115") & (birth < np.datetime64("2012-11-01"))
    was = np.array(["520112", "520113", "520181"])[rng.integers(0, 3, len(region))]
    return np.where(old, was, region)


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


def build(rng: np.random.Generator, orgs: pd.DataFrame, sizes: np.ndarray, n: int,
          start: np.datetime64, end: np.datetime64, faults) -> People:
    tg = targets.load()
    as_of = np.datetime64(tg["as_of"], "D")
    if not start <= as_of <= end:
        as_of = end                       # a city outside the 公报's year is calibrated on its last day
    branches = orgs[orgs.org_level == "党支部"].reset_index(drop=True)
    mb = np.repeat(np.arange(len(branches)), sizes)
    btype = branches.org_type.to_numpy()[mb]
    kind = np.where(branches.org_name.str.contains("学生").to_numpy(), "学生", branches.org_type.to_numpy())[mb]
    org_id = branches.org_id.to_numpy()[mb]
    county_code = branches.region_code.to_numpy()[mb]
    member_id = np.arange(1, n + 1)
    period_days = int((end - start) / D)

    # --- ages on the 公报's date, calibrated to its age bands --------------------------------
    kinds, counts = np.unique(kind, return_counts=True)
    ages, dens = age_densities(dict(zip(kinds, counts / n)))
    age_asof = np.empty(n)
    for k in kinds:
        m = kind == k
        age_asof[m] = rng.choice(ages, m.sum(), p=dens[k]) + rng.random(m.sum())
    birth = as_of - (age_asof * YEAR).astype(int) * D
    age = (end - birth) / D / YEAR
    birth_year = birth.astype("datetime64[Y]").astype(int) + 1970

    # --- sex and education: by kind of branch and birth cohort, calibrated to the 公报 ---------
    f_logit = np.array([FEMALE_BY_KIND[k] for k in kind]) + 0.03 * (birth_year - 1975)
    gender = np.where(rng.random(n) < _calibrate(f_logit, tg["stock"]["female"]["share"]), "女", "男")
    c_logit = np.array([COLLEGE_BY_KIND[k] for k in kind]) + 0.05 * (birth_year - 1975)
    college = rng.random(n) < _calibrate(c_logit, tg["stock"]["college"]["share"])
    edu = np.where(rng.random(n) < sigmoid(-0.4 - 0.06 * (birth_year - 1965)), "初中及以下", "高中/中专").astype(object)
    for k in np.unique(kind):
        m = college & (kind == k)
        edu[m] = np.array(targets.COLLEGE)[rng.choice(3, m.sum(), p=COLLEGE_SPLIT.get(k, COLLEGE_SPLIT_DEFAULT))]

    # --- joining: 18 + Gamma years, truncated at the member's age; one year of 预备期 -----------
    a, sc = JOIN_AGE
    cap = stats.gamma.cdf(np.maximum(age - 18, 1e-6), a, scale=sc)
    join_age = 18 + stats.gamma.ppf(np.maximum(rng.random(n) * cap, 1e-12), a, scale=sc)
    join = np.minimum(birth + (join_age * YEAR).astype(int) * D, end)
    full = join + 365 * D
    new = join >= start

    # --- occupation (the 公报's categories): by kind, age and sex ------------------------------
    occ = np.empty(n, dtype=object)
    for k in np.unique(kind):
        m = kind == k
        labels, p = WORK_BY_KIND[k]
        occ[m] = np.array(labels, dtype=object)[rng.choice(len(labels), m.sum(), p=p)]
    retired = age >= np.where(gender == "女", RETIRE_AGE["女"], RETIRE_AGE["男"])
    retired &= (kind != "村") | (rng.random(n) < VILLAGE_RETIRED)
    occ = np.where(retired, RET, occ)
    occ = np.where((kind == "学生") & (age < 26), STU, occ)

    # --- 民族: the city's share, varying by county and kind of branch; Guizhou's mix ------------
    mt = tg["stock"]["minority"]
    cname = dict((c[1], c[0]) for c in COUNTIES)
    rel = np.array([mt["county"][cname[c]] for c in county_code]) * np.array([mt["branch_type"][t] for t in btype])
    minority = rng.random(n) < np.clip(mt["share"] * rel / rel.mean(), 0, 0.95)
    mix = targets.shares(tg["stock"]["minority_mix"])
    ethnic = np.where(minority, np.array(list(mix))[rng.choice(len(mix), n, p=list(mix.values()))], "汉族")

    region = np.where(rng.random(n) < 0.85, county_code, np.array(OTHER_REGIONS)[rng.integers(0, len(OTHER_REGIONS), n)])
    name = identity.names(rng, gender, birth)
    id_number = identity.id_numbers(rng, _born_code(rng, region, birth), birth, gender)
    phone = identity.phones(rng, n)

    # --- status over the period -------------------------------------------------------------
    log_start = start - LOG_START_YEARS * 365 * D
    years = period_days / YEAR
    transfer_in = (full < log_start) & (rng.random(n) < 0.012 * years)
    in_date = start + rng.integers(0, period_days - 60, n) * D
    active_from = np.where(transfer_in, in_date, join)
    t0 = np.maximum(start, active_from + 30 * D)
    age0 = (t0 - birth) / D / YEAR
    death = t0 + (rng.exponential(1.0, n) / _yearly_hazard(age0 + 0.5) * YEAR).astype(np.int64) * D
    out = t0 + (rng.exponential(1.0, n) / np.where(age < 60, 0.012, 0.002) * YEAR).astype(np.int64) * D
    dies = (death <= end) & (death <= out)
    transfers_out = (out <= end) & ~dies
    exits = dies | transfers_out
    ev_date = np.where(dies, death, out)
    mob_date = t0 + rng.integers(0, max(period_days, 1), n) * D
    mobile = (~exits) & (age < 55) & (rng.random(n) < 0.04) & (mob_date <= end)
    membership = np.where(dies, "已去世", np.where(transfers_out, "已转出", "在册"))
    active_to = np.where(exits, ev_date, np.datetime64("NaT"))
    has_full = (full <= end) & ~(exits & (ev_date < full))
    full_date = np.where(has_full, full, np.datetime64("NaT"))

    # when each member row was last touched in the source system
    created = np.where(active_from < start, start - rng.integers(30, 900, n) * D, active_from)
    last_change = created.copy()
    for flag, when in ((new & has_full, full), (exits, ev_date), (mobile, mob_date)):
        last_change = np.where(flag & (when > last_change), when, last_change)
    recorded = last_change.copy()
    # late-arriving updates: a death/transfer recorded 60-120 days after it happened
    late = exits & (rng.random(n) < 0.04) & (ev_date + 120 * D <= end)
    recorded = np.where(late, ev_date + rng.integers(60, 121, n) * D, recorded)
    updated_at = stamp(rng, np.minimum(recorded, end))

    members = pd.DataFrame(dict(
        member_id=member_id, member_name=name, gender=gender, ethnicity=ethnic, birth_date=birth,
        id_number=id_number, phone=phone, education=edu, occupation=occ, join_date=join,
        full_member_date=full_date, party_status=np.where(has_full, "正式党员", "预备党员"),
        membership_status=membership, is_mobile=mobile, org_id=org_id, updated_at=updated_at,
    ))

    # status change log (from log_start): every date on a member row has its event, every event its row
    ch = []
    for kind_, flag, when, frm, to in (
        ("入党", join >= log_start, join, None, org_id), ("转正", has_full & (full >= log_start), full, None, org_id),
        ("转入", transfer_in, in_date, None, org_id), ("转出", transfers_out, ev_date, org_id, None),
        ("流动", mobile, mob_date, org_id, org_id), ("去世", dies, ev_date, org_id, None),
    ):
        idx = np.flatnonzero(flag)
        ch.append(pd.DataFrame(dict(member_id=member_id[idx], change_type=kind_, change_date=when[idx],
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
    skill = 0.3 * v_base + rng.normal(0, 0.95, n)

    cad = _cadres(rng, branches, mb, kind, age, retired | (occ == STU), exits & (ev_date < start + 365 * D) | transfers_out,
                  skill, birth, start, end)
    cm, rank, position, unit, rank_start, prev_posts = cad
    nc = len(cm)
    ctype = btype[cm]
    competence = skill[cm]
    diligence = 0.5 * competence + rng.normal(0, 0.8, nc)
    leading = np.isin(rank, ["县处级正职", "县处级副职", "乡科级正职"])
    # integrity problems (the truth the portrait should forecast): likelier for leading posts and for less
    # diligent cadres (a confounder the model never sees); each begins on an onset day, before or during the
    # period, and only then shows in grades, operations, complaints, public records and, later, discipline
    integrity = rng.random(nc) < np.where(leading, 0.15, 0.07) * np.exp(-0.35 * diligence)
    onset = np.where(integrity, start + rng.integers(-730, period_days, nc) * D, np.datetime64("NaT"))
    cadre_id = np.arange(1, nc + 1)
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

    # annual assessment grades: latent performance drives the grade (and the behaviour later)
    y0, y1 = int(str(start)[:4]) - 2, int(str(end)[:4])
    years_a = np.arange(y0, y1 + 1)
    perf = 0.8 * competence[:, None] + 0.6 * rng.normal(0, 1, (nc, len(years_a)))
    assessed = np.array([np.datetime64(f"{y}-12-28") for y in years_a])
    active = integrity[:, None] & (onset[:, None] <= assessed[None, :])
    score = perf + 0.3 * diligence[:, None] - 0.8 * active + rng.normal(0, 0.35, (nc, len(years_a)))
    # every post of every cadre, oldest first: (unit, position, rank, start, end)
    posts_of = [list(prev_posts[i]) + [(unit[i], position[i], rank[i], rank_start[i], np.datetime64("NaT"))]
                for i in range(nc)]
    vacated = _plant_vacancies(posts_of, rank, unit, end)
    kind_of = dict(zip(branches.org_id, branches.org_type))
    region_of = dict(zip(branches.org_id, branches.region_code))
    peers: dict[tuple, list[int]] = {}
    for u in np.unique(unit):
        peers.setdefault((region_of[u], kind_of[u]), []).append(int(u))

    def unit_on(day: np.datetime64) -> np.ndarray:
        """The unit of the post each cadre held on ``day`` (-1: none)."""
        return np.array([next((p[0] for p in ps if p[3] <= day and (np.isnat(p[4]) or day <= p[4])), -1)
                         for ps in posts_of])

    def demote(i: int, graded: np.datetime64, effect: np.datetime64) -> str:
        """不称职 on ``graded``: from ``effect`` one level lower (a 副职 is moved to another unit of the same
        kind). ``pending`` when that day is after the city's end; ``impossible`` when the cadre's history
        already has a later post (a cadre who was promoted later was not 不称职 then)."""
        u, pos, r, s0, e0 = posts_of[i][-1]
        if s0 > graded or not np.isnat(e0):   # a later post, or the cadre has left (a planted vacancy)
            return "impossible"
        if effect > end:
            return "pending"
        posts_of[i][-1] = (u, pos, r, s0, effect - D)
        if r == "县处级正职":
            r, pos = "县处级副职", f"副{pos[0]}长"
        elif r == "县处级副职":
            r, pos = "乡科级正职", "二级调研员"
        elif r == "乡科级正职":
            r, pos = "乡科级副职", DEPUTY.get(pos, "副" + pos)
        else:
            others = [x for x in peers[(region_of[u], kind_of[u])] if x != u]
            u = others[rng.integers(0, len(others))] if others else u
        posts_of[i].append((u, pos, r, effect, np.datetime64("NaT")))
        unit[i], position[i], rank[i], rank_start[i] = u, pos, r, effect
        return "done"

    grades, effect = _grades(score, assessed, unit_on, demote, region_of, kind_of)
    ci, yj = np.meshgrid(np.arange(nc), np.arange(len(years_a)), indexing="ij")
    ci, yj = ci.ravel(), yj.ravel()
    keep = grades.ravel() != ""
    assessments = pd.DataFrame(dict(cadre_id=cadre_id[ci], assess_year=years_a[yj], grade=grades.ravel(),
                                    assessed_at=stamp(rng, assessed[yj])))[keep]
    assessments.insert(0, "assessment_id", np.arange(1, len(assessments) + 1))
    assessments["updated_at"] = assessments["assessed_at"]

    cadres = pd.DataFrame(dict(
        cadre_id=cadre_id, cadre_name=c_name, id_number=c_id, gender=gender[cm], birth_date=c_birth,
        ethnicity=ethnic[cm], unit_org_id=unit, position=position, rank=rank,
        rank_start_date=rank_start, phone=phone[cm], cadre_status="在职",
        updated_at=stamp(rng, np.minimum(np.maximum(rank_start, start - 400 * D), end)),
    ))
    for i, left in vacated:   # the cadre system records the 调离; the unit's 正职 post stays vacant
        cadres.loc[cadres.index[i], ["cadre_status", "updated_at"]] = ["调离", pd.Timestamp(left) + pd.Timedelta(hours=9)]
        faults.add("leadership_vacancy", "cadre", "cadre_posts", int(unit[i]),
                   f"正职 (cadre {int(cadre_id[i])}) left on {left}; nobody appointed since")
    # post history (SCD2 source): the current post and the earlier ones, oldest first
    posts = [(cadre_id[i], *p) for i in range(nc) for p in posts_of[i]]
    cadre_posts = pd.DataFrame(posts, columns=["cadre_id", "unit_org_id", "position", "rank", "start_date", "end_date"])
    cadre_posts = cadre_posts.sort_values(["cadre_id", "start_date"], kind="stable").reset_index(drop=True)
    cadre_posts.insert(0, "post_id", np.arange(1, len(cadre_posts) + 1))
    cadre_posts["end_date"] = pd.to_datetime(cadre_posts["end_date"])
    touched = np.where(cadre_posts.end_date.isna(), cadre_posts.start_date.to_numpy().astype("datetime64[D]"),
                       cadre_posts.end_date.to_numpy().astype("datetime64[D]"))
    cadre_posts["updated_at"] = stamp(rng, np.minimum(np.maximum(touched, start - 400 * D), end))

    # discipline records (the observed label for integrity; the truth is ``integrity``)
    # a problem is disciplined (with probability 0.7) 4 to 30 months after its onset, so many are not yet
    # on record at the city's end; a few cadres are disciplined without a planted problem (minor breaches)
    disc_lag = (120 + rng.gamma(2.0, 160.0, nc)).astype(int) * D
    caught = integrity & (rng.random(nc) < 0.7)
    stray = ~integrity & (rng.random(nc) < 0.012)
    d_all = np.where(caught, onset + disc_lag, start + rng.integers(0, period_days, nc) * D)
    disc = (caught | stray) & (d_all >= start) & (d_all <= end)
    di = np.flatnonzero(disc)
    d_date = d_all[di]
    discipline = pd.DataFrame(dict(discipline_id=np.arange(1, len(di) + 1), cadre_id=cadre_id[di], action_date=d_date,
                                   action_type=np.array(DISCIPLINE)[rng.integers(0, 4, len(di))],
                                   reason=np.array(["违反廉洁纪律", "违反工作纪律", "违反群众纪律"])[rng.integers(0, 3, len(di))],
                                   updated_at=stamp(rng, d_date + 3 * D)))
    discipline = discipline[discipline.updated_at <= end + D]

    # village-stationed cadres: one per village branch at a time, sent by government units and state
    # firms for about two years; when a term ends before the city's last month the next cadre takes over
    villages = branches.org_id.to_numpy()[branches.org_type.to_numpy() == "村"]
    sender = np.isin(ctype, ["机关", "国企"]) & (rank == "乡科级副职") & np.isnat(effect)
    pool = list(np.concatenate([rng.permutation(np.flatnonzero(sender & (ctype == "机关"))),
                                rng.permutation(np.flatnonzero(sender & (ctype == "国企")))]))
    terms = []   # (cadre index, village, start, end)
    k = min(len(villages), len(pool))
    first_start = start + rng.integers(-365, 365, k) * D
    first_end = first_start + rng.integers(540, 900, k) * D
    for v in range(k):
        terms.append((pool[v], villages[v], first_start[v], first_end[v]))
    spare = pool[k:]
    for v in range(k):
        nxt = first_end[v] + D
        if nxt <= end - 30 * D and spare:
            terms.append((spare.pop(0), villages[v], nxt, nxt + int(rng.integers(540, 900)) * D))
    t_cadre = np.array([t[0] for t in terms], dtype=np.int64)
    t_start = np.array([t[2] for t in terms], dtype="datetime64[D]")
    t_end = np.array([t[3] for t in terms], dtype="datetime64[D]")
    n_terms = len(terms)
    village_assignments = pd.DataFrame(dict(
        assignment_id=np.arange(1, n_terms + 1), cadre_id=cadre_id[t_cadre],
        village_org_id=np.array([t[1] for t in terms], dtype=np.int64),
        role=np.where(rng.random(n_terms) < 0.8, "第一书记", "驻村工作队员"), start_date=t_start,
        end_date=np.where(t_end <= end, t_end, np.datetime64("NaT")),
        updated_at=stamp(rng, np.clip(t_start, start - 400 * D, end)),
    ))

    cadre_latent = pd.DataFrame(dict(cadre_id=cadre_id, member_id=member_id[cm], competence=competence,
                                     diligence=diligence, integrity_issue=integrity, integrity_onset=onset,
                                     leading=leading,
                                     branch_type=ctype, rank=rank))
    cadre_latent.attrs["years"] = years_a
    cadre_latent.attrs["perf"] = perf
    branch_latent = pd.DataFrame(dict(org_id=branches.org_id, org_type=branches.org_type, diligence=branch_eff))
    return People(members, changes, cadres, cadre_posts, assessments, discipline, village_assignments,
                  member_latent, cadre_latent, branch_latent)


def _plant_vacancies(posts_of: list, rank: np.ndarray, unit: np.ndarray, end: np.datetime64) -> list[tuple[int, np.datetime64]]:
    """About one unit in seven loses its 乡科级正职 30-250 days before the city's end (调离, nobody appointed
    yet): the post ends the day before. Done before grading, so a cadre who left is graded no more.
    Chosen by a hash of the unit, so no random stream of the city changes. Returns (cadre index, day left)."""
    out = []
    for i in np.flatnonzero(rank == "乡科级正职"):
        u = int(unit[i])
        if (u * 2654435761) % 7 != 3:
            continue
        left = end - int(30 + (u * 7919) % 221) * D
        uu, pos, r, s0, e0 = posts_of[i][-1]
        if s0 >= left or not np.isnat(e0):
            continue
        posts_of[i][-1] = (uu, pos, r, s0, left - D)
        out.append((int(i), left))
    return out


# who holds which post in each unit: (rank, position, how many); {p} is 区/县/市 of the county
STAFF = {
    "leadership": [("县处级正职", "{p}委书记", 1), ("县处级正职", "{p}长", 1), ("县处级副职", "{p}委常委", 3),
                   ("县处级副职", "副{p}长", 3)],
    "机关": [("乡科级正职", "局长", 1), ("乡科级副职", "副局长", 4)],
    "国企": [("乡科级正职", "总经理", 1), ("乡科级副职", "副总经理", 3)],
    "学校": [("乡科级正职", "校长", 1), ("乡科级副职", "副校长", 2)],
    "医院": [("乡科级正职", "院长", 1), ("乡科级副职", "副院长", 3)],
}
DEPUTY = {"局长": "副局长", "总经理": "副总经理", "校长": "副校长", "院长": "副院长"}
CLERK = "科员"


def _cadres(rng, branches: pd.DataFrame, mb: np.ndarray, kind: np.ndarray, age: np.ndarray, not_working: np.ndarray,
            gone: np.ndarray, skill: np.ndarray, birth: np.ndarray, start: np.datetime64, end: np.datetime64):
    """Staff each unit: one 正职 (two in a county's leadership), a few 副职, by seniority and skill; each
    cadre's earlier posts (a 副职 before a 正职, a 科员 post before that; 县处级 leaders were 局长 before)."""
    names = branches.org_name.to_numpy()
    org_ids = branches.org_id.to_numpy()
    region = branches.region_code.to_numpy()
    county_name = {c[1]: c[0] for c in COUNTIES}
    leadership = {county_leadership_name(county_name[r]) for r in region}
    eligible = ~not_working & ~gone & (age >= 30) & (age < 59)
    bureaus: dict[str, list[int]] = {}
    for b, (nm, r) in enumerate(zip(names, region)):
        if branches.org_type.iat[b] == "机关" and nm not in leadership:
            bureaus.setdefault(r, []).append(int(org_ids[b]))
    order = np.argsort(-(skill + 0.04 * age), kind="stable")
    by_branch: dict[int, list[int]] = {}
    for i in order[eligible[order]]:
        by_branch.setdefault(int(mb[i]), []).append(int(i))
    cm, rank, position, unit, rank_start, prev = [], [], [], [], [], []
    for b in range(len(branches)):
        k = "leadership" if names[b] in leadership else kind[by_branch[b][0]] if by_branch.get(b) else None
        if k not in STAFF:
            continue
        p = county_name[region[b]][-1]
        cands = iter(by_branch[b])
        for r, pos, count in STAFF[k]:
            for _ in range(count):
                i = next(cands, None)
                if i is None:
                    break
                pos_ = pos.format(p=p)
                years_in_post = rng.uniform(0.3, 7.0)
                s = max(end - int(years_in_post * YEAR) * D, birth[i] + int(32 * YEAR) * D)
                s = min(s, end - 60 * D)
                cm.append(i)
                rank.append(r)
                position.append(pos_)
                unit.append(int(org_ids[b]))
                rank_start.append(s)
                prev.append(_earlier_posts(rng, r, pos_, int(org_ids[b]), s, birth[i], bureaus.get(region[b], [])))
    return (np.array(cm, dtype=np.int64), np.array(rank, dtype=object), np.array(position, dtype=object),
            np.array(unit, dtype=np.int64), np.array(rank_start, dtype="datetime64[D]"), prev)


def _earlier_posts(rng, rank: str, position: str, unit: int, s: np.datetime64, birth: np.datetime64,
                   bureaus: list[int]) -> list[tuple]:
    """Earlier posts, newest first, each ending the day before the next began; none before age 24."""
    chain: list[tuple[int, str, str]] = []
    other = bureaus[rng.integers(0, len(bureaus))] if bureaus else unit
    if rank == "县处级正职":
        chain = [(unit, f"副{position[0]}长", "县处级副职"), (other, "局长", "乡科级正职")]
    elif rank == "县处级副职":
        chain = [(other, "局长", "乡科级正职"), (other, "副局长", "乡科级副职")]
    elif rank == "乡科级正职":
        chain = [(unit, DEPUTY.get(position, "副" + position), "乡科级副职"), (unit, CLERK, CLERK)]
    elif rng.random() < 0.6:
        chain = [(unit, CLERK, CLERK)]
    out = []
    for u, pos, r in chain[: int(rng.integers(max(0, len(chain) - 1), len(chain) + 1))]:
        length = int(rng.uniform(2, 6) * YEAR)
        s_prev = s - length * D
        if s_prev < birth + int(24 * YEAR) * D:
            break
        out.append((u, pos, r, s_prev, s - D))
        s = s_prev
    return out[::-1]


def _grades(score: np.ndarray, assessed: np.ndarray, unit_on, demote, region_of: dict, kind_of: dict):
    """Grades per cadre and year (``""``: no post that year) with the 优秀 share at most 20 % of each
    assessment group: the unit of the post held on the assessment day, or the county's units of one
    kind pooled when the unit has fewer than five graded cadres that year. 不称职 is rare; the graded
    post is left (``demote``) on 1 April of the next year. Returns (grades, that day per cadre or NaT)."""
    nc, ny = score.shape
    grades = np.full((nc, ny), "", dtype=object)
    effect = np.full(nc, np.datetime64("NaT"), dtype="datetime64[D]")
    for j in range(ny):
        units = unit_on(assessed[j])
        valid = units >= 0
        if not valid.any():
            continue
        size = pd.Series(units[valid]).value_counts()
        group = np.array([f"u{u}" if u >= 0 and size[u] >= 5 else f"{region_of.get(u)}/{kind_of.get(u)}" for u in units])
        s = score[:, j]
        q_bad, q_basic, q_good = np.quantile(s[valid], [0.005, 0.06, 0.70])
        g = np.where(s < q_bad, "不称职", np.where(s < q_basic, "基本称职", "称职")).astype(object)
        frame = pd.DataFrame(dict(i=np.flatnonzero(valid), grp=group[valid], s=s[valid]))
        for _, part in frame.groupby("grp", sort=True):
            quota = int(np.floor(0.2 * len(part)))
            top = part[part.s >= q_good].nlargest(quota, "s")
            g[top.i.to_numpy()] = "优秀"
        for i in np.flatnonzero(valid & (g == "不称职")):
            day = np.datetime64(f"{int(str(assessed[j])[:4]) + 1}-04-01")
            outcome = demote(int(i), assessed[j], day) if np.isnat(effect[i]) else "impossible"
            if outcome == "done":
                effect[i] = day
            elif outcome == "impossible":
                g[i] = "基本称职"
        grades[valid, j] = g[valid]
    return grades, effect
