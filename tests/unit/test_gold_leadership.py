"""The cadre force in gold on hand-built posts: 领导班子 structure and 正职 vacancy counted in working
days on the official calendar (调休 included), and cadre changes classified from post to post."""

from __future__ import annotations

import datetime as dt

from redcloud import workdays
from redcloud.rules import Rules
from spark_jobs.gold import facts as G
from spark_jobs.gold import leadership as L

D = dt.date
RULES = Rules.defaults()
POSTS = "cadre_id long, unit_org_id long, rank string, position string, valid_from date, valid_to date"
CADRES = "cadre_id long, gender string, ethnicity string, birth_date date, is_deleted boolean, deleted_on date"
AS_OF = D(2025, 12, 31)


def _frames(spark):
    posts = spark.createDataFrame([
        (1, 34, "乡科级正职", "局长", D(2020, 1, 1), D(2025, 9, 20)),       # the chief leaves on a Saturday
        (1, 35, "县处级副职", "副县长", D(2025, 9, 20), None),               # ... promoted to another unit
        (2, 34, "乡科级副职", "副局长", D(2022, 1, 1), None),
        (3, 34, "乡科级副职", "副局长", D(2021, 1, 1), None),
        (4, 34, "科员", "科员", D(2019, 1, 1), D(2024, 1, 1)),
        (4, 34, "乡科级副职", "副局长", D(2024, 1, 1), None),
        (5, 34, "乡科级副职", "副局长", D(2021, 1, 1), D(2025, 7, 1)),       # left (免职) on Jul 1
    ], POSTS)
    cadres = spark.createDataFrame([
        (1, "男", "汉族", D(1975, 5, 1), False, None), (2, "女", "汉族", D(1990, 3, 1), False, None),
        (3, "男", "苗族", D(1970, 12, 31), False, None), (4, "男", "汉族", D(1980, 1, 1), False, None),
        (5, "男", "汉族", D(1965, 1, 1), False, None)], CADRES)
    return posts, cadres


def test_snapshot_dates_are_quarter_ends_then_the_logical_date():
    assert L.snapshot_dates(D(2025, 2, 10), D(2025, 11, 5)) == [D(2025, 3, 31), D(2025, 6, 30), D(2025, 9, 30),
                                                                 D(2025, 11, 5)]
    assert L.snapshot_dates(D(2025, 1, 1), AS_OF)[-2:] == [D(2025, 9, 30), AS_OF]


def test_leadership_team_structure_and_vacancy_in_working_days(spark):
    posts, cadres = _frames(spark)
    cal = G.calendar_frame(spark, D(2025, 1, 1), AS_OF)
    out = L.fct_unit_leadership(posts, cadres, cal, L.snapshot_dates(D(2025, 1, 1), AS_OF), AS_OF, RULES).toPandas()
    t = out.set_index(["unit_org_id", "snapshot_date"])
    now = t.loc[(34, AS_OF)]
    assert (now.leaders, now.chiefs, now.deputies, now.women, now.minorities) == (3, 0, 3, 1, 1)
    assert now.young_leaders == 1 and not now.lacks_young and not now.lacks_women   # cadre 2 is 35
    assert (now.youngest_age, now.oldest_age, now.avg_age) == (35, 55, round((35 + 55 + 45) / 3, 1))
    assert now.chief_vacant_since == D(2025, 9, 20) and not now.has_chief and now.is_current
    # Sep 20 (Sat) to Sep 30: 22-26, the 调休 Sunday Sep 28, 29, 30 = 8 working days
    q3 = t.loc[(34, D(2025, 9, 30))]
    assert q3.vacancy_workdays == 8 and not q3.vacancy_overdue
    n = len(workdays.workdays_between(D(2025, 9, 20), AS_OF))
    assert now.vacancy_workdays == n and n > RULES.leadership_vacancy_workdays and now.vacancy_overdue
    assert t.loc[(34, D(2025, 6, 30))].has_chief and t.loc[(34, D(2025, 6, 30))].leaders == 5
    # unit 35's 班子 began with a 副职 only: vacant from its first day, and no woman in it
    u35 = t.loc[(35, AS_OF)]
    assert u35.chief_vacant_since == D(2025, 9, 20) and u35.lacks_women and (35, D(2025, 6, 30)) not in t.index
    lenient = L.fct_unit_leadership(posts, cadres, cal, [AS_OF], AS_OF,
                                    RULES.replace(leadership_vacancy_workdays=n)).toPandas()
    assert not lenient[lenient.unit_org_id == 34].vacancy_overdue.iloc[0]


def test_cadre_changes_from_post_to_post(spark):
    posts, _ = _frames(spark)
    ch = L.fct_cadre_change(posts, AS_OF).toPandas()
    got = sorted((r.cadre_id, r.change_date, r.change_type, r.unit_org_id) for r in ch.itertuples())
    assert got == [(1, D(2020, 1, 1), "任职", 34), (1, D(2025, 9, 20), "晋升", 35),
                   (2, D(2022, 1, 1), "任职", 34), (3, D(2021, 1, 1), "任职", 34),
                   (4, D(2019, 1, 1), "任职", 34), (4, D(2024, 1, 1), "晋升", 34),
                   (5, D(2021, 1, 1), "任职", 34), (5, D(2025, 7, 1), "免职", 34)]
    assert set(ch[ch.cadre_id == 1].from_unit_org_id.dropna()) == {34}
    assert L.fct_cadre_change(posts, D(2025, 6, 30)).toPandas().change_type.tolist().count("免职") == 0
