"""The organisation tree: 市委 → 区县委 → 乡镇/街道党(工)委 → (党委/党总支) → 党支部."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
# mean branch size by type (members); ~20 overall
BRANCH_SIZE = {"村": 24, "社区": 22, "机关": 18, "国企": 20, "非公企业": 14, "学校": 19, "医院": 21}

TOWN_SYLLABLES = list("青岩黔陶麦坪石板久安燕楼马铃高坡党武孟关湖潮百花朱昌金华新堡永乐水田羊昌东风牛场小河沙文都拉艳山龙场宅吉红枫卫城站街暗流流长王庄犁倭")
TOWN_SUFFIX = ["镇", "镇", "乡", "街道"]
DEPARTMENTS = ["发展和改革局", "财政局", "教育局", "民政局", "人力资源和社会保障局", "自然资源局", "生态环境局",
               "住房和城乡建设局", "交通运输局", "农业农村局", "商务局", "卫生健康局", "市场监督管理局",
               "城市管理局", "水务管理局", "应急管理局", "审计局", "统计局", "司法局", "文化和旅游局"]
COMPANIES = ["城建投资集团", "交通投资集团", "水务集团", "工商产业投资集团", "旅游文化产业集团", "农业投资发展集团",
             "大数据产业集团", "公共交通集团", "燃气集团", "粮食储备集团"]
TRADES = ["科技", "商贸", "物流", "建材", "餐饮", "医药"]
PRIVATE = ["恒信", "黔通", "云数", "筑城", "山海", "汇丰源", "鑫达", "博远", "兴黔", "智联", "宏图", "蓝湾"]


def build(rng: np.random.Generator, n_members: int, ts) -> tuple[pd.DataFrame, np.ndarray]:
    """Return (organisations, branch size weights). ``ts`` maps a date to an updated_at timestamp."""
    n_branch = max(20, int(round(n_members / 20)))
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
    branch_type = np.array(BRANCH_TYPES)[rng.choice(len(BRANCH_TYPES), n_branch, p=BRANCH_TYPE_W)]
    branch_parent = np.zeros(n_branch, dtype=np.int64)
    branch_names = np.empty(n_branch, dtype=object)
    counters: dict[str, int] = {}

    def uniq(name: str) -> str:
        counters[name] = counters.get(name, 0) + 1
        return name if counters[name] == 1 else f"{name[:-3]}第{counters[name]}{name[-3:]}"

    for ci, (cname, ccode, _) in enumerate(COUNTIES):
        county = add(f"中共贵阳市{cname}委员会", city, "区县委", "党委", ccode, "1952-01-01")
        idx = np.flatnonzero(county_of_branch == ci)
        n_town = max(1, int(round(len(idx) / 8)))
        towns = []
        for _ in range(n_town):
            s = rng.choice(TOWN_SYLLABLES, 2, replace=False)
            suffix = TOWN_SUFFIX[rng.integers(0, len(TOWN_SUFFIX))]
            kind = "街道党工委" if suffix == "街道" else "党委"
            tname = f"{cname}{''.join(s)}{suffix}"
            towns.append((add(f"中共{tname}{kind}", county, "乡镇街道", "党(工)委", ccode, "1984-01-01"), tname))
        town_of = rng.integers(0, n_town, len(idx))
        for t, (town_id, tname) in enumerate(towns):
            members_idx = idx[town_of == t]
            # about one in five branches sits under a 党总支 or an enterprise/school 党委
            general = None
            if len(members_idx) >= 4:
                general = add(f"中共{tname}机关和事业单位总支部委员会", town_id, "党委/党总支", "党总支",
                              ccode, "1990-01-01")
            for b in members_idx:
                under_general = general is not None and rng.random() < 0.2
                branch_parent[b] = general if under_general else town_id
                bt = branch_type[b]
                if bt == "村":
                    nm = f"{tname}{''.join(rng.choice(TOWN_SYLLABLES, 2))}村党支部委员会"
                elif bt == "社区":
                    nm = f"{tname}{''.join(rng.choice(TOWN_SYLLABLES, 2))}社区党支部委员会"
                elif bt == "机关":
                    nm = f"{cname}{DEPARTMENTS[rng.integers(0, len(DEPARTMENTS))]}机关党支部委员会"
                elif bt == "国企":
                    nm = f"贵阳{COMPANIES[rng.integers(0, len(COMPANIES))]}{cname}分公司党支部委员会"
                elif bt == "非公企业":
                    nm = f"贵州{PRIVATE[rng.integers(0, len(PRIVATE))]}{TRADES[rng.integers(0, len(TRADES))]}有限公司党支部委员会"
                elif bt == "学校":
                    nm = f"{cname}第{rng.integers(1, 30)}中学党支部委员会"
                else:
                    nm = f"{cname}人民医院第{rng.integers(1, 9)}党支部委员会"
                branch_names[b] = uniq(nm)
    first_branch_id = len(rows) + 1
    county_codes = np.array([c[1] for c in COUNTIES])
    est_year = rng.integers(1960, 2019, n_branch)
    for b in range(n_branch):
        add(branch_names[b], int(branch_parent[b]), "党支部", branch_type[b],
            county_codes[county_of_branch[b]], f"{est_year[b]}-{rng.integers(1, 13):02d}-01")
    orgs = pd.DataFrame(rows)
    orgs["parent_org_id"] = orgs["parent_org_id"].astype("Int64")
    orgs["established_date"] = pd.to_datetime(orgs["established_date"]).dt.date
    orgs["updated_at"] = ts(orgs["established_date"].map(lambda d: max(d, pd.Timestamp("2018-01-01").date())))
    sizes = np.array([BRANCH_SIZE[t] for t in branch_type], dtype=float) * rng.gamma(6.0, 1 / 6.0, n_branch)
    orgs.attrs["first_branch_id"] = first_branch_id
    return orgs, sizes / sizes.sum()
