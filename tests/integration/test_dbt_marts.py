"""dbt marts on dbt-spark, for real: ``dbt build`` (models, data tests, unit tests) on the test city.

The city lake's marts stage built every mart (the model-output marts over the real model scores).
Headline numbers are recomputed straight from silver with pandas. On a copy, the incremental marts
are rebuilt for the same date (nothing changes) and for an earlier date (only its partition changes).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from deltalake import DeltaTable
from helpers import D2, make_ctx, settings_for
from lakes import copy_lake

from redcloud import marts

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]  # three dbt builds on Spark

INCREMENTAL = {  # mart -> its partition column
    "mart_member_composition": "as_of_date",
    "mart_org_life_monthly": "month",
    "mart_learning_compliance": "month",
    "mart_village_work": "month",
}
BACKFILL_DAY = dt.date(2025, 11, 30)


def _local(ts: pd.Series) -> pd.Series:
    """Timestamps as the city's local time (Delta stores them in UTC)."""
    ts = pd.to_datetime(ts)
    return ts.dt.tz_convert("Asia/Shanghai") if ts.dt.tz is not None else ts


def _read(root: Path, layer: str, name: str) -> pd.DataFrame:
    return DeltaTable(str(root / layer / name)).to_pandas()


def _content(root: Path, name: str) -> pd.DataFrame:
    df = _read(root, "marts", name)
    df = df[sorted(df.columns)]
    # compare as text: arrays/NaN become comparable, order fixed
    return df.astype(str).sort_values(list(df.columns)).reset_index(drop=True)


@pytest.fixture(scope="module")
def lake(city_lake) -> Path:
    return city_lake.root


@pytest.fixture(scope="module")
def first_build(city_lake):
    return city_lake.summary["marts"]


def test_build_is_green_with_tests_and_unit_tests(first_build, lake):
    built = {t["table"]: t["rows"] for t in first_build["tables"]}
    assert set(built) == {f"marts/{m}" for m in marts.MARTS}, built
    assert all(n > 0 for n in built.values()), built
    assert first_build["skipped"] == {}
    dbt = first_build["dbt"]
    assert dbt["model"] == {"success": len([p for p in (ROOT / "dbt_project" / "models").rglob("*.sql")])}, dbt
    assert dbt["unit_test"].get("pass", 0) >= 4 and set(dbt["unit_test"]) == {"pass"}, dbt
    assert dbt["test"].get("pass", 0) >= 40 and set(dbt["test"]) == {"pass"}, dbt
    assert "seed" not in dbt   # the calendar is gold's (official working days), not a seed
    for m in marts.MARTS:  # Delta tables at <lake_root>/marts/<model>
        assert (lake / "marts" / m / "_delta_log").is_dir()


def test_skips_marts_whose_gold_table_is_missing(city_lake, tmp_path):
    """Model-output marts without their score table, and the marts of a gold fact a young lake has no
    event for yet (e.g. no 党务公开 in a 3-month history), are skipped with what builds on them."""
    assert marts.plan(city_lake.settings) == dict(build=list(marts.MODEL_OUTPUT_MARTS), skip={}, exclude=[])
    empty = marts.plan(settings_for(tmp_path, city_lake.settings))
    optional = {m for _, on_it in marts.OPTIONAL_GOLD.values() for m in on_it}
    assert empty["build"] == [] and set(empty["skip"]) == set(marts.MODEL_OUTPUT_MARTS) | optional
    assert "stg_party_disclosures+" in empty["exclude"] and "stg_score_member_vitality" in empty["exclude"]


def _subtree(orgs: pd.DataFrame, root_id: int) -> set[int]:
    children = orgs.groupby("parent_org_id")["org_id"].apply(list).to_dict()
    out, todo = set(), [root_id]
    while todo:
        o = todo.pop()
        out.add(o)
        todo += children.get(o, [])
    return out


def test_county_members_by_org_type_match_silver(first_build, lake):
    orgs = _read(lake, "silver", "organizations")
    orgs = orgs[~orgs.is_deleted.fillna(False)]
    mem = _read(lake, "silver", "members")
    mem = mem[~mem.is_deleted.fillna(False) & (mem.membership_status == "在册")]
    counties = orgs[orgs.org_level == "区县委"].org_id.tolist()
    county = max(counties, key=lambda c: mem.org_id.isin(_subtree(orgs, c)).sum())
    sub = mem[mem.org_id.isin(_subtree(orgs, county))].merge(orgs[["org_id", "org_type"]], on="org_id")
    expected = sub.groupby("org_type").size().to_dict()
    comp = _read(lake, "marts", "mart_member_composition")
    got = comp[(comp.as_of_date == D2) & (comp.org_id == county) & (comp.category == "org_type")]
    assert dict(zip(got.category_value, got.members)) == expected
    total = comp[(comp.as_of_date == D2) & (comp.org_id == county) & (comp.category == "total")]
    assert total.members.tolist() == [len(sub)] and len(sub) > 50


def test_branch_meeting_completion_matches_silver(first_build, lake, city_lake):
    """三会一课 completion of the quarter so far, from silver meetings and the configured requirement."""
    required = city_lake.settings.rules.sanhui_required
    total = sum(required.values())
    mt = _read(lake, "silver", "meetings")
    mt = mt[~mt.is_deleted.fillna(False)]
    q_start, q_end = dt.date(2025, 10, 1), D2
    q = mt[(mt.meeting_date >= q_start) & (mt.meeting_date <= q_end)]
    counts = q.pivot_table(index="org_id", columns="meeting_type", values="meeting_id", aggfunc="count").fillna(0)
    held = sum(counts.get(kind, 0).clip(upper=n) for kind, n in required.items() if n)
    life = _read(lake, "marts", "mart_org_life_monthly")
    dec = life[life.month == dt.date(2025, 12, 1)].set_index("org_id")
    branch = held.index[held.argmax()]  # a branch with the most complete quarter, and every other branch too
    assert dec.loc[branch, "sanhui_completion_qtd"] == pytest.approx(held[branch] / total)
    both = dec.join((held / total).rename("expected"), how="left").fillna({"expected": 0.0})
    assert len(both) > 20
    assert (both.sanhui_completion_qtd.astype(float) - both.expected).abs().max() < 1e-6  # decimal(…, 6) in the mart


def test_department_overdue_rate_matches_silver(first_build, lake):
    po = _read(lake, "silver", "power_operations")
    if "is_deleted" in po:
        po = po[~po.is_deleted.fillna(False)]
    eod = pd.Timestamp(D2 + dt.timedelta(days=1), tz="Asia/Shanghai")
    po = po[po.received_at < eod]
    done = po.completed_at.notna() & (po.completed_at < eod)
    overdue = (done & (po.completed_at > po.deadline)) | (~done & (po.deadline < eod))
    dept = po.dept_code.value_counts().index[0]
    expected = overdue[po.dept_code == dept].mean()
    pom = _read(lake, "marts", "mart_power_operation_monthly")
    d = pom[pom.dept_code == dept]
    assert d.operations.sum() == (po.dept_code == dept).sum()
    assert d.overdue.sum() / d.operations.sum() == pytest.approx(expected)
    assert 0 < expected < 1


def test_duty_targets_month_matches_silver_and_the_planted_missing_records(first_build, lake, city):
    """四位一体: November's target tasks and completions, recounted from silver 记实 through the identity
    links; the 记实 reported missing are exactly the planted ones of cadres in the system."""
    pl = _read(lake, "silver", "person_links")
    persons = _read(lake, "silver", "persons")[["person_key", "cadre_id"]].dropna()
    keys = (pl[(pl.source == "ironcage") & (pl.status == "linked")].merge(persons, on="person_key")
            [["source_key", "cadre_id"]].rename(columns={"source_key": "identity_key"}))
    du = _read(lake, "silver", "duty_records")
    du = du[~du.is_deleted.fillna(False)].merge(keys, on="identity_key")
    month = dt.date(2025, 11, 1)
    posts = _read(lake, "silver", "cadre_post_history")
    held = posts[(posts.valid_from <= dt.date(2025, 11, 30)) & (posts.valid_to.isna() | (posts.valid_to > month))]
    nov = du[(pd.to_datetime(du.duty_month).dt.date == month) & du.cadre_id.isin(held.cadre_id)]
    mart = _read(lake, "marts", "mart_duty_targets_monthly")
    m = mart[mart.month == month]
    assert len(m) > 3 and m.targets.sum() == nov.target_count.sum() and m.completed.sum() == nov.completed_count.sum()
    assert m.records_filed.sum() == nov.cadre_id.nunique()
    # the planted missing 记实 (Sep-Nov) of cadres holding a post with earlier records are all due by D2
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    planted = [k.split("|") for k in faults[faults.fault == "missing_duty_record"].record_key]
    first = pd.to_datetime(du.duty_month).dt.date.groupby(du.cadre_id).min()
    expected = 0
    for cid, mon in planted:
        cid, mon = int(cid), dt.date.fromisoformat(mon)
        end = (pd.Timestamp(mon) + pd.offsets.MonthEnd(0)).date()
        post = posts[(posts.cadre_id == cid) & (posts.valid_from <= end) & (posts.valid_to.isna() | (posts.valid_to > mon))]
        expected += int(len(post) > 0 and cid in first.index and first[cid] < mon)
    assert len(planted) > 0 and expected > 0
    assert mart[mart.month.between(dt.date(2025, 9, 1), month)].records_missing.sum() == expected
    assert mart[mart.month < dt.date(2025, 9, 1)].records_missing.sum() == 0


def test_leadership_team_ages_and_planted_vacancies_match_silver(first_build, lake, city):
    """领导班子 on the logical date, recomputed from silver posts and cadres: each 班子's size and mean
    age; the planted 正职 vacancies older than the configured working days are the overdue ones."""
    from redcloud import workdays
    from redcloud.rules import Rules

    rules = Rules.defaults()
    posts = _read(lake, "silver", "cadre_post_history")
    cadres = _read(lake, "silver", "cadres")[["cadre_id", "birth_date"]]
    on = posts[posts["rank"].isin(["县处级正职", "县处级副职", "乡科级正职", "乡科级副职"])
               & (posts.valid_from <= D2) & (posts.valid_to.isna() | (posts.valid_to > D2))].merge(cadres, on="cadre_id")
    on["age"] = [(D2.year - b.year) - ((D2.month, D2.day) < (b.month, b.day)) for b in on.birth_date]
    exp = on.groupby("unit_org_id").agg(leaders=("cadre_id", "size"), avg_age=("age", "mean"))
    m = _read(lake, "marts", "mart_leadership_teams")
    cur = m[m.is_current].set_index("unit_org_id")
    assert len(exp) > 10 and (cur.snapshot_date == D2).all()
    assert cur.leaders.reindex(exp.index).tolist() == exp.leaders.tolist()
    assert (cur.avg_age.reindex(exp.index) - exp.avg_age).abs().max() <= 0.05 + 1e-9   # rounded to 0.1 in gold
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    planted = faults[faults.fault == "leadership_vacancy"]
    assert len(planted) > 0
    left = {int(r.record_key): dt.date.fromisoformat(r.detail.split("left on ")[1][:10]) for r in planted.itertuples()}
    overdue = {u for u, d in left.items() if len(workdays.workdays_between(d, D2)) > rules.leadership_vacancy_workdays}
    assert set(cur[cur.vacancy_overdue].index) == overdue and overdue
    for u, d in left.items():
        assert cur.loc[u].chief_vacant_since == d and not cur.loc[u].has_chief
    ch = _read(lake, "marts", "mart_cadre_changes")
    assert set(ch.change_type) >= {"任职", "晋升", "免职"}
    q4 = ch[(ch.quarter == dt.date(2025, 10, 1)) & (ch.change_type == "免职")].changes.sum()
    assert q4 >= sum(d >= dt.date(2025, 10, 1) for d in left.values())


def test_disclosure_timeliness_matches_a_pandas_recount_from_silver(first_build, lake, city):
    """党务公开: the branch with the most items, recounted from silver with the 时限 counted on the official
    calendar here; the planted never-published items past their 时限 are exactly the 逾期未公开 ones."""
    from redcloud import workdays
    from redcloud.rules import Rules

    rules = Rules.defaults()
    items = _read(lake, "silver", "party_disclosures")
    items = items[~items.is_deleted.fillna(False) & (items.event_date <= D2)]
    cal = workdays.workdays_between(items.event_date.min(), dt.date(2026, 6, 30))

    def due(ev):
        return [d for d in cal if d > ev][rules.disclosure_due_workdays - 1]

    items["due"] = items.event_date.map(due)
    pub = _local(items.published_at).dt.date
    items["pub"] = [p if p is not None and not pd.isna(p) and p <= D2 else None for p in pub]
    on_time = items.pub.notna() & (items.pub <= items.due)
    overdue = items.pub.isna() & (items.due < D2)
    pending = items.pub.isna() & (items.due >= D2)
    org = items.org_id.value_counts().index[0]
    mine = items.org_id == org
    mart = _read(lake, "marts", "mart_disclosure_timeliness")
    m = mart[mart.org_id == org]
    assert m["items"].sum() == mine.sum() and m.on_time.sum() == (on_time & mine).sum()
    assert m.overdue_unpublished.sum() == (overdue & mine).sum() and m.pending.sum() == (pending & mine).sum()
    rate = (on_time & mine).sum() / (mine.sum() - (pending & mine).sum())
    assert m.on_time.sum() / (m["items"].sum() - m.pending.sum()) == pytest.approx(rate) and 0 < rate < 1
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    never = {int(k) for k in faults[faults.fault == "unpublished_disclosure"].record_key}
    late_now = set(items[overdue].disclosure_id)
    due_by_id = items.set_index("disclosure_id").due
    assert late_now and late_now >= {i for i in never if due_by_id.get(i, D2) < D2}   # and late ones not in yet
    assert mart.overdue_unpublished.sum() == len(late_now)


def test_project_funding_by_channel_matches_silver_and_bare_projects_are_flagged(first_build, lake, city):
    """帮扶措施: the money by channel recounted from silver; the planted projects without measures that
    are still open past their due working day are among those flagged, and nothing else is."""
    projects = _read(lake, "silver", "poverty_projects")
    projects = projects[~projects.is_deleted.fillna(False) & (projects.start_date <= D2)]
    ms = _read(lake, "silver", "project_measures")
    ms = ms[~ms.is_deleted.fillna(False) & (ms.start_date <= D2) & ms.project_id.isin(projects.project_id)]
    mart = _read(lake, "marts", "mart_project_support")
    gov = ms[ms.funding_channel == "政府帮扶"].amount_yuan.sum()
    soc = ms[ms.funding_channel == "社会帮扶"].amount_yuan.sum()
    assert mart.government_yuan.sum() == pytest.approx(gov, abs=1) and mart.social_yuan.sum() == pytest.approx(soc, abs=1)
    assert 0.55 < gov / (gov + soc) < 0.85                      # 政府帮扶为主，社会帮扶为辅
    assert mart.projects.sum() == len(projects) and mart.measures.sum() == len(ms)
    sup = _read(lake, "gold", "fct_project_support")
    flagged = set(sup[sup.measures_missing].project_id)
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    bare = {int(k) for k in faults[faults.fault == "project_without_measures"].record_key}
    assert flagged and flagged <= bare | set(projects.project_id[~projects.project_id.isin(ms.project_id)])
    st = sup.set_index("project_id")
    due_open = {p for p in bare if p in st.index and st.loc[p].status in ("进行中", "督办预警", "已逾期")
                and st.loc[p].measure_due_date is not None and st.loc[p].measure_due_date < D2}
    assert due_open and due_open <= flagged
    assert mart.projects_missing_measures.sum() == len(flagged)


def test_training_hours_of_a_unit_match_silver_and_the_planted_absences(first_build, lake, city):
    """干部调训: a unit's 2024 学时 and absences recounted from silver classes and enrollments; every
    planted absence of an ended class is a missed class in gold."""
    from redcloud.rules import Rules

    rules = Rules.defaults()
    classes = _read(lake, "silver", "training_classes")
    enrol = _read(lake, "silver", "training_enrollments")
    j = enrol[~enrol.is_deleted.fillna(False)].merge(classes[~classes.is_deleted.fillna(False)], on="class_id")
    j = j[(j.start_date <= D2) & (j.end_date <= D2)]
    j["year"] = [d.year for d in j.start_date]
    per = j.groupby(["cadre_id", "year"]).agg(hours=("hours_credited", "sum"),
                                              missed=("attended", lambda a: int((a == False).sum())))  # noqa: E712
    cy = _read(lake, "gold", "fct_cadre_year")[["cadre_id", "year", "unit_org_id"]]
    per = per.reset_index().merge(cy, on=["cadre_id", "year"])
    y24 = per[per.year == 2024]
    unit = y24.unit_org_id.value_counts().index[0]
    mine = y24[y24.unit_org_id == unit]
    mart = _read(lake, "marts", "mart_training_by_unit")
    m = mart[(mart.unit_org_id == unit) & (mart.year == 2024)].iloc[0]
    assert m.hours == pytest.approx(mine.hours.sum()) and m.classes_missed == mine.missed.sum()
    assert m.cadres_short == int((mine.hours < rules.training_hours_required).sum())
    gold = _read(lake, "gold", "fct_cadre_training_year").set_index(["cadre_id", "year"])
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    absent = set(faults[faults.fault == "training_absence"].record_key.astype(int))
    missed = j[j.attended == False]  # noqa: E712
    assert absent and set(missed.enrollment_id) <= absent
    assert gold.classes_missed.sum() == len(missed) > 0


def test_member_questions_in_time_rate_matches_a_pandas_recount(first_build, lake, city):
    """解决疑难问题: the branch with the most questions, its in-time answers recounted from silver with the
    时限 counted on the official calendar here; planted never-answered questions past it are overdue."""
    from redcloud import workdays
    from redcloud.rules import Rules

    n = Rules.defaults().question_answer_workdays
    q = _read(lake, "silver", "member_questions")
    q = q[~q.is_deleted.fillna(False)]
    q["asked"] = _local(q.asked_at).dt.date
    q = q[q.asked <= D2]
    cal = workdays.workdays_between(min(q.asked), dt.date(2026, 3, 31))
    q["due"] = [[d for d in cal if d > a][n - 1] for a in q.asked]
    q["ans"] = [None if pd.isna(x) or x.date() > D2 else x.date() for x in _local(q.answered_at)]
    in_time = q.ans.notna() & (q.ans <= q.due)
    overdue = q.ans.isna() & (q.due < D2)
    org = q.org_id.value_counts().index[0]
    mart = _read(lake, "marts", "mart_member_questions")
    m = mart[mart.org_id == org]
    mine = q.org_id == org
    assert m.questions.sum() == mine.sum() and m.answered_in_time.sum() == (in_time & mine).sum()
    assert m.overdue_open.sum() == (overdue & mine).sum()
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    never = {int(k) for k in faults[faults.fault == "unanswered_question"].record_key}
    due_by_id = q.set_index("question_id").due
    assert {i for i in never if due_by_id.get(i, D2) < D2} <= set(q[overdue].question_id)
    assert mart.overdue_open.sum() == overdue.sum() > 0


def test_volunteer_market_figures_match_silver(first_build, lake, city):
    """志愿服务超市: the seed's three figures (people helped, hours, funds) for the city, recounted from
    silver needs completed by the logical date; planted never-matched needs past the 时限 are overdue."""
    n = _read(lake, "silver", "volunteer_needs")
    n = n[~n.is_deleted.fillna(False)]
    pub = _local(n.published_at).dt.date
    done = [not pd.isna(x) and x.date() <= D2 for x in _local(n.completed_at)]
    n, done = n[pub <= D2], pd.Series(done, index=n.index)[pub <= D2]
    mart = _read(lake, "marts", "mart_volunteer_market")
    assert mart.needs_published.sum() == len(n) and mart.needs_completed.sum() == done.sum() > 0
    assert mart.people_served.sum() == n[done].beneficiaries.sum()
    assert mart.service_hours.sum() == pytest.approx(n[done].service_hours.sum(), abs=0.5)
    assert mart.funds_yuan.sum() == pytest.approx(n[done].funds_yuan.sum(), abs=1)
    gold = _read(lake, "gold", "fct_volunteer_need").set_index("need_id")
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    never = {int(k) for k in faults[faults.fault == "unmatched_volunteer_need"].record_key}
    past = {i for i in never if i in gold.index and gold.loc[i].match_due_date is not None
            and gold.loc[i].match_due_date < D2}
    assert past and past <= set(gold[gold.state == "超时未对接"].index)
    assert mart.unmatched_overdue.sum() == (gold.state == "超时未对接").sum()


SELECT = [f"+{m}" for m in INCREMENTAL]   # the incremental marts and what they build on


@pytest.fixture(scope="module")
def copy(city_lake, spark, tmp_path_factory):
    return make_ctx(copy_lake(city_lake, tmp_path_factory.mktemp("dbt_copy")), D2, spark)


@pytest.fixture(scope="module")
def rerun(copy):
    root = copy.lake.root
    before = {m: _content(Path(root), m) for m in marts.MARTS}
    versions = {m: copy.lake.version("marts", m) for m in INCREMENTAL}
    marts.run(copy, select=SELECT)
    return before, versions


def test_rerun_same_date_changes_nothing(rerun, copy):
    before, versions = rerun
    for m in marts.MARTS:
        pd.testing.assert_frame_equal(_content(Path(copy.lake.root), m), before[m], obj=m)
    for m in INCREMENTAL:  # the rerun did merge (a new commit), it just changed nothing
        assert copy.lake.version("marts", m) > versions[m]


def test_backfill_touches_only_its_partition(rerun, copy, spark):
    lake = Path(copy.lake.root)
    before = {m: _read(lake, "marts", m) for m in INCREMENTAL}
    marts.run(make_ctx(copy.settings, BACKFILL_DAY, spark), select=SELECT)
    after = {m: _read(lake, "marts", m) for m in INCREMENTAL}
    for m, col in INCREMENTAL.items():
        key = BACKFILL_DAY if col == "as_of_date" else BACKFILL_DAY.replace(day=1)

        def untouched(df, col=col, key=key):
            return df[df[col] != key].astype(str).sort_values(list(df.columns)).reset_index(drop=True)

        pd.testing.assert_frame_equal(untouched(after[m]), untouched(before[m]), obj=m)
        assert (after[m][col] == key).sum() > 0, m
    comp_b = before["mart_member_composition"]
    assert (comp_b.as_of_date == BACKFILL_DAY).sum() == 0  # 11-30 is not a quarter end: new snapshot
    # the learning month of the backfill only counts working days up to the backfill date
    lc = after["mart_learning_compliance"]
    cadres = lc[(lc.month == dt.date(2025, 11, 1)) & (lc.grain == "cadre")]
    assert len(cadres) > 0 and cadres.workdays_required.max() <= 20  # November 2025 has 20 working days


def test_docs_generate(copy, spark, rerun):
    index = marts.docs(copy.settings, spark, D2)
    html = index.read_text(encoding="utf-8")
    assert "mart_member_composition" in html and "superset_power_operation" in html
