"""Silver history and gold facts of the real pipeline on the test city (the shared city lake): checked
for invariants, against an independent pandas recomputation, and against the planted truth."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from helpers import D1, D2, make_ctx
from lakes import copy_lake
from pyspark.sql import functions as F

from redcloud import workdays
from redcloud.rules import vocab

D = dt.date


@pytest.fixture(scope="module")
def city_run(city_lake):
    silver = city_lake.summary["silver"]
    return {"history": silver["history"], "gold": city_lake.summary["gold"], "lake": city_lake.ctx().lake}


_LAKE = {}


@pytest.fixture(autouse=True)
def _the_lake(city_run):
    _LAKE["lake"] = city_run["lake"]


def _pd(spark, layer, name, *cols):
    df = _LAKE["lake"].read(spark, layer, name)
    return (df.select(*cols) if cols else df).toPandas()


def _check_periods(df, key, exactly_one_current):
    df = df.sort_values([key, "valid_from"])
    problems = []
    for k, g in df.groupby(key):
        frm, to = list(g.valid_from), list(g.valid_to)
        for i in range(len(g)):
            if to[i] is not None and not pd.isna(to[i]) and to[i] <= frm[i]:
                problems.append((k, "empty period", frm[i], to[i]))
            if i + 1 < len(g) and (to[i] is None or pd.isna(to[i]) or to[i] > frm[i + 1]):
                problems.append((k, "overlap", frm[i], to[i], frm[i + 1]))
        n_cur = int(g.is_current.sum())
        open_last = to[-1] is None or pd.isna(to[-1])
        if n_cur > 1 or (exactly_one_current and n_cur != 1) or (open_last and n_cur != 1):
            problems.append((k, "current rows", n_cur))
    return problems


def test_history_periods_do_not_overlap_and_have_one_current_row(spark, city_run):
    tables = {r["table"]: r["rows"] for r in city_run["history"]["tables"]}
    assert min(tables.values()) > 0, tables
    orgs = _pd(spark, "silver", "organization_history")
    members = _pd(spark, "silver", "member_status_history")
    posts = _pd(spark, "silver", "cadre_post_history")
    assert _check_periods(orgs, "org_id", True) == []
    assert _check_periods(members, "member_id", True) == []
    assert _check_periods(posts, "cadre_id", False) == []
    # every silver organisation and member has a history; quarantined members have none
    silver_orgs = set(_pd(spark, "silver", "organizations", "org_id").org_id)
    assert set(orgs.org_id) == silver_orgs
    silver_members = set(_pd(spark, "silver", "members", "member_id").member_id)
    quarantined = {int(k) for k in _pd(spark, "quarantine", "members", "record_key").record_key}
    assert quarantined and set(members.member_id) == silver_members and not quarantined & set(members.member_id)
    # the current period agrees with the member table's current status
    cur = members[members.is_current].set_index("member_id").membership_status
    m = _pd(spark, "silver", "members", "member_id", "membership_status").set_index("member_id").membership_status
    agree = (cur.reindex(m.index) == m).mean()
    assert agree > 0.98, agree


def test_late_arriving_status_changes_land_at_their_effective_date(spark, city, city_run):
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    late = {int(k) for k in faults[faults.fault == "late_arriving_update"].record_key}
    changes = _pd(spark, "silver", "member_status_changes")
    hist = _pd(spark, "silver", "member_status_history")
    # members quarantined in silver (e.g. a bad 身份证号) have no history: only the others count
    exits = changes[changes.member_id.isin(late & set(hist.member_id)) & changes.change_type.isin(["转出", "去世"])]
    assert len(exits) > 0
    for r in exits.itertuples():
        p = hist[(hist.member_id == r.member_id) & hist.membership_status.isin(["已转出", "已去世"])]
        assert len(p) == 1 and p.iloc[0].valid_from == r.change_date, (r.member_id, p)
        assert p.iloc[0].recorded_at.date() >= r.change_date + dt.timedelta(days=60)
        before = hist[(hist.member_id == r.member_id) & (hist.valid_to == r.change_date)]
        assert len(before) == 1 and before.iloc[0].membership_status == "在册"


def test_branch_quarter_rates_and_suspicious_signals(spark, city, city_run):
    bq = _pd(spark, "gold", "fct_branch_quarter")
    assert not bq.duplicated(["org_id", "quarter_start"]).any()
    assert bq.sanhui_completion_rate.between(0, 1).all()
    assert (bq.sanhui_held <= bq.sanhui_required).all() and (bq.sanhui_required == 5).all()   # the default rule
    assert bq.mean_attendance_rate.dropna().between(0, 1).all()
    assert (bq.new_activity_types <= bq.activity_types).all()
    assert (bq.meetings_total == bq[["committee_meetings", "general_meetings", "group_meetings", "party_lectures",
                                     "theme_days", "other_meetings"]].sum(axis=1)).all()
    # the month fact carries the same 三会一课 to date: on the quarter's last month, the quarter's figure
    bm = _pd(spark, "gold", "fct_branch_month")
    last = bm[bm.month.map(lambda m: m.month % 3 == 0)].merge(bq, on=["org_id", "quarter_start"])
    assert len(last) > 0.8 * len(bq[bq.quarter_complete])
    assert (last.sanhui_completion_qtd - last.sanhui_completion_rate).abs().max() < 1e-9
    assert bq.groupby("org_id").size().eq(12).all()                    # 2023Q1 .. 2025Q4
    assert bq[bq.quarter_complete].sanhui_completion_rate.mean() > 0.6
    truth = pd.read_parquet(city / "truth" / "branches.parquet")
    bq = bq.merge(truth[["org_id", "fabricates"]], on="org_id")
    per = bq.groupby("fabricates").suspicious_meetings.mean()
    assert truth.fabricates.any() and per[True] > 2 * per[False], per


def test_meeting_signals_flag_the_planted_fabrications(spark, city, city_run):
    ms = _pd(spark, "gold", "fct_meeting_signals")
    fab = pd.read_parquet(city / "truth" / "fabricated_meetings.parquet")
    ms = ms.merge(fab, on="meeting_id", how="left")
    planted = ms[ms.reasons.notna()]
    assert len(planted) == len(fab)
    hol = planted[planted.reasons.str.contains("holiday")]
    assert len(hol) > 0 and hol.is_non_working_day.all()
    imp = planted[planted.reasons.str.contains("impossible_count")]
    assert len(imp) > 0 and imp.declared_exceeds_members.all()
    ident = planted[planted.reasons.str.contains("identical_attendance")]
    assert ident.identical_attendance.mean() >= 0.8
    honest = ms[ms.reasons.isna()]
    assert not honest.is_non_working_day.any()        # real meetings are held on working days (incl. 调休)
    assert honest.is_suspicious.mean() < 0.1 and planted.is_suspicious.mean() > 0.8


def _learning_expectation(answer_dates: set, start: dt.date, end: dt.date):
    days = workdays.workdays_between(start, end)
    streak, rows = 0, []
    for d in days:
        done = d in answer_dates
        streak = 0 if done else streak + 1
        rows.append((d, done, streak))
    return rows


def test_learning_daily_streaks_equal_a_pandas_recomputation(spark, city_run):
    daily = _LAKE["lake"].read(spark, "gold", "fct_learning_daily")
    hist = _pd(spark, "silver", "member_status_history")
    single = hist.groupby("member_id").filter(lambda g: len(g) <= 2 and (g.membership_status == "在册").all())
    go_live = _pd(spark, "silver", "learning_answers", "answer_date").answer_date.min()
    stats = daily.groupBy("cadre_id", "member_id").agg(F.max("miss_streak").alias("mx")).toPandas()
    stats = stats[stats.member_id.isin(set(single.member_id))].sort_values("cadre_id")
    # a few cadres, including the streakiest one
    pick = list(stats.cadre_id[:4]) + [int(stats.sort_values("mx").cadre_id.iloc[-1])]
    assert stats.mx.max() >= 5
    got = daily.where(F.col("cadre_id").isin(pick)).toPandas()
    members = dict(zip(stats.cadre_id, stats.member_id))
    users = _pd(spark, "silver", "app_users", "member_id", "registered_at").set_index("member_id").registered_at
    ans = _pd(spark, "silver", "learning_answers", "member_id", "answer_date")
    cy = _pd(spark, "gold", "fct_cadre_year").set_index(["cadre_id", "year"])
    for c in pick:
        m = members[c]
        start = max(users[m].date(), go_live)
        exp = _learning_expectation(set(ans[ans.member_id == m].answer_date), start, D2)
        g = got[got.cadre_id == c].sort_values("work_date")
        assert list(zip(g.work_date, g.answered, g.miss_streak)) == exp, c
        y = [r for r in exp if r[0].year == 2025]
        row = cy.loc[(c, 2025)]
        assert row.learning_days_required == len(workdays.workdays_between(max(D(2025, 1, 1), start), D2))
        assert row.learning_days_answered == sum(r[1] for r in y)
        s, best = 0, 0
        for r in y:
            s = 0 if r[1] else s + 1
            best = max(best, s)
        assert row.learning_longest_miss_streak == best


def test_cadre_year_carries_the_grade_label_and_no_empty_column(spark, city_run):
    cy = _pd(spark, "gold", "fct_cadre_year")
    assert not cy.duplicated(["cadre_id", "year"]).any()
    grades = _pd(spark, "silver", "cadre_assessments", "cadre_id", "assess_year", "grade")
    merged = grades.merge(cy, left_on=["cadre_id", "assess_year"], right_on=["cadre_id", "year"], how="left")
    assert (merged.grade == merged.assessment_grade).all()
    # the app recorded meetings from 2023 on: earlier years are unknown, later ones counted (0 when none)
    assert cy[cy.year < 2023].meetings_expected.isna().all() and (cy.year < 2023).any()
    assert cy[(cy.year >= 2023) & cy.member_id.notna()].meetings_expected.notna().all()
    linked = cy[cy.member_id.notna() & (cy.year == 2025)]
    assert len(linked) > 0.8 * cy[cy.year == 2025].cadre_id.nunique()
    assert linked.meetings_expected.gt(0).mean() > 0.9 and linked.learning_days_required.gt(0).mean() > 0.9
    assert not [c for c in cy.columns if cy[c].isna().all()], "fct_cadre_year has an all-NULL column"


def test_cadre_year_ironcage_inputs_equal_a_pandas_recount_from_silver(spark, city_run):
    """四位一体 绩 and 数据铁笼 inputs: recounted here from silver through the identity links."""
    cy = _pd(spark, "gold", "fct_cadre_year").set_index(["cadre_id", "year"])
    pl = _pd(spark, "silver", "person_links", "source", "source_key", "person_key", "status")
    persons = _pd(spark, "silver", "persons", "person_key", "cadre_id").dropna()
    keys = (pl[(pl.source == "ironcage") & (pl.status == "linked")].merge(persons, on="person_key")
            .rename(columns={"source_key": "identity_key"})[["identity_key", "cadre_id"]])
    du = _pd(spark, "silver", "duty_records", "identity_key", "duty_month", "target_count", "completed_count",
             "review_score", "is_deleted")
    du = du[~du.is_deleted.fillna(False)].merge(keys, on="identity_key")
    du["year"] = pd.to_datetime(du.duty_month).dt.year
    exp = du.groupby(["cadre_id", "year"]).agg(t=("target_count", "sum"), c=("completed_count", "sum"),
                                               s=("review_score", "mean"))
    po = _pd(spark, "silver", "power_operations", "identity_key", "received_at", "deadline", "completed_at", "is_deleted")
    po = po[~po.is_deleted.fillna(False)].merge(keys, on="identity_key")
    end = pd.Timestamp(D2 + dt.timedelta(days=1))
    done = po.completed_at.notna() & (po.completed_at < end)
    po["late"] = (done & (po.completed_at > po.deadline)) | (~done & (po.deadline < end))
    po["year"] = po.received_at.dt.year
    ops = po.groupby(["cadre_id", "year"]).agg(n=("late", "size"), late=("late", "sum"))
    assert len(exp) > 20 and len(ops) > 20
    # cadre-years with a post or a grade have a row; every row with duty records is recounted here
    exp = exp.loc[exp.index.intersection(cy.index)]
    assert set(cy[cy.duty_targets.notna()].index) == set(exp.index) and len(exp) > 20
    got = cy.reindex(exp.index)
    assert got.duty_targets.tolist() == exp.t.tolist() and got.duty_completed.tolist() == exp.c.tolist()
    assert got.duty_target_completion_rate.round(9).tolist() == (exp.c / exp.t).round(9).tolist()
    assert got.duty_review_score.round(6).tolist() == exp.s.round(6).tolist()
    got = cy.reindex(ops.index).dropna(subset=["ironcage_items_handled"])
    assert len(got) > 0.9 * len(ops)   # cadre-years without a post or grade have no row
    ops = ops.loc[got.index]
    assert got.ironcage_items_handled.tolist() == ops.n.tolist()
    assert got.ironcage_overdue_items.tolist() == ops.late.tolist()


def test_village_work_and_project_status(spark, city_run):
    vw = _pd(spark, "gold", "fct_village_work_daily")
    assert not vw.duplicated(["assignment_id", "work_date"]).any()
    wd = set(workdays.workdays_between(vw.work_date.min(), D2))
    assert set(vw.work_date) <= wd
    va = _pd(spark, "silver", "village_assignments").set_index("assignment_id")
    lo = vw.groupby("assignment_id").work_date.agg(["min", "max"])
    assert (lo["min"] >= va.start_date.reindex(lo.index)).all()
    end = va.end_date.reindex(lo.index).fillna(D2)
    assert (lo["max"] <= end).all()
    rec = _pd(spark, "silver", "village_work_records", "assignment_id", "work_date")
    rec = rec[rec.work_date.isin(wd)]
    assert int(vw.record_count.sum()) == len(rec.merge(vw[["assignment_id", "work_date"]]))
    assert vw.has_record.mean() > 0.3 and (vw.days_without_record[vw.has_record] == 0).all()
    ps = _pd(spark, "gold", "fct_project_status")
    assert len(ps) > 0 and set(ps.status) <= set(vocab.PROJECT_STATES)
    # the app stores 进行中/已完成/已逾期 as of the city's last day (our logical date); gold refines it with
    # the rules: 督办预警 is an open project near its deadline, 逾期注销 one long past it
    refine = {vocab.IN_PROGRESS: vocab.IN_PROGRESS, vocab.DEADLINE_WARNING: vocab.IN_PROGRESS,
              vocab.OVERDUE: vocab.OVERDUE, vocab.EXPIRED: vocab.OVERDUE, vocab.COMPLETED: vocab.COMPLETED}
    assert (ps.status.map(refine) == ps.source_status).all()
    open_ = ps.status.isin([vocab.OVERDUE, vocab.EXPIRED])
    assert (ps.overdue_days[open_] > 0).all() and (ps.overdue_days[~open_] == 0).all()
    assert (ps.deadline_warning == (ps.status == vocab.DEADLINE_WARNING)).all() and ps.deadline_warning.any()
    life = _pd(spark, "gold", "fct_project_lifecycle")
    cur = life[life.valid_to.isna()].set_index("project_id").state
    assert (cur.reindex(ps.project_id).to_numpy() == ps.status.to_numpy()).all()


def test_history_rerun_is_identical_and_a_backfill_leaves_no_residue(spark, city_lake, tmp_path):
    from redcloud.stages import history

    ctx2 = make_ctx(copy_lake(city_lake, tmp_path), D2, spark)
    ctx1 = make_ctx(ctx2.settings, D1, spark)
    lake = ctx2.lake

    def content(name):
        df = lake.read(spark, "silver", name)
        return sorted(repr(tuple(r)) for r in df.select(*sorted(df.columns)).collect())

    before = {t: content(t) for t in history.TABLES}
    history.run(ctx2)
    assert {t: content(t) for t in history.TABLES} == before
    history.run(ctx1)
    for t in history.TABLES:
        df = lake.read(spark, "silver", t)
        assert df.count() > 0 and df.where(F.col("valid_from") > F.lit(D1)).count() == 0, t
    history.run(ctx2)
    assert {t: content(t) for t in history.TABLES} == before


def test_a_partial_rebuild_writes_and_gates_only_the_named_tables(spark, city_lake, tmp_path):
    """``redcloud run gold --gold-tables ...`` (the daily DAG's ``gold_tables`` param): only the named
    tables are rebuilt and validated; the others keep their Delta versions; a wrong name stops the
    stage before any work."""
    from redcloud import pipeline
    from redcloud.context import RunContext
    from redcloud.stages import gold

    assert [r["table"] for r in city_lake.summary["gold"]["tables"]] == [f"gold/{t}" for t in gold.TABLES]
    s = copy_lake(city_lake, tmp_path)
    ctx = RunContext.create(D2, s, run_id="partial", spark=spark, gold_tables=["fct_project_status"])
    before = {t: ctx.lake.version("gold", t) for t in gold.TABLES}
    result = pipeline.run_stage(ctx, "gold")
    assert [r["table"] for r in result["tables"]] == ["gold/fct_project_status"]
    assert result["quality"]["suites"] == 1
    assert {t for t in gold.TABLES if ctx.lake.version("gold", t) != before[t]} <= {"fct_project_status"}
    after = {t: ctx.lake.version("gold", t) for t in gold.TABLES}
    wrong = RunContext.create(D2, s, run_id="wrong", spark=spark, gold_tables=["fct_project_statuz"])
    with pytest.raises(ValueError, match="unknown gold table.*fct_project_statuz"):
        pipeline.run_stage(wrong, "gold")
    assert {t: ctx.lake.version("gold", t) for t in gold.TABLES} == after
