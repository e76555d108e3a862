"""Personal attributes for the synthetic city: names, 民族, 身份证号, phone numbers (vectorised)."""

from __future__ import annotations

import numpy as np

SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
# weights: a long tail, the first few surnames are much more common
SURNAME_W = 1.0 / np.arange(1, len(SURNAMES) + 1) ** 0.9
GIVEN_CHARS_M = list("伟刚勇毅俊峰强军平保东文辉力明永健世广志义兴良海山仁波宁贵福生龙元全国胜学祥才发武新利清飞彬富顺信子杰涛昌成康星光天达安岩中茂进林有坚和彪博诚先敬震振壮会思群豪心邦承乐绍功松善厚庆磊民友裕河哲江超浩亮政谦亨奇固之轮翰朗伯宏言若鸣朋斌梁栋维启克伦翔旭鹏泽晨辰士以建家致树炎德行时泰盛雄琛钧冠策腾楠榕风航弘")
GIVEN_CHARS_F = list("秀娟英华慧巧美娜静淑惠珠翠雅芝玉萍红娥玲芬芳燕彩春菊兰凤洁梅琳素云莲真环雪荣爱妹霞香月莺媛艳瑞凡佳嘉琼勤珍贞莉桂娣叶璧璐娅琦晶妍茜秋珊莎锦黛青倩婷姣婉娴瑾颖露瑶怡婵雁蓓纨仪荷丹蓉眉君琴蕊薇菁梦岚苑婕馨瑗琰韵融园艺咏卿聪澜纯毓悦昭冰爽琬茗羽希宁欣飘育滢馥筠柔竹霭凝晓欢霄枫芸菲寒伊亚宜可姬舒影荔枝丽阳")

# 民族 with a Guizhou-like mix (shares of the population, roughly)
ETHNICITIES = ["汉族", "苗族", "布依族", "侗族", "土家族", "彝族", "仡佬族", "水族", "回族", "白族", "瑶族", "壮族", "其他"]
ETHNICITY_W = np.array([62.0, 12.0, 7.9, 5.0, 4.0, 2.4, 1.5, 1.0, 0.5, 0.5, 0.1, 0.1, 2.9])

# ISO 7064 MOD 11-2 weights for the 18-digit resident identity number
ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
ID_CHECK = np.array(list("10X98765432"))

PHONE_PREFIXES = np.array(["130", "131", "132", "133", "135", "136", "137", "138", "139", "150",
                           "151", "152", "155", "156", "157", "158", "159", "166", "170", "176",
                           "177", "178", "180", "181", "182", "183", "185", "186", "187", "188",
                           "189", "191", "198", "199"])


def names(rng: np.random.Generator, gender: np.ndarray) -> np.ndarray:
    """Chinese names; gender is an array of '男'/'女'."""
    n = len(gender)
    sur = np.array(SURNAMES)[rng.choice(len(SURNAMES), n, p=SURNAME_W / SURNAME_W.sum())]
    male = gender == "男"
    gm, gf = np.array(GIVEN_CHARS_M), np.array(GIVEN_CHARS_F)
    c1 = np.where(male, gm[rng.integers(0, len(gm), n)], gf[rng.integers(0, len(gf), n)])
    c2 = np.where(male, gm[rng.integers(0, len(gm), n)], gf[rng.integers(0, len(gf), n)])
    two = rng.random(n) < 0.72  # most given names have two characters
    return np.char.add(np.char.add(sur, c1), np.where(two, c2, ""))


def ethnicities(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array(ETHNICITIES)[rng.choice(len(ETHNICITIES), n, p=ETHNICITY_W / ETHNICITY_W.sum())]


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
