"""SCD2 history in silver: hand-built cases for the tricky logic (late changes, tombstones, overlaps)."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from spark_jobs.silver import history as H

D = dt.date
TS = dt.datetime

META = "is_deleted boolean, deleted_on date"
S_MEMBERS = f"member_id long, join_date date, full_member_date date, party_status string, org_id long, {META}"
S_CHANGES = (f"change_id long, member_id long, change_type string, change_date date, from_org_id long, "
             f"to_org_id long, updated_at timestamp, {META}")
S_POSTS = (f"post_id long, cadre_id long, unit_org_id long, position string, rank string, start_date date, "
           f"end_date date, {META}")
S_CADRES = f"cadre_id long, id_number_pseudonym string, {META}"


def _alive(rows):
    return [tuple(r) + (False, None) for r in rows]


# ---------------------------------------------------------------------------------------------
# unit: SCD2
# ---------------------------------------------------------------------------------------------

def test_organization_history_collapses_versions_and_closes_on_tombstone(spark):
    cols = ("org_id long, org_code string, org_name string, parent_org_id long, org_level string, org_type string, "
            "region_code string, established_date date, updated_at timestamp, _op string, _logical_date date")
    br = "党支部"

    def v(org, name, parent, upd, ld, level=br, region="520102", op="U", est=None):
        return (org, f"GY{org}", name, parent, level, "机关", region, est or D(2015, 3, 1), upd, op, ld)

    rows = [
        v(1, "A支部", 10, TS(2020, 1, 5, 9), D(2020, 1, 5)),
        v(1, "A支部", 10, TS(2020, 1, 5, 9), D(2020, 1, 6)),             # same version re-extracted
        v(1, "A支部", 10, TS(2021, 2, 1, 9), D(2021, 2, 1), region="520103"),  # untracked change only
        v(1, "B支部", 10, TS(2022, 6, 15, 10), D(2022, 6, 15)),
        v(1, "C支部", 10, TS(2022, 6, 15, 16), D(2022, 6, 16)),         # same day: the later version wins
        v(1, "C支部", 11, TS(2023, 3, 1, 9), D(2023, 3, 1)),
        v(1, "C支部", 11, TS(2023, 5, 1, 9), D(2023, 5, 1)),            # identical to the previous: collapses
        (1, None, None, None, None, None, None, None, None, "D", D(2024, 1, 10)),  # deleted in the source
        v(2, "X支部", 10, TS(2019, 2, 1, 9), D(2019, 2, 1), est=D(2019, 1, 1)),
        v(2, "X支部", 10, TS(2020, 1, 1, 9), D(2020, 1, 1), level="未知"),  # breaks a silver rule: ignored
        v(2, "Y支部", 10, TS(2021, 1, 1, 9), D(2021, 1, 1)),
        v(2, "Z支部", 10, TS(2025, 2, 1, 9), D(2025, 2, 1)),            # loaded after the as-of date
    ]
    out = H.organization_history(spark.createDataFrame(rows, cols), D(2025, 1, 1)).toPandas()
    o1 = out[out.org_id == 1].sort_values("valid_from")
    assert list(zip(o1.valid_from, o1.valid_to, o1.org_name, o1.parent_org_id)) == [
        (D(2015, 3, 1), D(2022, 6, 15), "A支部", 10),
        (D(2022, 6, 15), D(2023, 3, 1), "C支部", 10),
        (D(2023, 3, 1), D(2024, 1, 10), "C支部", 11),
    ]
    assert not o1.is_current.any()
    o2 = out[out.org_id == 2].sort_values("valid_from")
    assert list(zip(o2.valid_from, o2.valid_to, o2.org_name)) == [
        (D(2019, 1, 1), D(2021, 1, 1), "X支部"), (D(2021, 1, 1), None, "Y支部")]
    assert list(o2.is_current) == [False, True]


def test_member_status_history_places_late_changes_at_their_effective_date(spark):
    members = spark.createDataFrame(_alive([
        (1, D(2010, 5, 1), D(2011, 5, 1), "正式党员", 50),
        (2, D(2024, 3, 1), None, "预备党员", 51),
        (3, D(2000, 7, 1), D(2001, 7, 1), "正式党员", 52),
    ]) + [(5, D(2001, 1, 1), D(2002, 1, 1), "正式党员", 50, True, D(2025, 1, 1))], S_MEMBERS)
    changes = spark.createDataFrame(_alive([
        # a death on 2025-03-10 recorded only on 2025-06-20 (late-arriving update)
        (11, 1, "去世", D(2025, 3, 10), 50, None, TS(2025, 6, 20, 10)),
        (12, 2, "入党", D(2024, 3, 1), None, 51, TS(2024, 3, 1, 10)),
        (13, 3, "转入", D(2023, 6, 1), None, 52, TS(2023, 6, 1, 10)),
        (14, 3, "流动", D(2024, 2, 1), 52, 52, TS(2024, 2, 1, 10)),
        (15, 4, "转出", D(2024, 1, 1), 50, None, TS(2024, 1, 1, 10)),   # member 4 is quarantined
        (16, 2, "转正", D(2025, 3, 1), None, 51, TS(2025, 3, 1, 10)),
        (17, 5, "去世", D(2024, 5, 1), 50, None, TS(2024, 5, 1, 10)),   # member 5 deleted in silver
    ]), S_CHANGES)
    out = H.member_status_history(changes, members, D(2025, 7, 1)).toPandas().sort_values(["member_id", "valid_from"])
    assert set(out.member_id) == {1, 2, 3}
    got = lambda m: [(r.valid_from, r.valid_to, r.membership_status, r.party_status, r.is_mobile,  # noqa: E731
                      None if pd.isna(r.org_id) else int(r.org_id), r.is_current)
                     for r in out[out.member_id == m].itertuples()]
    assert got(1) == [
        (D(2010, 5, 1), D(2011, 5, 1), "在册", "预备党员", False, 50, False),
        (D(2011, 5, 1), D(2025, 3, 10), "在册", "正式党员", False, 50, False),
        (D(2025, 3, 10), None, "已去世", "正式党员", False, 50, True),
    ]
    assert (out.is_on_roll == (out.membership_status == "在册")).all()   # 在册 is decided here, once
    death = out[(out.member_id == 1) & (out.membership_status == "已去世")].iloc[0]
    assert death.recorded_at == pd.Timestamp(2025, 6, 20, 10) and death.opened_by_change_id == 11
    assert got(2) == [(D(2024, 3, 1), D(2025, 3, 1), "在册", "预备党员", False, 51, False),
                      (D(2025, 3, 1), None, "在册", "正式党员", False, 51, True)]
    assert got(3) == [
        (D(2000, 7, 1), D(2001, 7, 1), "在册", "预备党员", False, None, False),   # before 转入: outside the city
        (D(2001, 7, 1), D(2023, 6, 1), "在册", "正式党员", False, None, False),
        (D(2023, 6, 1), D(2024, 2, 1), "在册", "正式党员", False, 52, False),
        (D(2024, 2, 1), None, "在册", "正式党员", True, 52, True),
    ]
    # as of a date before the death took effect, the member is still on the roll
    early = H.member_status_history(changes, members, D(2025, 3, 9)).where("member_id = 1 and is_current").first()
    assert early.membership_status == "在册" and early.valid_to is None


def test_cadre_post_history_validity_windows(spark):
    posts = spark.createDataFrame(_alive([
        (1, 1, 34, "科长", "乡科级正职", D(2015, 1, 1), D(2018, 6, 30)),
        (2, 1, 34, "局长", "县处级正职", D(2018, 7, 1), None),
        (3, 2, 35, "科长", "乡科级正职", D(2016, 1, 1), D(2020, 12, 31)),
        (4, 2, 35, "副局长", "县处级副职", D(2020, 6, 1), D(2022, 1, 31)),   # overlaps post 3
        (5, 3, 36, "科长", "乡科级正职", D(2026, 1, 1), None),                 # starts after as-of
    ]), S_POSTS)
    cadres = spark.createDataFrame(_alive([(1, "p1"), (2, "p2"), (3, "p3")]), S_CADRES)
    out = H.cadre_post_history(posts, cadres, D(2025, 12, 31)).toPandas().sort_values(["cadre_id", "valid_from"])
    rows = [(r.cadre_id, r.post_id, r.valid_from, r.valid_to, r.is_current, r.overlap_trimmed, r.rank)
            for r in out.itertuples()]
    assert rows == [
        (1, 1, D(2015, 1, 1), D(2018, 7, 1), False, False, "乡科级正职"),
        (1, 2, D(2018, 7, 1), None, True, False, "县处级正职"),
        (2, 3, D(2016, 1, 1), D(2020, 6, 1), False, True, "乡科级正职"),
        (2, 4, D(2020, 6, 1), D(2022, 2, 1), False, False, "县处级副职"),
    ]
