"""Identity fusion rules on hand-made records (cases the city has few or none of)."""

from __future__ import annotations

import datetime as dt


def test_identity_flags_ambiguity_instead_of_guessing(spark):
    from spark_jobs.identity import build_identity

    members = spark.createDataFrame([
        (1, "张伟", 10, "H1", "520102********0011", "男", dt.date(1980, 1, 1), "汉族", "ph1"),
        (2, "张伟", 10, "H2", "520102********0022", "男", dt.date(1985, 1, 1), "汉族", "ph2"),   # twin in unit 10
        (3, "李娜", 10, "H3", "520102********0033", "女", dt.date(1990, 1, 1), "汉族", "ph3"),
        (4, "王芳", 11, "H4", "520103********0044", "女", dt.date(1975, 1, 1), "苗族", "ph4"),
        (5, "赵强", 12, "H5", "520102********0055", "男", dt.date(1970, 1, 1), "汉族", "ph5"),
        (6, "赵强", 13, "H6", "520102********0055", "男", dt.date(1971, 1, 1), "汉族", "ph6"),   # same mask + name
    ], "member_id long, member_name string, org_id long, id_number_pseudonym string, id_number_masked string, "
       "gender string, birth_date date, ethnicity string, phone_pseudonym string")
    orgs = spark.createDataFrame([(10, "中共南明区财政局机关党支部委员会", "520102"),
                                  (11, "中共云岩区财政局机关党支部委员会", "520103"),
                                  (12, "中共南明区教育局机关党支部委员会", "520102"),
                                  (13, "中共南明区民政局机关党支部委员会", "520102")],
                                 "org_id long, org_name string, region_code string")
    cadres = spark.createDataFrame([
        (100, "张伟", 10, None, "男", dt.date(1980, 1, 1), "汉族", None),        # ambiguous: two 张伟 in unit 10
        (101, "李娜", 10, None, "女", dt.date(1990, 1, 1), "汉族", "ph3"),       # fuzzy: one 李娜 in unit 10
        (102, "王芳", 11, "H4", "女", dt.date(1976, 5, 5), "苗族", "ph4"),       # exact, birth date conflicts
        (103, "赵强", 12, "H5", "男", dt.date(1970, 1, 1), "汉族", "ph5"),
        (104, "赵强", 13, "H6", "男", dt.date(1971, 1, 1), "汉族", "ph6"),
        (105, "周杰", 11, "H9", "男", dt.date(1971, 1, 1), "汉族", None),        # ID matches no member
    ], "cadre_id long, cadre_name string, unit_org_id long, id_number_pseudonym string, gender string, "
       "birth_date date, ethnicity string, phone_pseudonym string")
    ops = spark.createDataFrame([
        ("D000012|赵强|-", "D000012", "赵强", None),   # two 赵强 cadres in the county, one in the dept's unit
        ("D000010|李娜|-", "D000010", "李娜", None),   # one 李娜 cadre in the county
        ("D000010|张伟|-", "D000010", "张伟", None),   # the only 张伟 cadre is itself unresolved
        ("D000011|王芳|H4", "D000011", "王芳", "H4"),
        ("D000099|王芳|-", "D000099", "王芳", None),   # unknown department
    ], "identity_key string, dept_code string, handler_name string, handler_id_number_pseudonym string")
    comp = spark.createDataFrame([("D000013|赵强|-", "D000014", "赵强")],   # dept 14 unknown -> no county
                                 "identity_key string, dept_code string, handler_name string")
    pen = spark.createDataFrame([("N1", "赵强", "520102********0055"), ("N2", "王芳", "520103********0044"),
                                 ("N3", "王芳", "520103********9999"), ("N4", "李娜", None)],
                                "notice_id string, party_name string, party_id_masked string")
    news = spark.createDataFrame([("X1", "王芳同志获评优秀共产党员", "云岩区财政局机关党支部王芳同志扎根基层。"),
                                  ("X2", "赵强：扎根一线的好干部", "南明区某单位赵强同志受到好评。")],
                                 "news_id string, title string, body string")
    res = build_identity(members, cadres, orgs, power_operations=ops, complaints=comp, penalties=pen, news=news)
    got = {(r.source, r.source_key): r for r in res.links.collect()}

    def check(source, key, status, person=None, method=None, n=None):
        r = got[(source, key)]
        assert (r.status, r.person_key) == (status, person), (key, r)
        if method:
            assert r.method == method, (key, r)
        if n is not None:
            assert r.candidates == n, (key, r)

    check("cadre", "100", "ambiguous", None, "name_unit", 2)
    check("cadre", "101", "linked", "P3", "name_unit", 1)
    check("cadre", "102", "linked", "P4", "id_number", 1)
    check("cadre", "105", "unlinked", None, "id_number", 0)
    check("ironcage", "D000012|赵强|-", "linked", "P5", "name_unit")
    check("ironcage", "D000010|李娜|-", "linked", "P3", "name_unit")
    check("ironcage", "D000010|张伟|-", "ambiguous", None)
    check("ironcage", "D000011|王芳|H4", "linked", "P4", "id_number")
    check("ironcage", "D000099|王芳|-", "unlinked", None)
    check("ironcage", "D000013|赵强|-", "unlinked", None)
    check("web_penalty", "N1", "ambiguous", None, "masked_id_name", 2)
    check("web_penalty", "N2", "linked", "P4", "masked_id_name")
    check("web_penalty", "N3", "unlinked", None)
    check("web_penalty", "N4", "unlinked", None)
    check("web_news", "X1", "linked", "P4", "name_text")
    check("web_news", "X2", "unlinked", None)
    assert all(r.status == "linked" for (s, _), r in got.items() if s == "member") and \
        sum(s == "member" for s, _ in got) == 6
    persons = {r.person_key: r for r in res.persons.collect()}
    assert len(persons) == 6
    assert persons["P4"].cadre_id == 102 and persons["P4"].conflicts == ["birth_date"]
    assert persons["P3"].cadre_id == 101 and persons["P3"].conflicts == []
    assert persons["P1"].cadre_id is None and persons["P2"].cadre_id is None
