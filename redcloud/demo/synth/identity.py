"""Personal attributes for the synthetic city: names, 民族, 身份证号, phone numbers (vectorised)."""

from __future__ import annotations

import numpy as np

# surnames ranked roughly as in Guizhou (杨 first; an approximation, no official ranking was at hand)
SURNAMES = list("杨王李张刘陈吴罗龙黄赵周胡田徐何石谢宋韦潘蒋袁彭邓曾唐朱冯肖蔡熊孙林高马梁郑郭韩余杜陆姚邹冉向"
                "付程敖万雷苏岑卢秦文许夏金蒙游顾叶姜侯钟汪丁范廖魏贺沈任段曹袁戴严邱方欧代左莫粟舒安颜")
SURNAMES = list(dict.fromkeys(SURNAMES))
SURNAME_W = 1.0 / (np.arange(1, len(SURNAMES) + 1) + 5.0) ** 1.3
# given-name characters by birth cohort (names follow their era) and a generation character (字辈)
# that men of one surname and cohort often share
GIVEN_BY_ERA = [  # (born before, male characters, female characters)
    (1960, "国建华明德文志忠兴福荣春清光永正贵友發全昌明世成", "秀英兰珍凤桂玉芳琴淑翠梅莲素云华香芝"),
    (1980, "军伟红勇平东刚斌建明华强林波涛宏鹏辉峰新卫忠勤", "红丽英霞燕华萍玲敏艳芳梅静琴娟春莉"),
    (1995, "伟磊杰涛鹏强超勇浩俊斌亮峰飞洋宇凯鑫龙阳旭", "静丽婷敏燕娟芳艳雪倩琳莉丹颖慧晶蕾"),
    (2100, "浩宇轩杰俊涛鑫博文泽晨睿豪航铭宸皓然逸", "欣怡婷雨涵佳琪梦雪瑶蕾思诗悦梓萱妍可"),
]
GENERATION_CHARS = "正大光明家国兴文德世天永启尚忠绍祖宗昌开学"

# ISO 7064 MOD 11-2 weights for the 18-digit resident identity number
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = np.array(list("10X98765432"))

PHONE_PREFIXES = np.array(["130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                           "151", "152", "155", "156", "157", "158", "159", "166", "170", "176",
                           "177", "178", "180", "181", "182", "183", "185", "186", "187", "188",
                           "189", "191", "198", "199"])


def names(rng: np.random.Generator, gender: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """Chinese names; gender is an array of '男'/'女', birth the dates of birth (for the era's names)."""
    n = len(gender)
    sur = np.array(SURNAMES)[rng.choice(len(SURNAMES), n, p=SURNAME_W / SURNAME_W.sum())]
    male = gender == "男"
    year = birth.astype("datetime64[Y]").astype(int) + 1970
    era = np.searchsorted([e[0] for e in GIVEN_BY_ERA], year, side="right")
    c1 = np.empty(n, dtype=object)
    c2 = np.empty(n, dtype=object)
    for k, (_, m_chars, f_chars) in enumerate(GIVEN_BY_ERA):
        sel = era == k
        gm, gf = np.array(list(m_chars)), np.array(list(f_chars))
        c1[sel] = np.where(male[sel], gm[rng.integers(0, len(gm), sel.sum())], gf[rng.integers(0, len(gf), sel.sum())])
        c2[sel] = np.where(male[sel], gm[rng.integers(0, len(gm), sel.sum())], gf[rng.integers(0, len(gf), sel.sum())])
    two = rng.random(n) < np.where(year < 1995, 0.72, 0.85)   # most given names have two characters
    # 字辈: a man of a surname and decade of birth often carries that line's generation character first
    gen_idx = (np.array([ord(s) for s in sur]) * 7 + year // 10) % len(GENERATION_CHARS)
    use_gen = male & two & (rng.random(n) < 0.35) & (year < 1995)
    c1 = np.where(use_gen, np.array(list(GENERATION_CHARS))[gen_idx], c1)
    given = np.where(two, c1.astype(str) + c2.astype(str), c1.astype(str))
    return np.char.add(sur.astype(str), given.astype(str))


def check_digit(first17: np.ndarray) -> np.ndarray:
    """Check characters for an array of 17-digit strings."""
    digits = np.frombuffer("".join(first17).encode(), dtype=np.uint8).reshape(-1, 17) - ord("0")
    return ID_CHECK[(digits.astype(np.int64) @ ID_WEIGHTS) % 11]


def id_numbers(rng: np.random.Generator, region: np.ndarray, birth: np.ndarray, gender: np.ndarray) -> np.ndarray:
    """Valid 18-digit 身份证号: region code + birth date + sequence (odd = male) + check digit."""
    n = len(region)
    ymd = np.char.replace(np.datetime_as_string(birth.astype("datetime64[D]")), "-", "")
    prefix = np.char.add(region.astype(str), ymd)
    parity = np.where(gender == "男", 1, 0)
    seq = rng.integers(0, 500, n) * 2 + parity
    # a number belongs to one person: redraw the sequence where two people collide
    for _ in range(100):
        first17 = np.char.add(prefix, np.char.zfill(seq.astype(str), 3))
        _, first, counts = np.unique(first17, return_index=True, return_counts=True)
        clash = np.ones(n, dtype=bool)
        clash[first] = False  # the first holder keeps it
        clash &= np.isin(first17, first17[first][counts > 1])
        if not clash.any():
            break
        seq[clash] = rng.integers(0, 500, clash.sum()) * 2 + parity[clash]
    else:
        raise ValueError("too many people share a region and birth date for unique 身份证号")
    return np.char.add(first17, check_digit(first17))


def corrupt_check_digit(ids: np.ndarray) -> np.ndarray:
    """Same numbers with a wrong (but well-formed) check character."""
    first17 = np.array([s[:17] for s in ids])
    good = check_digit(first17)
    bad = np.where(good == "0", "1", np.where(good == "X", "0", "X"))
    return np.char.add(first17, bad)


def phones(rng: np.random.Generator, n: int) -> np.ndarray:
    pre = PHONE_PREFIXES[rng.integers(0, len(PHONE_PREFIXES), n)]
    rest = np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8)
    return np.char.add(pre, rest)


def mask_id(ids: np.ndarray) -> np.ndarray:
    """Public-notice masking: first 6 and last 4 characters kept (520102********1234)."""
    return np.array([s[:6] + "*" * 8 + s[-4:] for s in ids])
