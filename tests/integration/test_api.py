"""The operational API as a real uvicorn process (port [api] port, 28000 in tests) over a copy of the
city lake's published snapshot: scope, masking, pagination, ETag/304, error shapes, audit,
schemathesis (no 5xx), and snapshot swaps during reads."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import duckdb
import httpx
import pytest
from helpers import D2, make_ctx
from lakes import copy_lake

from redcloud.api import audit, auth
from redcloud.api.db import mask_name
from redcloud.config import PROJECT_ROOT, get_settings
from redcloud.serving import publish
from redcloud.serving import snapshot as snapshots

_COPY = {}

CHINESE = re.compile(r"[\u4e00-\u9fff]")
ARTIFACTS = PROJECT_ROOT / ".run" / "artifacts" / "api"


@pytest.fixture(scope="module")
def copy(city_lake, tmp_path_factory):
    """A copy of the city lake whose serving folder and briefs the API process reads."""
    settings = copy_lake(city_lake, tmp_path_factory.mktemp("api_copy"))
    _COPY["snapshots"] = snapshots.Snapshots(settings.serving)
    return settings


class _Current:
    """The copy's snapshots (what the API reads)."""

    def __getattr__(self, name):
        return getattr(_COPY["snapshots"], name)


snapshot = _Current()


@pytest.fixture(scope="module")
def server(copy):
    from redcloud.services import api

    _COPY["acks"] = Path(copy.serving.duckdb_dir).parent / "inbox_acks.jsonl"   # this copy's app acknowledgements
    line = api.start(env={"REDCLOUD_SERVING__DUCKDB_DIR": copy.serving.duckdb_dir,
                          "REDCLOUD_BRIEF__OUT_DIR": copy.brief.out_dir,
                          "REDCLOUD_API__INBOX_ACKS": str(_COPY["acks"])})
    s = get_settings().api
    base = f"http://{s.host}:{s.port}"
    assert f"{base}/docs" in line and "redcloud api token" in line
    try:
        yield base
    finally:
        assert api.stop()


@pytest.fixture(scope="module")
def world(server):
    """Two counties with members, one member in each, and the city org, read straight from the snapshot."""
    with snapshot.connect() as con:
        city = con.execute("select org_id from dim_organization where depth = 0").fetchone()[0]
        counties = [r[0] for r in con.execute(
            """select o.org_id from dim_organization o where o.depth = 1 and
                 (select count(*) from dim_member m join dim_organization mo using (org_id)
                  where list_contains(mo.path, o.org_id)) > 20 order by o.org_id limit 2""").fetchall()]
        a, b = counties

        def members(org, on_roll=False):
            return {r[0]: r[1] for r in con.execute(
                f"""select m.member_id, m.member_name from dim_member m join dim_organization o using (org_id)
                   where list_contains(o.path, ?) {"and m.is_on_roll" if on_roll else ""}""", [org]).fetchall()}

        tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
        return dict(city=city, a=a, b=b, a_members=members(a), b_members=members(b), tables=tables,
                    a_on_roll=len(members(a, True)), b_on_roll=len(members(b, True)))


def _h(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server, timeout=30) as c:
        yield c


def _error(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, (r.status_code, r.text[:300])
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert CHINESE.search(body["error"]["message"]), body
    return body


def test_health_and_snapshot(client, world):
    r = client.get("/api/v1/health")
    assert r.status_code == 200 and r.json()["snapshot_id"] == snapshot.current_id()
    tok = auth.create_token(world["a"], "t-meta")
    r = client.get("/api/v1/snapshot", headers=_h(tok))
    assert r.status_code == 200
    body = r.json()
    assert body["snapshot_id"] == snapshot.current_id() == r.headers["X-Snapshot-Id"]
    assert {s["table_name"] for s in body["sources"]} >= {"dim_member", "dim_organization"}
    assert all(s["rows"] is None for s in body["sources"])   # city-wide counts: city scope only
    city = client.get("/api/v1/snapshot", headers=_h(auth.create_token(world["city"], "t-meta-city"))).json()
    assert any(s["rows"] for s in city["sources"])
    assert client.get("/openapi.json").json()["info"]["title"]
    assert client.get("/docs").status_code == 200


def test_county_cannot_read_another_countys_member(client, world):
    tok = auth.create_token(world["a"], "county-a")
    a_id = next(iter(world["a_members"]))
    b_id = next(iter(world["b_members"]))
    ok = client.get(f"/api/v1/members/{a_id}", headers=_h(tok))
    assert ok.status_code == 200 and ok.json()["member_id"] == a_id
    # by id: indistinguishable from a member that does not exist, and no data
    r = client.get(f"/api/v1/members/{b_id}", headers=_h(tok))
    body = _error(r, 404, "not_found")
    assert str(b_id) not in body["error"]["message"] and world["b_members"][b_id] not in r.text
    _error(client.get(f"/api/v1/members/{b_id}/vitality", headers=_h(tok)), 404, "not_found")
    # by list: filtering on the other county is refused; the whole list holds only our subtree
    _error(client.get("/api/v1/members", params={"org_id": world["b"]}, headers=_h(tok)), 403, "out_of_scope")
    seen, offset = set(), 0
    while True:
        r = client.get("/api/v1/members", params={"limit": 500, "offset": offset}, headers=_h(tok))
        assert r.status_code == 200
        page = r.json()
        seen |= {x["member_id"] for x in page["items"]}
        offset += 500
        if offset >= page["total"]:
            break
    assert seen == set(world["a_members"])
    assert not seen & set(world["b_members"])
    # organisations: the other county is not visible either
    _error(client.get(f"/api/v1/orgs/{world['b']}", headers=_h(tok)), 404, "not_found")
    _error(client.get(f"/api/v1/orgs/{world['b']}/composition", headers=_h(tok)), 404, "not_found")
    orgs = client.get("/api/v1/orgs", params={"limit": 500}, headers=_h(tok)).json()
    assert orgs["items"] and all(world["a"] in o["path"] for o in orgs["items"])
    # an API key scoped to county B cannot read county A's member
    key = auth.create_api_key(world["b"], "key-b")
    _error(client.get(f"/api/v1/members/{a_id}", headers={"X-API-Key": key}), 404, "not_found")
    r = client.get(f"/api/v1/members/{b_id}", headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json()["member_id"] == b_id


ORG_ID_FIELDS = ("org_id", "unit_org_id", "county_org_id", "town_org_id", "branch_org_id", "subject_org_id",
                 "village_org_id")


def test_no_route_gives_a_county_anything_of_another_county(client, world):
    """Every GET route of the OpenAPI document, called with county A's credential (all roles) and its
    own ids: no response body carries an organisation id, a member id or an organisation name of
    county B's subtree. (Runs on the city's snapshot, before the swap test publishes synthetic ones.)"""
    with snapshot.connect() as con:
        b_orgs = dict(con.execute("select org_id, org_name from dim_organization where list_contains(path, ?)",
                                  [world["b"]]).fetchall())
        a_cadre = con.execute(   # a scored cadre whose latest post is in county A (how the API scopes cadres)
            """select c.cadre_id from fct_cadre_year c join dim_organization o on o.org_id = c.unit_org_id
               where list_contains(o.path, ?) and c.cadre_id in (select cadre_id from score_cadre_evaluation)
                 and c.year = (select max(year) from fct_cadre_year y where y.cadre_id = c.cadre_id)
               order by c.cadre_id limit 1""", [world["a"]]).fetchone()[0]
        a_project = con.execute("""select p.project_id from mart_poverty_projects p join dim_organization o
                                     on o.org_id = p.village_org_id where list_contains(o.path, ?) limit 1""",
                                  [world["a"]]).fetchone()[0]
    b_members = set(world["b_members"])
    tok = _h(auth.create_token(world["a"], "scope-scan", ["pii", "integrity"]))
    fill = {"org_id": world["a"], "member_id": next(iter(world["a_members"])), "cadre_id": a_cadre,
            "week": "2025-W52", "fmt": "html", "project_id": a_project}
    paths = [p for p, ops in client.get("/openapi.json").json()["paths"].items() if "get" in ops]
    assert len(paths) >= 27
    leaks, answered = [], {}

    def walk(v, path):
        if isinstance(v, dict):
            for k, x in v.items():
                if k in ORG_ID_FIELDS and x in b_orgs or k == "member_id" and x in b_members:
                    leaks.append((path, k, x))
                walk(x, path)
        elif isinstance(v, list):
            for x in v:
                walk(x, path)

    for p in paths:
        url = p.format(**fill)
        r = client.get(url, params={"limit": 500} if "{" not in p else None, headers=tok)
        answered[p] = r.status_code
        assert r.status_code < 500, (url, r.text[:300])
        leaks.extend((p, "name", n) for n in b_orgs.values() if n in r.text)
        if r.headers.get("content-type", "").startswith("application/json"):
            walk(r.json(), p)
    assert leaks == [], leaks[:10]
    assert sum(s == 200 for s in answered.values()) >= 18, answered


def test_org_statistics_roll_up_the_subtree(client, world):
    tok = auth.create_token(world["city"], "city")
    r = client.get(f"/api/v1/orgs/{world['a']}", headers=_h(tok))
    assert r.status_code == 200
    st = r.json()["stats"]
    # members counted are the ones on the roll (gold's is_on_roll), like the brief and Superset
    assert st["members"] == world["a_on_roll"] < len(world["a_members"])
    assert sum(st["members_by_party_status"].values()) == st["members"]
    comp = client.get(f"/api/v1/orgs/{world['a']}/composition", params={"limit": 500}, headers=_h(tok)).json()
    assert comp["total"] > 0
    by_cat: dict[str, int] = {}
    for x in comp["items"]:
        by_cat[x["category"]] = by_cat.get(x["category"], 0) + x["members"]
    assert by_cat and max(by_cat.values()) == world["a_on_roll"]  # every category sums to the subtree
    lst = client.get("/api/v1/orgs", params={"parent_id": world["city"], "limit": 100}, headers=_h(tok)).json()
    roll = {o["org_id"]: o["members_subtree"] for o in lst["items"]}
    assert roll[world["a"]] == world["a_on_roll"] and roll[world["b"]] == world["b_on_roll"]


def test_names_masked_unless_pii_role(client, world):
    a_id, name = next((k, v) for k, v in world["a_members"].items() if len(v) >= 3)
    plain = client.get(f"/api/v1/members/{a_id}", headers=_h(auth.create_token(world["a"], "m1"))).json()
    assert plain["member_name"] == mask_name(name) != name and "*" in plain["member_name"]
    assert plain["birth_date"] is None and plain["id_number_pseudonym"] is None
    full = client.get(f"/api/v1/members/{a_id}", headers=_h(auth.create_token(world["a"], "m2", ["pii"]))).json()
    assert full["member_name"] == name and full["birth_date"]
    # the row now comes from the worker's point-read cache (same connection, same worker): masking a
    # copy for one caller never changes what the next caller gets
    again = client.get(f"/api/v1/members/{a_id}", headers=_h(auth.create_token(world["a"], "m1"))).json()
    assert again == plain
    assert client.get(f"/api/v1/members/{a_id}", headers=_h(auth.create_token(world["a"], "m2", ["pii"]))).json() == full
    lst = client.get("/api/v1/members", params={"limit": 50}, headers=_h(auth.create_token(world["a"], "m3"))).json()
    assert all(x["member_name"] == mask_name(world["a_members"][x["member_id"]]) for x in lst["items"])


def test_pagination(client, world):
    tok = _h(auth.create_token(world["a"], "pager"))
    total = len(world["a_members"])
    pages = [client.get("/api/v1/members", params={"limit": 7, "offset": o}, headers=tok).json() for o in (0, 7, 14)]
    ids = [x["member_id"] for p in pages for x in p["items"]]
    assert all(p["total"] == total and p["limit"] == 7 for p in pages)
    assert len(ids) == 21 == len(set(ids)) and ids == sorted(ids)
    assert ids == sorted(world["a_members"])[:21]
    last = client.get("/api/v1/members", params={"limit": 7, "offset": total - 3}, headers=tok).json()
    assert len(last["items"]) == 3
    assert client.get("/api/v1/members", params={"offset": total + 5}, headers=tok).json()["items"] == []
    big = client.get("/api/v1/members", params={"limit": 999}, headers=tok).json()
    assert big["limit"] == get_settings().api.max_page_size
    _error(client.get("/api/v1/members", params={"limit": 5000}, headers=tok), 422, "invalid_parameter")
    filt = client.get("/api/v1/members", params={"gender": "女", "limit": 500}, headers=tok).json()
    assert filt["total"] > 0 and all(x["gender"] == "女" for x in filt["items"])


def test_innovation_filters_by_quarter_and_top_factors_are_json(client, world):
    tok = _h(auth.create_token(world["city"], "quarters"))
    latest = client.get("/api/v1/branches/innovation", params={"limit": 1}, headers=tok).json()["items"][0]["quarter"]
    r = client.get("/api/v1/branches/innovation", params={"quarter_start": latest, "limit": 1000}, headers=tok)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] > 0 and {x["quarter"] for x in body["items"]} == {latest}
    # a model's top factors are JSON in the response, not a string holding JSON
    ev = client.get("/api/v1/cadres/evaluations", params={"limit": 5}, headers=tok).json()["items"]
    assert ev and all(isinstance(x["top_factors"], list) and x["top_factors"][0]["feature"] for x in ev)


def _busiest_county(con, table: str, org_sql: str) -> int:
    """The county (depth 1) whose subtree holds most rows of ``table`` (rows scoped by ``org_sql``)."""
    return con.execute(f"""select c.org_id from dim_organization c join dim_organization o on list_contains(o.path, c.org_id)
                           join {table} t on {org_sql} = o.org_id where c.depth = 1
                           group by c.org_id order by count(*) desc, c.org_id limit 1""").fetchone()[0]


def test_app_routes_serve_gold_and_marts_within_scope(client, world):
    """The apps' routes read the snapshot's gold and mart rows of the caller's subtree, whole: 帮扶
    projects with their lifecycle state and alerts, a cadre's 驻村 timeline (names masked inside its
    sentences too), 学习问答 compliance, power operations by department, a member's 成长轨迹. Each is
    checked with the credential of the county that has most of its rows, against the snapshot."""
    from redcloud.contracts import dept_org_sql
    from redcloud.rules.vocab import PROJECT_STATES

    sub = "(select org_id from dim_organization where list_contains(path, ?))"
    with snapshot.connect() as con:
        def q(sql, *params):
            return con.execute(sql, list(params)).fetchall()
        c_proj = _busiest_county(con, "mart_poverty_projects", "t.village_org_id")
        states = dict(q(f"select project_status, count(*) from mart_poverty_projects where village_org_id in {sub} "
                        "group by 1", c_proj))
        alerted = q("""select p.project_id, o.path[2] from mart_poverty_projects p
                       join dim_organization o on o.org_id = p.village_org_id
                       where exists (select 1 from alerts x where x.subject_type = 'project'
                                     and x.subject_id = cast(p.project_id as varchar)) order by 1 limit 1""")
        c_tl = _busiest_county(con, "village_timeline", "t.village_org_id")
        cadre, name, events = q(f"""select cadre_id, any_value(cadre_name), count(*) from village_timeline
                                    where village_org_id in {sub} group by 1 order by 3 desc, 1 limit 1""", c_tl)[0]
        c_lc = _busiest_county(con, "mart_learning_compliance", "t.unit_org_id")
        latest = q("select max(month) from mart_learning_compliance")[0][0]
        unit_rows = q(f"""select count(*) from mart_learning_compliance where grain = 'unit' and month = ?
                          and unit_org_id in {sub}""", latest, c_lc)[0][0]
        c_po = _busiest_county(con, "mart_power_operation_monthly", dept_org_sql("t.dept_code"))
        power_rows = q(f"select count(*) from mart_power_operation_monthly where {dept_org_sql('dept_code')} in {sub}",
                       c_po)[0][0]
        member = next(iter(world["a_members"]))
        join_date, months = q("""select join_date, (select count(*) from fct_member_month f where f.member_id = m.member_id)
                                 from dim_member m where member_id = ?""", member)[0]

    def tok(org, *roles):
        return _h(auth.create_token(org, f"app-routes-{org}", list(roles)))

    r = client.get("/api/v1/projects", params={"limit": 500}, headers=tok(c_proj)).json()
    assert r["total"] == sum(states.values()) > 0
    assert {p["project_status"] for p in r["items"]} <= set(PROJECT_STATES)
    for st, n in states.items():
        assert client.get("/api/v1/projects", params={"project_status": st}, headers=tok(c_proj)).json()["total"] == n
    assert alerted, "the small city has alerts about 帮扶 projects"
    one = client.get(f"/api/v1/projects/{alerted[0][0]}", headers=tok(alerted[0][1])).json()
    assert one["project"]["project_id"] == alerted[0][0] and one["alerts"]
    assert all(x["subject_id"] == str(alerted[0][0]) and isinstance(x["evidence"], dict) for x in one["alerts"])

    tl = client.get(f"/api/v1/cadres/{cadre}/village-timeline", params={"limit": 500}, headers=tok(c_tl)).json()
    assert tl["total"] == events and tl["items"][0]["event_type"] == "派驻开始"
    dates = [x["event_date"] for x in tl["items"]]
    assert dates == sorted(dates)
    assert name not in str(tl) and mask_name(name) in tl["items"][0]["detail"]
    pii = client.get(f"/api/v1/cadres/{cadre}/village-timeline", headers=tok(c_tl, "pii")).json()
    assert name in pii["items"][0]["detail"]
    other = world["b"] if c_tl != world["b"] else world["a"]
    _error(client.get(f"/api/v1/cadres/{cadre}/village-timeline", headers=tok(other)), 404, "not_found")

    lc = client.get("/api/v1/learning/compliance", params={"month": latest.isoformat(), "limit": 500},
                    headers=tok(c_lc)).json()
    assert lc["total"] == unit_rows > 0
    assert all(0 <= x["compliance_rate"] <= 1 and x["grain"] == "unit" for x in lc["items"])

    po = client.get("/api/v1/power-operations", params={"limit": 500}, headers=tok(c_po)).json()
    assert po["total"] == power_rows > 0
    assert all(x["handler_name"] is None or "*" in x["handler_name"] for x in po["items"])

    with snapshot.connect() as con:
        fairness_rows = con.execute("select count(*) from mart_cadre_evaluation_fairness").fetchone()[0]
    fair = client.get("/api/v1/statistics/cadre-evaluation-fairness", params={"limit": 500},
                      headers=tok(world["city"])).json()
    assert fair["total"] == fairness_rows > 0 and {x["attribute"] for x in fair["items"]} == {"gender", "ethnicity", "age_band"}
    _error(client.get("/api/v1/statistics/cadre-evaluation-fairness", headers=tok(world["a"])), 403, "city_scope_required")

    with snapshot.connect() as con:   # 四位一体 记实: a county sees its own units' rows, the city all of them
        duty_all, duty_a, missing_a = con.execute(
            """select count(*), count(*) filter (where list_contains(o.path, ?)),
                      coalesce(sum(t.records_missing) filter (where list_contains(o.path, ?)), 0)
               from mart_duty_targets_monthly t join dim_organization o on o.org_id = t.unit_org_id""",
            [world["a"], world["a"]]).fetchone()
    duty = client.get("/api/v1/statistics/duty-targets", params={"limit": 500}, headers=tok(world["a"])).json()
    assert duty["total"] == duty_a > 0 and duty_all > duty_a
    pages = [client.get("/api/v1/statistics/duty-targets", params={"limit": 500, "offset": o},
                        headers=tok(world["a"])).json()["items"] for o in range(0, duty_a, 500)]
    assert sum(x["records_missing"] for p in pages for x in p) == missing_a
    with snapshot.connect() as con:   # 领导班子 on the logical date, and the city's cadre changes
        teams_a = con.execute("""select count(*) from mart_leadership_teams t join dim_organization o
                                 on o.org_id = t.unit_org_id where t.is_current and list_contains(o.path, ?)""",
                              [world["a"]]).fetchone()[0]
        changes = con.execute("select count(*) from mart_cadre_changes").fetchone()[0]
    lt = client.get("/api/v1/statistics/leadership-teams", params={"is_current": "true", "limit": 500},
                    headers=tok(world["a"])).json()
    assert lt["total"] == teams_a > 0 and all(x["is_current"] and x["leaders"] >= x["chiefs"] for x in lt["items"])
    with snapshot.connect() as con:
        disc_a = con.execute("""select count(*) from mart_disclosure_timeliness t join dim_organization o
                                on o.org_id = t.org_id where list_contains(o.path, ?)""", [world["a"]]).fetchone()[0]
    dq = client.get("/api/v1/statistics/disclosures", params={"limit": 1}, headers=tok(world["a"])).json()
    assert dq["total"] == disc_a > 0
    ps = client.get("/api/v1/statistics/project-support", params={"limit": 1}, headers=tok(world["city"])).json()
    with snapshot.connect() as con:
        villages = con.execute("select count(*) from mart_project_support").fetchone()[0]
    assert ps["total"] == villages > 0 and ps["items"][0]["projects"] >= ps["items"][0]["projects_missing_measures"]
    with snapshot.connect() as con:
        trained = con.execute("select count(*), sum(cadres_short) from mart_training_by_unit where year = 2025").fetchone()
    tr = client.get("/api/v1/statistics/training", params={"year": 2025, "limit": 500}, headers=tok(world["city"])).json()
    assert tr["total"] == trained[0] > 0 and sum(x["cadres_short"] for x in tr["items"]) == trained[1]
    with snapshot.connect() as con:
        asked_a = con.execute("""select coalesce(sum(t.questions), 0) from mart_member_questions t
                                 join dim_organization o on o.org_id = t.org_id where list_contains(o.path, ?)""",
                              [world["a"]]).fetchone()[0]
    mq = [client.get("/api/v1/statistics/member-questions", params={"limit": 1000, "offset": o}, headers=tok(world["a"]))
          .json()["items"] for o in (0, 1000, 2000)]
    assert sum(x["questions"] for p in mq for x in p) == asked_a > 0
    with snapshot.connect() as con:
        served = con.execute("select count(*), sum(people_served) from mart_volunteer_market").fetchone()
    vm = client.get("/api/v1/statistics/volunteer-market", params={"limit": 1000}, headers=tok(world["city"])).json()
    assert vm["total"] == served[0] > 0 and sum(x["people_served"] for x in vm["items"]) == served[1]
    cc = client.get("/api/v1/statistics/cadre-changes", params={"limit": 1}, headers=tok(world["city"])).json()
    assert cc["total"] == changes > 0

    mt = client.get(f"/api/v1/members/{member}/timeline", params={"limit": 1000}, headers=tok(world["a"])).json()
    assert [x["event_date"] for x in mt["items"] if x["event_type"] == "入党"] == [join_date.isoformat()]
    assert sum(x["event_type"] == "月度记实" for x in mt["items"]) == months == mt["total"] - 1 - sum(
        x["event_type"] == "转正" for x in mt["items"])
    assert [x["event_date"][:7] for x in mt["items"]] == sorted(x["event_date"][:7] for x in mt["items"])
    b_member = next(iter(world["b_members"]))
    _error(client.get(f"/api/v1/members/{b_member}/timeline", headers=tok(world["a"])), 404, "not_found")


def test_inbox_lists_acknowledges_once_and_the_outbox_records_it(client, world, copy):
    """The app polls its user's messages, acknowledges one; it leaves the unread list (and the ETag
    changes), a second acknowledgement returns the first, another county's credential and another
    person's message are refused; the alerts stage's sync records the app channel in the outbox once."""
    from redcloud.alerts import app_channel
    from redcloud.lake import Lake

    with snapshot.connect() as con:
        account, n, path = con.execute(
            """with box as (select split_part(recipient, '@', 1) as account, count(*) as n from alert_outbox
                            where split_part(recipient, '@', 1) like 'cadre-%' group by 1),
                    unit as (select cadre_id, arg_max(unit_org_id, year) as org_id from fct_cadre_year group by 1)
               select b.account, b.n, o.path from box b
               join unit u on u.cadre_id = cast(split_part(b.account, '-', 2) as bigint)
               join dim_organization o on o.org_id = u.org_id
               order by (len(o.path) > 1) desc, b.n desc, b.account limit 1""").fetchone()
        other = con.execute("select message_id from alert_outbox where split_part(recipient, '@', 1) <> ? limit 1",
                            [account]).fetchone()[0]
        elsewhere = con.execute("select org_id from dim_organization where depth = 1 and org_id <> ? limit 1",
                                [path[1] if len(path) > 1 else -1]).fetchone()[0]
    scope = path[1] if len(path) > 1 else path[0]    # the person's county (the city for a city department)
    me = _h(auth.create_token(scope, account))
    r = client.get("/api/v1/inbox", params={"limit": 500}, headers=me)
    assert r.status_code == 200 and r.json()["total"] == n >= 1, r.text[:300]
    first = r.json()["items"][0]
    assert first["subject"] and first["body"] and first["read_at"] is None
    ack = client.post(f"/api/v1/inbox/{first['message_id']}/ack", headers=me)
    assert ack.status_code == 200, ack.text
    again = client.post(f"/api/v1/inbox/{first['message_id']}/ack", headers=me).json()
    assert again["read_at"] == ack.json()["read_at"]
    r2 = client.get("/api/v1/inbox", params={"limit": 500}, headers=me)
    assert r2.json()["total"] == n - 1 and first["message_id"] not in {x["message_id"] for x in r2.json()["items"]}
    assert r2.headers["ETag"] != r.headers["ETag"]
    assert client.get("/api/v1/inbox", params={"limit": 500}, headers={**me, "If-None-Match": r.headers["ETag"]}
                      ).status_code == 200
    read = client.get("/api/v1/inbox", params={"include_read": "true", "limit": 500}, headers=me).json()
    assert read["total"] == n and {x["message_id"]: x["read_at"] for x in read["items"]}[first["message_id"]]
    _error(client.post(f"/api/v1/inbox/{other}/ack", headers=me), 404, "not_found")
    if len(path) > 1:
        _error(client.get("/api/v1/inbox", headers=_h(auth.create_token(elsewhere, account))), 403, "out_of_scope")
    _error(client.get("/api/v1/inbox", headers=_h(auth.create_token(scope, "analyst"))), 403, "not_an_app_account")

    lake, acks = Lake(copy.paths.lake_root), _COPY["acks"]
    assert app_channel.sync(lake, acks) >= 1
    assert app_channel.sync(lake, acks) == 0          # a rerun marks nothing twice
    box = lake.pandas("ops", "alert_outbox")
    assert box.loc[box.message_id == first["message_id"], "app_read_at"].notna().all()


def test_etag_and_304(client, world):
    tok = _h(auth.create_token(world["a"], "etag"))
    url = f"/api/v1/orgs/{world['a']}"
    r1 = client.get(url, headers=tok)
    tag = r1.headers["ETag"]
    assert r1.status_code == 200 and snapshot.current_id() in tag
    r2 = client.get(url, headers={**tok, "If-None-Match": tag})
    assert r2.status_code == 304 and r2.content == b"" and r2.headers["ETag"] == tag
    assert client.get(url, headers={**tok, "If-None-Match": '"something-else"'}).status_code == 200
    other = client.get(url, headers=_h(auth.create_token(world["a"], "etag", ["pii"])))
    assert other.headers["ETag"] != tag  # a different view of the data never shares a tag
    assert client.get(url + "/composition", headers=tok).headers["ETag"] != tag
    assert client.get(url, headers={**tok, "If-None-Match": "*"}).status_code == 304


def test_if_none_match_never_answers_before_scope_role_and_validation(client, world):
    """``If-None-Match: *`` (or a tag) gets a 304 only for a request that would have been a 200."""
    tok = _h(auth.create_token(world["a"], "inm"))
    star = {**tok, "If-None-Match": "*"}
    b_id = next(iter(world["b_members"]))
    _error(client.get(f"/api/v1/members/{b_id}", headers=star), 404, "not_found")      # other county
    _error(client.get("/api/v1/integrity", headers=star), 403, "role_required")        # missing role
    _error(client.get("/api/v1/members/abc", headers=star), 422, "invalid_parameter")  # bad input
    _error(client.get("/api/v1/members/1", headers={"If-None-Match": "*"}), 401, "unauthenticated")
    a_id = next(iter(world["a_members"]))
    ok = client.get(f"/api/v1/members/{a_id}", headers=tok)
    assert client.get(f"/api/v1/members/{a_id}", headers={**tok, "If-None-Match": f'W/{ok.headers["ETag"]}'}
                      ).status_code == 304


def test_error_shapes(client, world, copy):
    a_id = next(iter(world["a_members"]))
    _error(client.get("/api/v1/members"), 401, "unauthenticated")
    _error(client.get("/api/v1/members", headers=_h("not-a-jwt")), 401, "invalid_token")
    _error(client.get("/api/v1/members", headers=_h(auth.create_token(world["a"], "old", hours=-1))), 401,
           "token_expired")
    _error(client.get("/api/v1/members", headers={"X-API-Key": "rck_nope"}), 401, "invalid_api_key")
    tok = _h(auth.create_token(world["a"], "errs"))
    _error(client.get("/api/v1/members/abc", headers=tok), 422, "invalid_parameter")
    _error(client.get("/api/v1/members/99999999999999999999", headers=tok), 422, "invalid_parameter")
    for bad in ("0", "20251201"):   # dates are YYYY-MM-DD, never a number of seconds since 1970
        body = _error(client.get("/api/v1/alerts", params={"logical_date": bad}, headers=tok), 422, "invalid_parameter")
        assert "YYYY-MM-DD" in body["error"]["message"], body
    _error(client.get("/api/v1/nowhere", headers=tok), 404, "not_found")
    _error(client.post(f"/api/v1/members/{a_id}", headers=tok), 405, "method_not_allowed")
    _error(client.get("/api/v1/integrity", headers=tok), 403, "role_required")
    _error(client.get("/api/v1/members", headers=_h(auth.create_token(987654321, "ghost"))), 403, "scope_unknown")
    # a table the snapshot does not (yet) hold: a stable 404 code, never a 500
    for path, table in (("/api/v1/vitality", "score_member_vitality"),
                        ("/api/v1/cadres/evaluations", "score_cadre_evaluation"),
                        ("/api/v1/branches/innovation", "score_branch_innovation"),
                        ("/api/v1/alerts", "alerts")):
        r = client.get(path, headers=tok)
        if table in world["tables"]:
            assert r.status_code == 200 and "items" in r.json()
        else:
            _error(r, 404, "table_unavailable")
    # the weekly brief is city-wide: a county credential never gets it, in any form
    for path in ("/api/v1/briefs", "/api/v1/briefs/latest", "/api/v1/briefs/2025-W52/html",
                 "/api/v1/briefs/2025-W52/pdf"):
        _error(client.get(path, headers=tok), 403, "city_scope_required")
    r = client.get("/api/v1/briefs/latest", headers=_h(auth.create_token(world["city"], "errs-city")))
    if (Path(copy.brief.out_dir) / "index.json").exists():
        assert r.status_code == 200 and r.json()["week"]
    else:
        _error(r, 404, "brief_not_found")


def test_audit_trail_names_whose_data_was_read(client, world):
    sub = f"auditor-{uuid.uuid4().hex[:8]}"
    tok = _h(auth.create_token(world["a"], sub))
    a_id = next(iter(world["a_members"]))
    b_id = next(iter(world["b_members"]))
    assert client.get(f"/api/v1/members/{a_id}", headers=tok).status_code == 200
    assert client.get(f"/api/v1/members/{b_id}", headers=tok).status_code == 404
    assert client.get("/api/v1/members", params={"limit": 5}, headers=tok).status_code == 200
    time.sleep(0.2)
    mine = [x for x in audit.read_all() if x.get("sub") == sub]
    assert [x["status"] for x in mine] == [200, 404, 200]
    assert mine[0]["persons"] == [{"kind": "member", "ids": [a_id]}] and mine[0]["scope_org_id"] == world["a"]
    assert mine[1]["persons"] == [] and mine[1]["path"] == f"/api/v1/members/{b_id}"
    assert len(mine[2]["persons"][0]["ids"]) == 5
    assert all(x["snapshot_id"] for x in mine)


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors_or_schema_violations(server, world):
    tok = auth.create_token(world["city"], "schemathesis", ["pii", "integrity"])
    exe = Path(sys.executable).with_name("schemathesis")
    with tempfile.TemporaryDirectory() as tmp:
        p = subprocess.run([str(exe), "run", f"{server}/openapi.json", "--checks", "not_a_server_error,response_schema_conformance",
                            "-H", f"Authorization: Bearer {tok}", "--max-examples", "15", "--seed", "42",
                            "--generation-database", "none", "--request-timeout", "20"],
                           cwd=tmp, capture_output=True, text=True, timeout=400)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    m = re.search(r"(\d+) generated", out)
    assert m and int(m.group(1)) > 100, out[-2000:]


def _marked(settings, run_id: str) -> str:
    sid = publish.run(make_ctx(settings.replace(serving={"keep_snapshots": 10}), D2, run_id=run_id))["snapshot_id"]
    with duckdb.connect(str(snapshot.path(sid))) as con:
        con.execute("update dim_organization set org_name = ?", [sid])
    return sid


def test_snapshot_swap_during_api_reads_never_mixes_versions(client, server, world, copy):
    tok = _h(auth.create_token(world["city"], "swapper"))
    url = f"/api/v1/orgs/{world['a']}"
    etag_before = client.get(url, headers=tok).headers["ETag"]
    marks = [_marked(copy, f"api-swap-{i}") for i in range(3)]  # 3 > the API's 2 open snapshots
    # the snapshot changed: the old ETag no longer matches
    r = client.get(url, headers={**tok, "If-None-Match": etag_before})
    assert r.status_code == 200 and r.headers["X-Snapshot-Id"] == marks[-1]

    stop = threading.Event()
    bad, seen, errors = [], {}, []

    def reader():
        with httpx.Client(base_url=server, timeout=30) as c:
            while not stop.is_set():
                r = c.get(url, headers=tok)
                if r.status_code != 200:
                    errors.append((r.status_code, r.text[:200]))
                    continue
                body = r.json()
                sid = body["snapshot_id"]
                if not (body["org"]["org_name"] == sid == r.headers["X-Snapshot-Id"]
                        and body["stats"]["members"] == world["a_on_roll"]):
                    bad.append((sid, body["org"]["org_name"], r.headers["X-Snapshot-Id"]))
                seen[sid] = seen.get(sid, 0) + 1

    def swapper():
        while not stop.is_set():
            for sid in marks:
                snapshot.swap_current(sid)
                time.sleep(0.01)

    threads = [threading.Thread(target=reader) for _ in range(3)] + [threading.Thread(target=swapper)]
    for t in threads:
        t.start()
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    assert not bad, bad[:3]
    assert sum(seen.values()) > 30 and all(seen.get(m, 0) > 0 for m in marks), seen


def test_docs_render_offline_in_chromium(server):
    """Swagger UI loads everything from the API server itself: with every request outside 127.0.0.1
    blocked (an intranet), /docs renders every route without a script error."""
    from urllib.parse import urlparse

    from redcloud.services.browser import chromium, screenshot

    routes = [p for p in httpx.get(f"{server}/openapi.json").json()["paths"] if p.startswith("/api/v1/")]
    blocked, errors = [], []

    def only_local(route):
        if urlparse(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        page.route("**/*", only_local)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{server}/docs")
        page.wait_for_selector(".opblock-summary-path", timeout=60_000)
        shown = set(page.eval_on_selector_all(".opblock-summary-path", "els => els.map(e => e.dataset.path)"))
        screenshot(page, ARTIFACTS / "api_docs.png")
        assert set(routes) <= shown, set(routes) - shown
    assert blocked == [] and errors == [], (blocked, errors)


def test_revocation_lifetime_roles_and_audited_reasons(client, world):
    """A revoked token or key gets 401 ``revoked``; a token living longer than ``[api] max_token_hours``
    (even correctly signed) or naming an unknown role is refused; every refusal is audited with its
    reason."""
    import datetime as dt

    import jwt

    sub = f"revoker-{uuid.uuid4().hex[:8]}"
    a_id = next(iter(world["a_members"]))
    url = f"/api/v1/members/{a_id}"
    token, key = auth.create_token(world["a"], sub), auth.create_api_key(world["a"], sub)
    other = auth.create_token(world["a"], sub + "-other")
    assert client.get(url, headers=_h(token)).status_code == 200
    assert client.get(url, headers={"X-API-Key": key}).status_code == 200
    auth.revoke(token=token)
    _error(client.get(url, headers=_h(token)), 401, "revoked")
    assert client.get(url, headers={"X-API-Key": key}).status_code == 200     # only that token
    auth.revoke(key=key)
    _error(client.get(url, headers={"X-API-Key": key}), 401, "revoked")
    auth.revoke(sub=sub + "-other")                                           # everything of a subject
    _error(client.get(url, headers=_h(other)), 401, "revoked")
    max_hours = get_settings().api.max_token_hours
    with pytest.raises(ValueError, match="max_token_hours"):
        auth.create_token(world["a"], sub, hours=max_hours + 1)
    now = dt.datetime.now(dt.timezone.utc)
    century = jwt.encode({"sub": sub, "org_id": world["a"], "roles": [], "iat": now, "jti": "c1",
                          "exp": now + dt.timedelta(days=36500)}, auth._secret(), algorithm="HS256")
    _error(client.get(url, headers=_h(century)), 401, "token_lifetime_exceeded")
    admin = jwt.encode({"sub": sub, "org_id": world["a"], "roles": ["admin"], "iat": now, "jti": "c2",
                        "exp": now + dt.timedelta(hours=1)}, auth._secret(), algorithm="HS256")
    _error(client.get(url, headers=_h(admin)), 401, "unknown_role")
    _error(client.get(url, headers=_h("forged.token.here")), 401, "invalid_token")
    time.sleep(0.2)
    reasons = [x["auth_error"] for x in audit.read_all() if x["path"] == url and x["status"] == 401]
    for code in ("revoked", "token_lifetime_exceeded", "unknown_role", "invalid_token"):
        assert code in reasons, (code, reasons[-10:])


def test_audit_fails_closed(client, world):
    """When the audit line cannot be written the caller gets 503 ``audit_unavailable``, never data."""
    path = audit.audit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    aside = path.with_name(path.name + ".aside")
    path.rename(aside)
    path.mkdir()          # a directory where the log was: every append fails (root or not)
    try:
        tok = _h(auth.create_token(world["a"], "audit-down"))
        r = client.get(f"/api/v1/members/{next(iter(world['a_members']))}", headers=tok)
        _error(r, 503, "audit_unavailable")
        assert world["a_members"][next(iter(world["a_members"]))] not in r.text
    finally:
        path.rmdir()
        aside.rename(path)
    assert client.get("/api/v1/orgs", headers=tok).status_code == 200

