"""The organisation tree: 市委 → 区县委 → 乡镇/街道党(工)委 → (党总支) → 党支部.

Branch sizes follow the rules: at least ``min_members`` (enough for three 正式党员) and at most
``max_members`` (larger branches are split, as 党章 practice requires); a 党总支 is set up only where it
has at least two branches under it; establishment years depend on the kind of organisation; names are
unique without numbering tricks (a second branch of the same unit is its 第二党支部).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from redcloud.demo.synth import targets

# Guiyang-like counties: (name, 6-digit administrative code, relative size)
COUNTIES = [
    ("南明区", "520102", 1.3), ("云岩区", "520103", 1.3), ("花溪区", "520111", 1.1),
    ("乌当区", "520112", 0.8), ("白云区", "520113", 0.8), ("观山湖区", "520115", 1.0),
    ("开阳县", "520121", 0.8), ("息烽县", "520122", 0.6), ("修文县", "520123", 0.7),
    ("清镇市", "520181", 0.9),
]
OTHER_REGIONS = ["520201", "520302", "522601", "522701", "520402", "522301", "520502", "520602"]

BRANCH_TYPES = ["村", "社区", "机关", "国企", "非公企业", "学校", "医院"]
BRANCH_TYPE_W = np.array([0.30, 0.15, 0.15, 0.08, 0.15, 0.10, 0.07])
# relative branch size by type (members)
BRANCH_SIZE = {"村": 24, "社区": 23, "机关": 20, "国企": 22, "非公企业": 14, "学校": 22, "医院": 22}
# establishment years by type: villages' branches go back to land reform, private firms' to the 1990s
ESTABLISHED = {"村": (1950, 1985), "社区": (1985, 2016), "机关": (1952, 2000), "国企": (1993, 2016),
               "非公企业": (2000, 2022), "学校": (1958, 2008), "医院": (1958, 2005)}

TOWN_SYLLABLES = list("青岩黔陶麦坪石板久安燕楼马铃高坡党武孟关湖潮百花朱昌金华新堡永乐水田羊昌东风牛场小河沙文都拉艳山龙场宅吉红枫卫城站街暗流流长王庄犁倭")
TOWN_SUFFIX = ["镇", "镇", "乡", "街道"]
DEPARTMENTS = ["发展和改革局", "财政局", "教育局", "民政局", "人力资源和社会保障局", "自然资源局", "生态环境局",
               "住房和城乡建设局", "交通运输局", "农业农村局", "商务局", "卫生健康局", "市场监督管理局",
               "城市管理局", "水务管理局", "应急管理局", "审计局", "统计局", "司法局", "文化和旅游局"]
COMPANIES = ["城建投资集团", "交通投资集团", "水务集团", "工商产业投资集团", "旅游文化产业集团", "农业投资发展集团",
             "大数据产业集团", "公共交通集团", "燃气集团", "粮食储备集团"]
TRADES = ["科技", "商贸", "物流", "建材", "餐饮", "医药"]
PRIVATE = ["恒信", "黔通", "云数", "筑城", "山海", "汇丰源", "鑫达", "博远", "兴黔", "智联", "宏图", "蓝湾"]
COLLEGES = ["贵阳学院", "贵阳职业技术学院", "贵阳幼儿师范高等专科学校", "贵阳康养职业大学", "贵阳人文科技学院",
            "贵州轻工职业技术学院"]
FACULTIES = ["经济管理学院", "文化传媒学院", "机械工程学院", "信息工程学院", "护理学院", "马克思主义学院"]
STUDENT_BRANCH_SHARE = 0.4  # 学校 branches of students (their members are 学生 until they graduate)
ORDINALS = "一二三四五六七八九十"
# member rows per member on the roll at the 公报's date (those who die, leave or join later)
BRANCH_ROWS_PER_MEMBER = 1.07
MIN_BRANCH_SIZE = 5     # leaves three 正式党员 after a 预备党员 and an exit or two
LEADERSHIP = "党政办"   # the county's leadership branch (区县委办/政府办): its cadres are 县处级


def county_leadership_name(cname: str) -> str:
    return f"{cname}{LEADERSHIP}机关党支部委员会"


def branch_sizes(rng: np.random.Generator, kinds: np.ndarray, n_members: int, lo: int, hi: int,
                 steady: np.ndarray) -> np.ndarray:
    """Integer branch sizes summing to ``n_members``, each within [lo, hi]; ``steady`` branches (students,
    organised by class year) vary less in size."""
    w = np.array([BRANCH_SIZE[t] for t in kinds], dtype=float) * np.where(
        steady, rng.gamma(40.0, 1 / 40.0, len(kinds)), rng.gamma(6.0, 1 / 6.0, len(kinds)))
    s = np.clip(np.round(w / w.sum() * n_members), lo, hi).astype(int)
    order = rng.permutation(len(s))
    i = 0
    while s.sum() != n_members:   # spread the rounding difference over branches that can take it
        b = order[i % len(s)]
        if s.sum() < n_members and s[b] < hi:
            s[b] += 1
        elif s.sum() > n_members and s[b] > lo:
            s[b] -= 1
        i += 1
    return s


def build(rng: np.random.Generator, n_members: int, ts) -> tuple[pd.DataFrame, np.ndarray]:
    """Return (organisations, members per branch in branch order). ``ts`` maps dates to updated_at."""
    t = targets.load()["orgs"]["members_per_branch"]
    lo, hi, per_branch = MIN_BRANCH_SIZE, int(t["max_members"]), float(t["value"])
    n_branch = max(20, int(round(n_members / (per_branch * BRANCH_ROWS_PER_MEMBER))))
    rows: list[dict] = []

    def add(name, parent, level, org_type, county_code, established):
        oid = len(rows) + 1
        rows.append(dict(org_id=oid, org_code=f"GY{oid:07d}", org_name=name, parent_org_id=parent,
                         org_level=level, org_type=org_type, region_code=county_code,
                         established_date=established))
        return oid

    city = add("中共贵阳市委员会", None, "市委", "党委", "520100", "1950-01-01")
    cw = np.array([c[2] for c in COUNTIES])
    county_of_branch = rng.choice(len(COUNTIES), n_branch, p=cw / cw.sum())
    # the mix of branch kinds as in the weights (largest remainder), in random order
    quota = BRANCH_TYPE_W / BRANCH_TYPE_W.sum() * n_branch
    count = np.floor(quota).astype(int)
    count[np.argsort(-(quota - count), kind="stable")[: n_branch - count.sum()]] += 1
    branch_type = rng.permutation(np.repeat(np.array(BRANCH_TYPES), count))
    schools = np.flatnonzero(branch_type == "学校")
    students = set(rng.choice(schools, int(round(len(schools) * STUDENT_BRANCH_SHARE)), replace=False).tolist())
    # every county has its leadership branch (a 机关 branch whose cadres are the 县处级 leaders)
    for ci in range(len(COUNTIES)):
        idx = np.flatnonzero((county_of_branch == ci) & (branch_type == "机关"))
        if len(idx) == 0:
            idx = np.flatnonzero(county_of_branch == ci)[:1]
            branch_type[idx] = "机关"
    branch_parent = np.zeros(n_branch, dtype=np.int64)
    branch_names = np.empty(n_branch, dtype=object)
    used: set[str] = set()

    def unique(stem: str, suffix: str = "党支部委员会") -> str:
        name, k = f"{stem}{suffix}", 1
        while name in used:
            k += 1
            name = f"{stem}第{ORDINALS[k - 1] if k <= 10 else k}{suffix}"
        used.add(name)
        return name

    def place(tname: str) -> str:
        for _ in range(50):
            s = "".join(rng.choice(TOWN_SYLLABLES, 2, replace=False))
            if f"{tname}{s}" not in used:
                used.add(f"{tname}{s}")
                return s
        return "".join(rng.choice(TOWN_SYLLABLES, 3))

    for ci, (cname, ccode, _) in enumerate(COUNTIES):
        county = add(f"中共贵阳市{cname}委员会", city, "区县委", "党委", ccode, "1952-01-01")
        idx = np.flatnonzero(county_of_branch == ci)
        n_town = max(1, int(round(len(idx) / 8)))
        towns = []
        town_names: set[str] = set()
        while len(towns) < n_town:
            s = "".join(rng.choice(TOWN_SYLLABLES, 2, replace=False))
            suffix = TOWN_SUFFIX[rng.integers(0, len(TOWN_SUFFIX))]
            if s in town_names:
                continue
            town_names.add(s)
            tname = f"{cname}{s}{suffix}"
            kind = "党工委" if suffix == "街道" else "党委"
            towns.append((add(f"中共{tname}{kind}", county, "乡镇街道", "党(工)委", ccode, "1984-01-01"), tname))
        town_of = rng.integers(0, n_town, len(idx))
        depts = list(rng.permutation(DEPARTMENTS))
        first_agency = True
        for ti, (town_id, tname) in enumerate(towns):
            members_idx = idx[town_of == ti]
            # a 党总支 for the town's 机关/事业单位 branches, only where it would hold at least two
            public = [b for b in members_idx if branch_type[b] in ("机关", "学校", "医院")]
            general = None
            if len(public) >= 2 and rng.random() < 0.5:
                general = add(f"中共{tname}机关和事业单位总支部委员会", town_id, "党委/党总支", "党总支", ccode, "1990-01-01")
            for b in members_idx:
                branch_parent[b] = general if (general is not None and b in public) else town_id
                bt = branch_type[b]
                if bt == "村":
                    nm = unique(f"{tname}{place(tname)}村")
                elif bt == "社区":
                    nm = unique(f"{tname}{place(tname)}社区")
                elif bt == "机关":
                    if first_agency:
                        nm, first_agency = county_leadership_name(cname), False
                        used.add(nm)
                    else:
                        dept = depts.pop() if depts else DEPARTMENTS[rng.integers(0, len(DEPARTMENTS))]
                        nm = unique(f"{cname}{dept}机关")
                elif bt == "国企":
                    nm = unique(f"贵阳{COMPANIES[rng.integers(0, len(COMPANIES))]}{cname}分公司")
                elif bt == "非公企业":
                    nm = unique(f"贵州{PRIVATE[rng.integers(0, len(PRIVATE))]}{TRADES[rng.integers(0, len(TRADES))]}有限公司")
                elif bt == "学校" and b in students:
                    nm = unique(f"{COLLEGES[rng.integers(0, len(COLLEGES))]}{FACULTIES[rng.integers(0, len(FACULTIES))]}学生")
                elif bt == "学校":
                    nm = unique(f"{cname}第{rng.integers(1, 30)}中学")
                else:
                    nm = unique(f"{cname}人民医院")
                branch_names[b] = nm
    first_branch_id = len(rows) + 1
    county_codes = np.array([c[1] for c in COUNTIES])
    est_lo = np.array([ESTABLISHED[k][0] for k in branch_type])
    est_hi = np.array([ESTABLISHED[k][1] for k in branch_type])
    est_year = est_lo + (rng.random(n_branch) * (est_hi - est_lo + 1)).astype(int)
    for b in range(n_branch):
        add(branch_names[b], int(branch_parent[b]), "党支部", branch_type[b],
            county_codes[county_of_branch[b]], f"{est_year[b]}-{rng.integers(1, 13):02d}-01")
    orgs = pd.DataFrame(rows)
    orgs["parent_org_id"] = orgs["parent_org_id"].astype("Int64")
    orgs["established_date"] = pd.to_datetime(orgs["established_date"]).dt.date
    orgs["updated_at"] = ts(orgs["established_date"].map(lambda d: max(d, pd.Timestamp("2018-01-01").date())))
    sizes = branch_sizes(rng, branch_type, n_members, lo, hi, np.isin(np.arange(n_branch), list(students)))
    orgs.attrs["first_branch_id"] = first_branch_id
    return orgs, sizes
