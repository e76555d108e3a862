"""One rule, one place: change each rule parameter in configuration, rerun the stages it affects on a
copy of the city lake, and every reader (gold, the marts, the alerts, the brief, the API, Superset's
dataset) shows the same resulting number.

The copy runs with five parameters changed at once (each moves a different number): the learning
obligation extended to 科级, escalation after 3 missed working days instead of 5, 督办预警 40 days
before a deadline instead of 15, 逾期注销 40 days after it instead of 90, and 三会一课 requiring
two 党课 a quarter instead of one (3 支委会 + 1 支部党员大会 + 2 党课). The gold tables carrying those verdicts, the affected marts, alerts, publish and brief are
rerun. Each test checks one parameter: its numbers changed from the city lake's (default rules) and
every reader agrees on the new ones.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fastapi.testclient import TestClient
from helpers import D2, make_ctx
from lakes import copy_lake

from redcloud import marts, pipeline
from redcloud.api import auth
from redcloud.api.app import create_app
from redcloud.lake import Lake
from redcloud.rules import vocab
from redcloud.serving.snapshot import Snapshots
from redcloud.stages import gold as gold_stage

ROOT = Path(__file__).resolve().parents[2]
# The small city (seed 4242) on 2025-12-31 has open projects due in 35-39 days and overdue by 45-47
# days, so 40/40 move both counts (30/60 would move neither: no deadline falls in those windows).
CHANGES = {"learning_min_level": "科级", "learning_escalate_after": 3, "project_warning_days": 40,
           "project_expire_after_days": 40, "sanhui_required": {"支委会": 3, "支部党员大会": 1, "党课": 2, "党小组会": 0}}
# the gold tables whose columns carry these rules' verdicts (the rest of gold does not depend on them)
RULE_TABLES = {"fct_branch_month", "fct_branch_quarter", "fct_learning_daily", "fct_project_lifecycle",
               "fct_project_status"}
AFFECTED_MARTS = ["+mart_poverty_projects", "+mart_learning_compliance", "+mart_org_life_monthly"]
Q4 = dt.date(2025, 10, 1)


class Readings:
    """Every reader's view of one lake, snapshot, brief and API."""

    def __init__(self, settings, brief: dict):
        self.settings = settings
        self.lake = Lake(settings.paths.lake_root)
        self.brief = brief["numbers"]
        self.snapshots = Snapshots(settings.serving)
        self.api = TestClient(create_app(snapshots=self.snapshots))
        with self.snapshots.connect() as con:
            self.city = con.execute("select org_id from dim_organization where depth = 0").fetchone()[0]
        self.headers = {"Authorization": f"Bearer {auth.create_token(self.city, 'rules-agree')}"}

    def gold(self, table: str, **kw) -> pd.DataFrame:
        return self.lake.pandas("gold", table, **kw)

    def mart(self, table: str) -> pd.DataFrame:
        return self.lake.pandas("marts", table)

    def open_alerts(self) -> pd.DataFrame:
        a = self.gold("alerts")
        return a[(a.status == "open") & (a.last_seen == D2)]

    def api_get(self, path: str, **params) -> dict:
        r = self.api.get(f"/api/v1{path}", headers=self.headers, params=params)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])
        return r.json()

    def city_stats(self) -> dict:
        return self.api_get(f"/orgs/{self.city}")["stats"]

    def superset_members(self) -> int:
        """Superset's 在册党员总数: the headline chart's metric over the dataset's SQL, on the snapshot."""
        ds = yaml.safe_load((ROOT / "infra/superset/bundle/datasets/member.yaml").read_text(encoding="utf-8"))
        metric = next(m["expression"] for m in ds["metrics"] if m["metric_name"] == "members")
        with self.snapshots.connect() as con:
            return con.execute(f"select {metric} from ({ds['sql']}) as ds").fetchone()[0]


@pytest.fixture(scope="module")
def before(city_lake) -> Readings:
    return Readings(city_lake.settings, city_lake.summary["brief"])


@pytest.fixture(scope="module")
def after(city_lake, spark, tmp_path_factory) -> Readings:
    settings = copy_lake(city_lake, tmp_path_factory.mktemp("rules_changed"), rules=CHANGES,
                         alerts={"deliver": False}, brief={"pdf": False})
    assert settings.rules.learning_escalate_after == 3 and settings.rules.sanhui_total == 5 + 1
    ctx = make_ctx(settings, D2, spark, "test__rules_changed")
    gold_stage.run(ctx, only=RULE_TABLES)
    marts.run(ctx, select=AFFECTED_MARTS)
    pipeline.run_stage(ctx, "alerts")
    pipeline.run_stage(ctx, "publish")
    return Readings(settings, pipeline.run_stage(ctx, "brief"))


def _learning_today(r: Readings) -> pd.DataFrame:
    return r.gold("fct_learning_daily", filters=[("work_date", "=", D2)])


def _rule_count(r: Readings, rule: str) -> int:
    return int((r.open_alerts().rule == rule).sum())


def test_members_on_the_roll_agree_across_brief_superset_and_api(before):
    """在册 is one column (gold dim_member.is_on_roll): the brief's total, Superset's headline chart
    and the API's city member count are the same number, and it is not every member row."""
    dm = before.gold("dim_member")
    n = int(dm.is_on_roll.sum())
    assert n == before.brief["members_on_roll"] == before.superset_members() == before.city_stats()["members"]
    assert n == int((dm.membership_status == vocab.ON_ROLL).sum()) < len(dm)


def _project_counts(r: Readings) -> dict:
    gold = r.gold("fct_project_status").status.value_counts().to_dict()
    mart = r.mart("mart_poverty_projects").project_status.value_counts().to_dict()
    report = __import__("json").loads(r.open_alerts().query("rule == 'project_report'").evidence.iloc[0])["counts"]
    api = r.city_stats()["poverty_projects"]["by_status"]
    return dict(gold=gold, mart=mart, report={k: v for k, v in report.items() if v}, api=api)


def _assert_projects_agree(r: Readings) -> dict:
    c = _project_counts(r)
    assert c["gold"] == c["mart"] == c["report"] == c["api"], c
    g = c["gold"]
    assert r.brief["projects_overdue"] == g.get(vocab.OVERDUE, 0) == _rule_count(r, "project_overdue")
    assert r.brief["projects_due_soon"] == g.get(vocab.DEADLINE_WARNING, 0) == _rule_count(r, "project_warning")
    stats = r.city_stats()["poverty_projects"]
    assert stats["overdue"] == g.get(vocab.OVERDUE, 0) and stats["deadline_warning"] == g.get(vocab.DEADLINE_WARNING, 0)
    return g


def test_project_warning_days(before, after):
    """督办预警 40 days ahead instead of 15: more projects warned, the same number everywhere."""
    b, a = _assert_projects_agree(before), _assert_projects_agree(after)
    assert a.get(vocab.DEADLINE_WARNING, 0) > b.get(vocab.DEADLINE_WARNING, 0), (b, a)
    life = after.gold("fct_project_lifecycle")
    warn = life[life.state == vocab.DEADLINE_WARNING].merge(after.gold("fct_project_status")[["project_id", "deadline"]])
    lead = warn.apply(lambda x: (x.deadline - x.valid_from).days, axis=1)
    assert lead.max() == 40


def test_project_expire_after_days(before, after):
    """逾期注销 40 days after the deadline instead of 90: more projects closed as expired."""
    b, a = _assert_projects_agree(before), _assert_projects_agree(after)
    assert a.get(vocab.EXPIRED, 0) > b.get(vocab.EXPIRED, 0), (b, a)
    assert sum(a.values()) == sum(b.values())
    st = after.gold("fct_project_status")
    expired = st[st.status == vocab.EXPIRED]
    assert ((expired.state_since - expired.deadline).map(lambda d: d.days) == 40).all()


def test_learning_escalate_after(before, after):
    """Escalation after 3 missed working days: gold's verdicts, the alerts and the brief agree."""
    for r, n in ((before, 5), (after, 3)):
        today = _learning_today(r)
        assert _rule_count(r, "learning_reminder") == int(today.reminder_due.sum())
        assert _rule_count(r, "learning_escalation") == int(today.escalation_due.sum())
        assert (today[today.escalation_due].miss_streak >= n).all()
        assert (today[today.is_obligated & (today.miss_streak >= n)].escalation_due).all()
        week = r.gold("fct_learning_daily", filters=[("work_date", ">=", dt.date(2025, 12, 22)),
                                                     ("work_date", "<=", dt.date(2025, 12, 28))])
        assert r.brief["learning_escalated_cadres"] == week[week.escalation_due].cadre_id.nunique()
    days = after.gold("fct_learning_daily")
    b_days = before.gold("fct_learning_daily")
    assert days.escalation_due.sum() > b_days.escalation_due.sum()


def test_learning_min_level(before, after):
    """The obligation extended to 科级: more cadres obligated, in gold, the mart and the alerts."""
    for r in (before, after):
        dec = r.gold("fct_learning_daily", filters=[("work_date", ">=", dt.date(2025, 12, 1))])
        mart = r.mart("mart_learning_compliance")
        cadres = mart[(mart.month == dt.date(2025, 12, 1)) & (mart.grain == "cadre")]
        assert set(cadres.cadre_id) == set(dec[dec.is_obligated].cadre_id)
        assert cadres.workdays_required.sum() == int(dec.is_obligated.sum())
    assert after.gold("fct_learning_daily").is_obligated.sum() > before.gold("fct_learning_daily").is_obligated.sum()
    ranks = after.gold("fct_learning_daily").query("is_obligated")["rank"].map(vocab.rank_level)
    assert set(ranks) == {"乡科级", "县处级"}


def test_sanhui_required(before, after):
    """三会一课 with two 党课 a quarter (3 支委会 + 1 支部党员大会 + 2 党课): the requirement and the completion of 2025 Q4 are the
    same in gold's quarter and month facts, the mart and the API."""
    for r, total in ((before, 5), (after, 6)):
        q = r.gold("fct_branch_quarter")
        q = q[q.quarter_start == Q4].set_index("org_id")
        assert (q.sanhui_required == total).all()
        life = r.mart("mart_org_life_monthly")
        dec = life[life.month == dt.date(2025, 12, 1)].set_index("org_id")
        assert (dec.sanhui_required_per_quarter == total).all()
        both = dec.join(q.sanhui_completion_rate, how="inner")
        assert len(both) > 20
        assert (both.sanhui_completion_qtd - both.sanhui_completion_rate).abs().max() < 1e-4
        api = r.city_stats()["latest_quarter"]
        assert str(api["quarter_start"])[:10] == str(Q4)
        assert api["sanhui_completion_rate"] == pytest.approx(q.sanhui_completion_rate.mean(), abs=1e-4)
    b = before.gold("fct_branch_quarter").query("quarter_start == @Q4").sanhui_completion_rate.mean()
    a = after.gold("fct_branch_quarter").query("quarter_start == @Q4").sanhui_completion_rate.mean()
    assert a != pytest.approx(b)
