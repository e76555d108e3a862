"""Web reference-data connector: the polite client against the real local web server, and bronze_web.

A real ``redcloud.demo.web_server`` process serves a tiny data set (5 penalties, 5 enforcement
entries, 4 news articles) on a free loopback port. Its ``/_stats`` endpoint (per-URL list of answered
statuses) is the witness for retries, conditional requests and robots.txt.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from helpers import make_ctx, settings_for

from redcloud.sources.web_client import (
    RetriesExhausted,
    RobotsDisallowed,
    ValidatorStore,
    WebClient,
    WebFetchError,
    parse_news_list,
)

ROOT = Path(__file__).resolve().parents[2]

PENALTIES = [
    dict(notice_id=f"CF000000{i}", title=f"行政处罚决定书（CF000000{i}）", party_name=name, party_id_masked=f"52010{i}********123{i}",
         region="南明区河田街道党工委", reason=reason, amount_yuan=amount, authority="市场监督管理局", decision_date=f"2024-0{i}-1{i}")
    for i, (name, reason, amount) in enumerate([("孔广", "违反财经纪律", 2530.0), ("王弘斌", "偷逃税款", 22910.0),
                                                ("李秀英", "违法建设", 800.0), ("张伟", "违规占用耕地", 15000.0),
                                                ("刘洋", "未按规定办理环评手续", 4210.0)], start=1)
]
ENFORCEMENT = [
    dict(case_no=f"（2024）黔0102执0000{i}号", name=name, id_masked=f"52040{i}********223{i}", court="贵阳市南明区人民法院",
         obligation="偿还借款本金及利息", amount_yuan=amount, publish_date=f"2024-1{i % 3}-0{i}")
    for i, (name, amount) in enumerate([("赵敏", 101000.0), ("钱进", 32400.0), ("孙丽", 5000.0),
                                        ("周强", 78800.0), ("吴芳", 12300.0)], start=1)
]
NEWS = [
    dict(news_id=f"XW00000{i}", title=title, published_date=f"2024-05-0{i}",
         body=f"2024-05-0{i}，南明区{title}，受到广泛好评 & 关注。")
    for i, title in enumerate(["林荔同志获评优秀共产党员", "群众反映宋冠世办事拖延问题调查",
                               "观山湖区扎实推进基层治理", "关于某某违反中央八项规定精神问题的通报"], start=1)
]
# fault plan: the n-th request of these exact URLs answers these statuses (then normally)
PLAN = {
    "/api/enforcement?page=2&page_size=2": [503, 503],  # used only by the client retry test
    "/api/penalties?page=2&page_size=3": [503, 503],    # used only by the bronze_web test (page_size=3)
}


@dataclass
class Server:
    base: str
    proc: subprocess.Popen
    data_dir: Path

    def stats(self) -> dict[str, list[int]]:
        return requests.get(self.base + "/_stats", timeout=5).json()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data_dir: Path, log: Path, *args: str) -> Server:
    port = _free_port()
    cmd = [sys.executable, "-m", "redcloud.demo.web_server", "--data-dir", str(data_dir), "--port", str(port),
           "--fault-rate", "0", *args]
    if "--slow-rate" not in args:
        cmd += ["--slow-rate", "0"]
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT)
    srv = Server(f"http://127.0.0.1:{port}", proc, data_dir)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"web server exited with {proc.returncode}: {log.read_text(errors='replace')}")
        try:
            srv.stats()
            return srv
        except requests.ConnectionError:
            time.sleep(0.05)
    _stop(srv)
    raise RuntimeError("web server did not start within 15 s")


def _stop(srv: Server) -> None:
    if srv.proc.poll() is None:
        os.kill(srv.proc.pid, signal.SIGTERM)
        try:
            srv.proc.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(srv.proc.pid, signal.SIGKILL)
            srv.proc.wait(5)


def _write_data(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, rows in (("penalties", PENALTIES), ("enforcement", ENFORCEMENT), ("news", NEWS)):
        (d / f"{name}.json").write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    base = tmp_path_factory.mktemp("web")
    plan = base / "plan.json"
    plan.write_text(json.dumps(PLAN))
    srv = _start(_write_data(base / "data"), base / "server.log", "--fault-plan", str(plan))
    yield srv
    _stop(srv)


@pytest.fixture()
def slow_server(tmp_path):
    srv = _start(_write_data(tmp_path / "data"), tmp_path / "server.log", "--slow-rate", "1", "--slow-seconds", "2")
    yield srv
    _stop(srv)


def _delta(before: dict, after: dict) -> dict[str, list[int]]:
    """Statuses answered between two /_stats snapshots, per URL."""
    return {u: s[len(before.get(u, [])):] for u, s in after.items() if len(s) > len(before.get(u, []))}


def _client(srv: Server, **kw) -> WebClient:
    kw.setdefault("min_interval", 0.0)
    kw.setdefault("backoff_base", 0.01)
    return WebClient(srv.base, **kw)


# -- the client ------------------------------------------------------------------------------------

def test_503_twice_then_retried_and_data_exactly_once(server):
    delays: list[float] = []
    before = server.stats()
    # a 5 s base backoff would make this test slow: the server's "Retry-After: 0" must win
    with _client(server, backoff_base=5.0, sleep=delays.append) as c:
        pages = list(c.iter_json_pages("/api/enforcement", page_size=2))
    d = _delta(before, server.stats())
    assert d["/api/enforcement?page=2&page_size=2"] == [503, 503, 200]
    assert d["/api/enforcement?page=1&page_size=2"] == [200]
    assert d["/api/enforcement?page=3&page_size=2"] == [200]
    assert [p.attempts for p in pages] == [1, 3, 1]
    assert delays == [0.0, 0.0]
    cases = [i["case_no"] for p in pages for i in p.json()["items"]]
    assert cases == [r["case_no"] for r in ENFORCEMENT]  # every record once, in order


def test_pagination_collects_all_records(server):
    before = server.stats()
    with _client(server) as c:
        pages = list(c.iter_json_pages("/api/penalties", page_size=2))
        news = list(c.iter_news(page_size=3))
    assert [p.url for p in pages] == [f"{server.base}/api/penalties?page={n}&page_size=2" for n in (1, 2, 3)]
    assert [i["notice_id"] for p in pages for i in p.json()["items"]] == [r["notice_id"] for r in PENALTIES]
    assert pages[-1].json()["next"] is None
    assert [p.kind for p in news] == ["list", "article", "article", "article", "list", "article"]
    assert [p.url.rsplit("/", 1)[1] for p in news if p.kind == "article"] == [f"{r['news_id']}.html" for r in NEWS]
    assert all(p.status == 200 and p.body for p in pages + news)
    first = pages[0]
    assert first.fetched_at.tzinfo is not None and first.fetched_at.utcoffset() == dt.timedelta(0)
    assert first.etag and first.etag.startswith('"') and first.last_modified.endswith("GMT")
    d = _delta(before, server.stats())
    assert d["/robots.txt"] == [200]  # robots.txt once per host and client
    assert d["/news/?page=2&page_size=3"] == [200]  # the rel="next" link, &amp; unescaped


def test_second_run_is_conditional_and_gets_304(server, tmp_path):
    state = tmp_path / "validators.json"
    with _client(server, validators=state) as c:
        first = list(c.iter_json_pages("/api/penalties", page_size=2)) + list(c.iter_news(page_size=2))
        c.save_validators()
    assert all(p.status == 200 for p in first)
    assert set(json.loads(state.read_text(encoding="utf-8"))["validators"]) == {p.url for p in first}

    before = server.stats()
    with _client(server, validators=state) as c:
        second = list(c.iter_json_pages("/api/penalties", page_size=2)) + list(c.iter_news(page_size=2))
    d = _delta(before, server.stats())
    # same pages walked (pagination followed from remembered links), each answered 304 exactly once
    assert [p.url for p in second] == [p.url for p in first]
    assert all(p.status == 304 and p.body is None and p.unchanged for p in second)
    assert {u: s for u, s in d.items() if u != "/robots.txt"} == {p.url[len(server.base):]: [304] for p in first}
    assert [i for p in second if not p.unchanged for i in p.json()["items"]] == []  # nothing new

    # a changed record: only its page is fetched again (total unchanged, so other pages stay 304)
    path = server.data_dir / "penalties.json"
    original = path.read_text(encoding="utf-8")
    try:
        rows = json.loads(original)
        rows[0]["reason"] = "违规发放补贴"
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
        with _client(server, validators=state) as c:
            third = list(c.iter_json_pages("/api/penalties", page_size=2))
        assert [p.status for p in third] == [200, 304, 304]
        assert third[0].json()["items"][0]["reason"] == "违规发放补贴"
    finally:
        path.write_text(original, encoding="utf-8")


def test_known_articles_are_asked_again_once_per_cycle_new_ones_at_once(server, tmp_path):
    """``article_recheck_days = n``: over n consecutive days every known article is asked exactly once
    (a 304), every list page every day; an article the store does not know is asked on the first day."""
    state = tmp_path / "validators.json"
    with _client(server, validators=state) as c:
        first = list(c.iter_news(page_size=2))
        c.save_validators()
    articles = sorted(p.url for p in first if p.kind == "article")
    lists = sorted(p.url for p in first if p.kind == "list")
    assert len(articles) == len(NEWS) >= 3
    n, start = 3, dt.date(2031, 5, 5)
    asked: dict[str, list[int]] = {}
    for i in range(n):
        with _client(server, validators=state, article_recheck_days=n, today=start + dt.timedelta(days=i)) as c:
            day = list(c.iter_news(page_size=2))
            assert sorted(p.url for p in day if p.kind == "list") == lists          # list pages: every day
            assert all(p.status == 304 for p in day)
            assert sorted([p.url for p in day if p.kind == "article"] + c.not_rechecked) == articles
        for p in day:
            if p.kind == "article":
                asked.setdefault(p.url, []).append(i)
    assert sorted(asked) == articles and all(len(days) == 1 for days in asked.values()), asked
    # a rerun of a date asks the same articles
    with _client(server, validators=state, article_recheck_days=n, today=start) as c:
        again = [p.url for p in c.iter_news(page_size=2) if p.kind == "article"]
    assert again == [u for u, days in asked.items() if days == [0]]
    # an article the store has no validators for (new) is asked at once, whatever its day
    store = json.loads(state.read_text(encoding="utf-8"))
    not_today = next(u for u, days in asked.items() if days != [0])
    del store["validators"][not_today]
    state.write_text(json.dumps(store), encoding="utf-8")
    with _client(server, validators=state, article_recheck_days=n, today=start) as c:
        fresh = {p.url: p.status for p in c.iter_news(page_size=2) if p.kind == "article"}
    assert fresh[not_today] == 200 and set(fresh) == set(again) | {not_today}
    with pytest.raises(ValueError, match="article_recheck_days"):
        _client(server, article_recheck_days=0)


def test_private_url_refused_without_request(server):
    before = server.stats()
    with _client(server) as c:
        with pytest.raises(RobotsDisallowed, match="robots.txt"):
            c.fetch("/private/secret.html")
        with pytest.raises(RobotsDisallowed):
            c.fetch(server.base + "/private/other?page=1")
        assert c.fetch("/api/penalties").status == 200
    after = server.stats()
    assert not [u for u in after if u.startswith("/private/")]
    assert _delta(before, after) == {"/robots.txt": [200], "/api/penalties": [200]}


def test_client_error_is_not_retried(server):
    before = server.stats()
    with _client(server) as c, pytest.raises(WebFetchError) as err:
        c.fetch("/api/unknown")
    assert err.value.status == 404 and not isinstance(err.value, RetriesExhausted)
    assert _delta(before, server.stats())["/api/unknown"] == [404]


def test_read_timeouts_are_retried_then_fail_clearly(slow_server):
    delays: list[float] = []
    with _client(slow_server, read_timeout=0.5, max_attempts=3, backoff_base=0.05,
                 sleep=lambda s: (delays.append(s), time.sleep(s))) as c:
        with pytest.raises(RetriesExhausted) as err:
            c.fetch("/api/penalties")
        assert c.requests_sent == 1 + 3  # robots.txt (never slow) + three attempts
    assert err.value.attempts == 3
    assert "读取超时" in str(err.value) and "/api/penalties" in str(err.value) and "3 次" in str(err.value)
    assert delays == [0.05, 0.1]  # exponential backoff, no Retry-After on timeouts


def test_news_list_parser_and_validator_store(tmp_path):
    html = ('<ul><li><a href="/news/XW1.html">甲</a></li><li><a href="/news/XW2.html">乙</a></li>'
            '<a href="/about.html">关于</a></ul><a rel="next" href="/news/?page=2&amp;page_size=2">下一页</a>')
    nxt, arts = parse_news_list(html, "http://h:1/news/?page=1&page_size=2")
    assert nxt == "http://h:1/news/?page=2&page_size=2"
    assert arts == ["http://h:1/news/XW1.html", "http://h:1/news/XW2.html"]
    store = ValidatorStore()
    store.update("http://h:1/a", '"x"', "Mon, 01 Jan 2024 00:00:00 GMT")
    store.set_links("http://h:1/a", "http://h:1/a?page=2")
    f = store.save(tmp_path / "s" / "v.json")
    again = ValidatorStore.load(f)
    assert again.get("http://h:1/a")["etag"] == '"x"'
    assert again.links("http://h:1/a") == (True, "http://h:1/a?page=2", [])
    assert ValidatorStore.load(tmp_path / "missing.json").entries == {}


# -- bronze_web ------------------------------------------------------------------------------------

WALL_CLOCK = {"_loaded_at", "_fetched_at", "fetched_at"}
TABLES = ("web__raw_pages", "web__penalties", "web__enforcement", "web__news")


def _content(spark, lake, day: dt.date) -> dict[str, list[tuple]]:
    from pyspark.sql import functions as F

    out = {}
    for t in TABLES:
        df = lake.read(spark, "bronze", t).where(F.col("_logical_date") == F.lit(day))
        cols = [c for c in df.columns if c not in WALL_CLOCK]
        out[t] = sorted((tuple(r) for r in df.select(*cols).collect()), key=repr)
    return out


def test_bronze_web_run_rerun_and_unchanged_day(spark, settings, server, tmp_path):
    from pyspark.sql import functions as F

    from redcloud.stages import bronze_web

    d1, d2 = dt.date(2031, 3, 3), dt.date(2031, 3, 4)
    s = settings_for(tmp_path, settings)
    ctx1, ctx2 = make_ctx(s, d1, spark), make_ctx(s, d2, spark)
    lake = ctx1.lake
    # every known article asked again daily here (the default asks one day in 7: the test below)
    kw = dict(base_url=server.base, state_dir=str(tmp_path / "state"), page_size=3,
              client_options=dict(min_interval=0.0, backoff_base=0.01, article_recheck_days=1))
    before = server.stats()
    res1 = bronze_web.run(ctx1, **kw)["tables"]
    d = _delta(before, server.stats())
    assert d["/api/penalties?page=2&page_size=3"] == [503, 503, 200]
    by = {r["source"]: r for r in res1}
    assert by["web.penalties"] == dict(source="web.penalties", table="bronze/web__penalties", rows=5,
                                       pages_fetched=2, pages_unchanged=0, records=5, retries=2)
    assert (by["web.enforcement"]["records"], by["web.enforcement"]["pages_fetched"]) == (5, 2)
    assert (by["web.news"]["records"], by["web.news"]["pages_fetched"]) == (4, 2 + 4)

    pen = lake.read(spark, "bronze", "web__penalties").where(F.col("_logical_date") == F.lit(d1))
    rows = {r["notice_id"]: r for r in pen.collect()}
    assert pen.count() == 5 and set(rows) == {p["notice_id"] for p in PENALTIES}  # the retried page: once
    assert all(dict(pen.dtypes)[c] == "string" for c in bronze_web.data_columns("penalties"))
    r4 = rows["CF0000004"]
    assert (r4["party_name"], r4["reason"], r4["amount_yuan"]) == ("张伟", "违规占用耕地", "15000.0")
    assert r4["_url"] == f"{server.base}/api/penalties?page=2&page_size=3" and r4["_fetched_at"] is not None
    assert rows["CF0000001"]["_url"] == f"{server.base}/api/penalties?page=1&page_size=3"
    assert (r4["_source"], r4["_batch_id"], r4["_op"]) == ("web.penalties", "web.penalties@2031-03-03", "U")
    assert r4["_extra"] is None and len(r4["_row_hash"]) == 64

    news = {r["news_id"]: r for r in lake.read(spark, "bronze", "web__news")
            .where(F.col("_logical_date") == F.lit(d1)).collect()}
    assert {k: (v["title"], v["published_date"], v["body"]) for k, v in news.items()} == {
        n["news_id"]: (n["title"], n["published_date"], n["body"]) for n in NEWS}
    assert news["XW000002"]["_url"] == f"{server.base}/news/XW000002.html"
    enf = lake.read(spark, "bronze", "web__enforcement").where(F.col("_logical_date") == F.lit(d1))
    assert sorted(r["case_no"] for r in enf.collect()) == sorted(e["case_no"] for e in ENFORCEMENT)

    raw = lake.read(spark, "bronze", "web__raw_pages").where(F.col("_logical_date") == F.lit(d1)).collect()
    assert len(raw) == 2 + 2 + 6 and all(r["status"] == 200 and r["body"] and r["etag"] for r in raw)
    assert {r["dataset"] for r in raw} == {"penalties", "enforcement", "news"}
    page2 = next(r for r in raw if r["url"].endswith("/api/penalties?page=2&page_size=3"))
    assert [i["notice_id"] for i in json.loads(page2["body"])["items"]] == ["CF0000004", "CF0000005"]

    # rerun of the same date: same bronze content (the plan's 503s are used up, so no retries now)
    snap1 = _content(spark, lake, d1)
    res1b = bronze_web.run(ctx1, **kw)["tables"]
    assert [r["records"] for r in res1b] == [5, 5, 4]
    assert _content(spark, lake, d1) == snap1

    # the next date: conditional requests, every page 304, no records, nothing new
    before = server.stats()
    res2 = bronze_web.run(ctx2, **kw)["tables"]
    d = _delta(before, server.stats())
    assert {u: s for u, s in d.items() if u != "/robots.txt"} == {r["url"][len(server.base):]: [304] for r in raw}
    assert [(r["records"], r["pages_unchanged"] == r["pages_fetched"]) for r in res2] == [(0, True)] * 3
    snap2 = _content(spark, lake, d2)
    assert [len(snap2[t]) for t in TABLES] == [10, 0, 0, 0]
    raw2 = lake.read(spark, "bronze", "web__raw_pages").where(F.col("_logical_date") == F.lit(d2)).collect()
    assert all(r["status"] == 304 and r["body"] is None for r in raw2)
    assert _content(spark, lake, d1) == snap1  # the earlier date is untouched

    state = tmp_path / "state"
    assert sorted(p.name for p in state.iterdir()) == [
        "validators-2031-03-03.base.json", "validators-2031-03-03.json",
        "validators-2031-03-04.base.json", "validators-2031-03-04.json"]
