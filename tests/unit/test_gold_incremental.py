"""The incremental 学习问答 fact (what a micro-batch writes) equals a full rebuild, on the real calendar.

A sequence of days over 国庆 2025 and its 调休 days: each day brings that day's answers, and some
days bring late changes to earlier days (an answer inserted late, an answer deleted, an answer moved
to another day, a registration moved earlier). After each day the incremental table (rows before
``from_date`` kept, rows from it recomputed with the streaks carried over) must equal the full
rebuild for that day, column by column.
"""

from __future__ import annotations

import datetime as dt
import random

import pandas as pd
from pyspark.sql import functions as F

from redcloud import workdays
from redcloud.rules import Rules
from spark_jobs.gold import facts as G

D = dt.date
TS = dt.datetime
RULES = Rules.defaults()
META = "is_deleted boolean, deleted_on date"
LO, HI = D(2025, 9, 15), D(2025, 10, 31)
CADRES = range(1, 9)


def _frame(spark, answers: dict[int, tuple[int, D, bool]]):
    rows = [(aid, m, d, dele, None) for aid, (m, d, dele) in sorted(answers.items())]
    return spark.createDataFrame(rows, f"answer_id long, member_id long, answer_date date, {META}")


def _users(spark, reg: dict[int, D]):
    return spark.createDataFrame([(m, TS.combine(d, dt.time(9)), False, None) for m, d in sorted(reg.items())],
                                 f"member_id long, registered_at timestamp, {META}")


def _sorted(df) -> pd.DataFrame:
    return df.toPandas().sort_values(["cadre_id", "work_date"]).reset_index(drop=True)


def test_incremental_learning_daily_equals_full_rebuild_after_late_changes(spark):
    rng = random.Random(7)
    cal = G.calendar_frame(spark, LO, HI)
    links = spark.createDataFrame([(c, 100 + c, "t") for c in CADRES], "cadre_id long, member_id long, link_method string")
    hist = spark.createDataFrame([(100 + c, D(2000, 1, 1), None, "在册", 5) for c in CADRES],
                                 "member_id long, valid_from date, valid_to date, membership_status string, org_id long")
    # cadre 8 is a 科级 (not obligated): its rows exist, its verdicts stay False
    posts = spark.createDataFrame([(c, D(2020, 1, 1), None, "乡科级正职" if c == 8 else "县处级正职", "局长", 5)
                                   for c in CADRES],
                                  "cadre_id long, valid_from date, valid_to date, rank string, position string, unit_org_id long")
    reg = {100 + c: LO + dt.timedelta(days=c) for c in CADRES}
    days = workdays.workdays_between(LO, HI)
    answers: dict[int, tuple[int, D, bool]] = {}
    next_id = iter(range(1, 10_000))

    def answer_day(day: D) -> None:
        # cadres 1-2 answer most days, 3-4 now and then, 5 never, 6-8 often
        p = {1: 0.9, 2: 0.8, 3: 0.4, 4: 0.3, 5: 0.0, 6: 0.7, 7: 0.6, 8: 0.5}
        for c in CADRES:
            if rng.random() < p[c]:
                answers[next(next_id)] = (100 + c, day, False)

    def full(as_of: D):
        return G.fct_learning_daily(links, _users(spark, reg), _frame(spark, answers), hist, posts, cal, as_of, RULES)

    first = days.index(D(2025, 9, 26))
    for d in days[:first + 1]:
        answer_day(d)
    gold = full(days[first]).localCheckpoint()
    late_changes = {
        D(2025, 9, 29): "insert",     # the 调休 Sunday's nightly run: a late answer for 9-22
        D(2025, 10, 9): "delete",     # after 国庆: an answer of 9-30 deleted
        D(2025, 10, 13): "move",      # an answer moved from 10-10 to 10-11 (调休 Saturday)
        D(2025, 10, 20): "register",  # cadre 7's registration corrected 5 days earlier
    }
    # the nightly runs compared here: the late-change days, one quiet day, the last day (the days
    # between are answered too, and their rows recomputed by the next run)
    runs = sorted({*late_changes, D(2025, 10, 16), days[-1]})
    checked = 0
    pending: set[D] = set()
    for day in days[first + 1:]:
        answer_day(day)
        pending.add(day)
        if day not in runs:
            continue
        changed, pending = pending, set()
        kind = late_changes.get(day)
        if kind == "insert":
            answers[next(next_id)] = (105, D(2025, 9, 22), False)
            changed.add(D(2025, 9, 22))
        elif kind == "delete":
            aid = min(a for a, (m, d, x) in answers.items() if d == D(2025, 9, 30) and m == 101)
            answers[aid] = (101, D(2025, 9, 30), True)
            changed.add(D(2025, 9, 30))
        elif kind == "move":
            aid = min(a for a, (m, d, x) in answers.items() if d == D(2025, 10, 10) and not x)
            m = answers[aid][0]
            answers[aid] = (m, D(2025, 10, 11), False)
            changed |= {D(2025, 10, 10), D(2025, 10, 11)}
        elif kind == "register":
            changed |= {reg[107], reg[107] - dt.timedelta(days=5)}
            reg[107] = reg[107] - dt.timedelta(days=5)
        last = gold.agg(F.max("work_date")).first()[0]
        from_date = min(changed | {last + dt.timedelta(days=1)})
        inc = G.fct_learning_daily(links, _users(spark, reg), _frame(spark, answers), hist, posts, cal, day, RULES,
                                   from_date=from_date, prior=gold)
        gold = gold.where(F.col("work_date") < F.lit(from_date)).unionByName(inc).localCheckpoint()
        want, got = _sorted(full(day)), _sorted(gold)
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
        checked += 1
    assert checked == len(runs)
    # the sequence exercised what it claims: escalations carried over a boundary, and a late delete
    final = _sorted(gold)
    assert final.loc[final.cadre_id == 5, "escalation_due"].any()
    assert final.loc[final.cadre_id == 8, "reminder_due"].sum() == 0


def test_a_streak_continues_across_the_boundary(spark):
    """Three misses before ``from_date`` and two after: escalation (5) on the second day after; a
    streak of six before: its escalation day is the prior one's."""
    lo, hi = D(2025, 9, 22), D(2025, 10, 15)
    cal = G.calendar_frame(spark, lo, hi)
    wd = workdays.workdays_between(lo, hi)
    links = spark.createDataFrame([(1, 101, "t"), (2, 102, "t")], "cadre_id long, member_id long, link_method string")
    users = _users(spark, {101: lo, 102: lo})
    hist = spark.createDataFrame([(m, D(2000, 1, 1), None, "在册", 5) for m in (101, 102)],
                                 "member_id long, valid_from date, valid_to date, membership_status string, org_id long")
    posts = spark.createDataFrame([(c, D(2020, 1, 1), None, "县处级正职", "局长", 5) for c in (1, 2)],
                                  "cadre_id long, valid_from date, valid_to date, rank string, position string, unit_org_id long")
    # cadre 1 answers up to wd[2], then misses; cadre 2 never answers
    answers = _frame(spark, {i: (101, d, False) for i, d in enumerate(wd[:3])})
    boundary = wd[6]
    before = G.fct_learning_daily(links, users, answers, hist, posts, cal, wd[5], RULES)
    inc = _sorted(G.fct_learning_daily(links, users, answers, hist, posts, cal, wd[8], RULES, from_date=boundary,
                                       prior=before)).set_index(["cadre_id", "work_date"])
    assert inc.loc[(1, boundary), "miss_streak"] == 4 and inc.loc[(1, boundary), "miss_streak_start"] == wd[3]
    assert inc.loc[(1, wd[7]), "escalated_on"] == wd[7] and not inc.loc[(1, boundary), "escalation_due"]
    assert inc.loc[(2, boundary), "miss_streak"] == 7 and inc.loc[(2, wd[8]), "escalated_on"] == wd[4]


def _records(spark, records: dict[int, tuple[int, D, bool]]):
    rows = [(rid, a, 10 + a, 500 + a, d, 1 + rid % 3, rid % 4 != 0, TS.combine(d, dt.time(8, rid % 60)), dele, None)
            for rid, (a, d, dele) in sorted(records.items())]
    return spark.createDataFrame(rows, "record_id long, assignment_id long, cadre_id long, village_org_id long, "
                                       f"work_date date, photo_count int, signed_in boolean, sign_in_at timestamp, {META}")


def test_incremental_village_work_daily_equals_full_rebuild_after_late_changes(spark):
    """The 驻村 daily fact, the same way: records of each day, late ones, deletes and moves; an
    assignment that starts and one that ends inside the period."""
    rng = random.Random(11)
    cal = G.calendar_frame(spark, LO, HI)
    spans = {1: (LO, None), 2: (LO, None), 3: (D(2025, 10, 9), None), 4: (LO, D(2025, 10, 10))}
    assignments = spark.createDataFrame(
        [(a, 10 + a, 500 + a, "第一书记", lo, hi, False, None) for a, (lo, hi) in spans.items()],
        f"assignment_id long, cadre_id long, village_org_id long, role string, start_date date, end_date date, {META}")
    days = workdays.workdays_between(LO, HI)
    records: dict[int, tuple[int, D, bool]] = {}
    next_id = iter(range(1, 10_000))
    p = {1: 0.9, 2: 0.5, 3: 0.7, 4: 0.3}

    def record_day(day: D) -> None:
        for a in spans:
            if rng.random() < p[a]:
                records[next(next_id)] = (a, day, False)

    def full(as_of: D):
        return G.fct_village_work_daily(assignments, _records(spark, records), cal, as_of, RULES, since=LO)

    first = days.index(D(2025, 9, 26))
    for d in days[:first + 1]:
        record_day(d)
    gold = full(days[first]).localCheckpoint()
    runs = [D(2025, 9, 29), D(2025, 10, 9), D(2025, 10, 13), D(2025, 10, 16), days[-1]]
    pending: set[D] = set()
    checked = 0
    for day in days[first + 1:]:
        record_day(day)
        pending.add(day)
        if day not in runs:
            continue
        changed, pending = pending, set()
        if day == D(2025, 9, 29):      # a late record for 9-22
            records[next(next_id)] = (2, D(2025, 9, 22), False)
            changed.add(D(2025, 9, 22))
        elif day == D(2025, 10, 9):    # a record of 9-30 deleted
            rid = min(r for r, (a, d, x) in records.items() if d == D(2025, 9, 30))
            records[rid] = (records[rid][0], D(2025, 9, 30), True)
            changed.add(D(2025, 9, 30))
        elif day == D(2025, 10, 13):   # a record moved from 10-10 to 10-11 (调休 Saturday)
            rid = min(r for r, (a, d, x) in records.items() if d == D(2025, 10, 10) and not x)
            records[rid] = (records[rid][0], D(2025, 10, 11), False)
            changed |= {D(2025, 10, 10), D(2025, 10, 11)}
        last = gold.agg(F.max("work_date")).first()[0]
        from_date = min(changed | {last + dt.timedelta(days=1)})
        inc = G.fct_village_work_daily(assignments, _records(spark, records), cal, day, RULES, since=LO,
                                       from_date=from_date, prior=gold)
        gold = gold.where(F.col("work_date") < F.lit(from_date)).unionByName(inc).localCheckpoint()
        key = ["assignment_id", "work_date"]
        want = full(day).toPandas().sort_values(key).reset_index(drop=True)
        got = gold.toPandas().sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(got[want.columns], want, check_dtype=False)
        checked += 1
    assert checked == len(runs)
    final = gold.toPandas()
    assert final.reminder_due.any() and final.days_without_record.max() >= RULES.village_reminder_after
    assert final.loc[final.assignment_id == 4, "work_date"].max() == D(2025, 10, 10)
    assert final.loc[final.assignment_id == 3, "work_date"].min() == D(2025, 10, 9)
