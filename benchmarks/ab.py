"""Before/after figures for the speed changes, both sides measured in the same process and run.

Each case times the old way (A) and the new way (B) of one step on a benchmark city's lake and
sources, alternating A and B ``--repeat`` times (so a machine that gets busier mid-run hurts both),
checks that both give the same result, and reports the medians and the ratio A / B.

    .run/venv/pipeline/bin/python -m benchmarks.ab --scale 300000 --history-months 3

Cases:

- ``source_keys``: delete detection reads every primary key of a source table. A = one SQLAlchemy
  query into Python lists, then Arrow into Spark (before); B = Spark JDBC in 4 key ranges (now,
  for tables above ``[sources] jdbc_row_threshold``). Table: the city's largest.
- ``silver_empty_batch``: silver for a logical date whose bronze batch of an entity is empty. A = the
  full path (build, validate, dedupe against silver, MERGE, quarantine rewrite, counts; before);
  B = the empty-batch path (now). Rerunning a date is idempotent, so both leave the lake as it was.
- ``identity_news``: linking news articles to cadres whose name and unit both occur in the text.
  A = ``instr`` over every (article, cadre) pair, a nested loop growing with articles x cadres
  (before); B = an equi-join on the text's substrings of each name length (now).
- ``identity_inputs``: the identity stage on the lake as it stands (its writes are skipped: the
  links are those already there). A = every input cached for the stage, the 数据铁笼 tables with
  all their columns (before); B = only members, cadres and organisations cached, the others read
  once for the columns linking needs (now).
- ``marts_write`` (not in the default list; needs the marts built): the incremental marts
  rewritten over their whole period range, as a daily run does when a member's record changed.
  A = a MERGE on the unique key restricted to the range, deleting what the batch no longer has
  (before); B = Delta's ``insert into ... replace where <range>`` (now). Figures: dbt's node
  seconds of the four models.
- ``test_scope`` (not in the default list; needs the marts built): the data tests of the
  incremental marts (``redcloud.marts.INCREMENTAL_INPUTS``: four until 2026-12-07, five with
  ``mart_power_operation_monthly``, six with ``mart_vitality_by_unit``) on a daily run (the logical
  date's period rewritten). A = every test reads the
  whole mart (before); B = the row-level and key tests read the rewritten range
  (``dbt_project/macros/tested_rows.sql``, now). Figures: dbt's node seconds of the tests.
- ``web_recheck`` (not in the default list): the news crawl the day after a full crawl against the
  city's web server, at the client's 50 ms politeness interval. A = every known article asked
  again (before); B = one day in 7 (now). Same list pages and no changed page either way.

Needs the benchmark's lake and PostgreSQL databases (``python -m benchmarks.run`` for that scale first).
Writes ``benchmarks/results/ab_<label>_<time>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.run import _bench_env, bench_label  # noqa: E402


def _alternate(a, b, repeat: int) -> tuple[list[float], list[float], object, object]:
    ta, tb, ra, rb = [], [], None, None
    for _ in range(repeat):
        for fn, times, slot in ((a, ta, "a"), (b, tb, "b")):
            t0 = time.perf_counter()
            r = fn()
            times.append(time.perf_counter() - t0)
            if slot == "a":
                ra = r
            else:
                rb = r
    return ta, tb, ra, rb


def case_source_keys(spark, repeat: int) -> dict:
    import sqlalchemy as sa

    from redcloud.config import get_settings
    from redcloud.contracts import PRIMARY_KEYS, SYSTEMS
    from redcloud.sources import orgdb

    s = get_settings()
    url = s.source_url("app")
    eng = orgdb.engine(url)
    sizes = {}
    with eng.connect() as conn:
        for table in SYSTEMS["app"]:
            sizes[table] = conn.execute(sa.text(f"select count(*) from {table}")).scalar()
    eng.dispose()
    table = max(sizes, key=sizes.get)

    def keys(threshold):
        return lambda: orgdb.source_keys(spark, url, table, jdbc_threshold=threshold).agg(
            {PRIMARY_KEYS[table]: "sum"}).first()[0]

    ta, tb, ra, rb = _alternate(keys(10**12), keys(0), repeat)
    return dict(case="source_keys", what=f"every key of app.{table} ({sizes[table]:,} rows) into a Spark DataFrame",
                a="SQLAlchemy query -> Python list -> Arrow -> Spark (before)",
                b="Spark JDBC, 4 primary-key ranges (now)", a_s=ta, b_s=tb, same_result=ra == rb)


def case_silver_empty_batch(spark, repeat: int, day: dt.date) -> dict:
    from pyspark.sql import functions as F

    from redcloud.config import get_settings
    from redcloud.context import RunContext
    from redcloud.stages import silver
    from spark_jobs.silver.entities import ENTITIES

    ctx = RunContext.create(day, get_settings(), spark=spark)
    lake = ctx.lake
    key = get_settings().secrets.pseudonym_key_bytes()
    empty = [e for e in ENTITIES if lake.exists("bronze", e.source) and lake.exists("silver", e.name)
             and lake.read(spark, "bronze", e.source).where(F.col("_logical_date") == F.lit(day)).limit(1).count() == 0]
    if not empty:
        return dict(case="silver_empty_batch", skipped=f"no entity has an empty bronze batch on {day}")
    refs = silver.reference_frames(spark, lake, day)
    for df in refs.values():
        df.count()

    def run(skip):
        def go():
            return [silver.run_entity(ctx, e, refs, key, skip_empty=skip)["rows"] for e in empty]
        return go

    ta, tb, ra, rb = _alternate(run(False), run(True), repeat)
    for df in refs.values():
        df.unpersist()
    return dict(case="silver_empty_batch", what=f"silver for {day} of the {len(empty)} entities with an empty batch "
                f"({', '.join(e.name for e in empty)})",
                a="full path: build, validate, dedupe, MERGE, quarantine rewrite, counts (before)",
                b="empty-batch path: quarantine slice cleared, silver untouched (now)", a_s=ta, b_s=tb,
                same_result=ra == rb)


def case_identity_news(spark, repeat: int) -> dict:
    from pyspark.sql import functions as F

    from redcloud.config import get_settings
    from redcloud.lake import Lake
    from spark_jobs import identity as I

    lake = Lake(get_settings().paths.lake_root)
    rd = {n: lake.read(spark, "silver", n).persist() for n in ("members", "cadres", "organizations", "news")}
    county, label = I._org_frames(rd["organizations"])
    m = I.member_frame(rd["members"], county)
    cad = I.cadre_frame(rd["cadres"], I.link_cadres(rd["cadres"], m), county, label).persist()
    n_cad, news = cad.count(), rd["news"]

    def nested_loop():  # the implementation before: instr() over every (article, cadre) pair
        r = news.select(F.lit("web_news").alias("source"), F.col("news_id").cast("string").alias("source_key"),
                        F.concat_ws("\n", F.col("title"), F.col("body")).alias("text"))
        cs = cad.where((F.length("name") >= 2) & F.col("unit_label").isNotNull() & (F.length("unit_label") >= 2)) \
            .select("name", "unit_label", "cand")
        hits = r.join(F.broadcast(cs), (F.instr(r.text, cs.name) > 0) & (F.instr(r.text, cs.unit_label) > 0))
        return sorted(map(repr, I.resolve(r, hits.select("source", "source_key", "cand"), "name_text").collect()))

    def substring_join():
        return sorted(map(repr, I.link_news(news, cad).collect()))

    ta, tb, ra, rb = _alternate(nested_loop, substring_join, repeat)
    for df in [cad, *rd.values()]:
        df.unpersist()
    return dict(case="identity_news", what=f"link {news.count():,} news articles to {n_cad:,} cadres by name + unit in the text",
                a="instr() over every (article, cadre) pair: a nested loop (before)",
                b="equi-join on the text's substrings of each name length (now)", a_s=ta, b_s=tb, same_result=ra == rb)


def case_identity_inputs(spark, repeat: int, day: dt.date) -> dict:
    from redcloud.config import get_settings
    from redcloud.context import RunContext
    from redcloud.stages import identity

    ctx = RunContext.create(day, get_settings(), spark=spark)

    def run(persist):
        def go():
            r = identity.run(ctx, persist=persist)
            return r["links"], [t["rows"] for t in r["tables"]], ctx.lake.version("silver", "person_links")
        return go

    ta, tb, ra, rb = _alternate(run(identity.INPUTS), run(identity.SHARED), repeat)
    n_links = ra[1][0]   # rows of silver/person_links
    return dict(case="identity_inputs", what=f"identity stage, {n_links:,} links (writes skipped: unchanged)",
                a="every input cached, the 数据铁笼 tables whole (before)",
                b="members, cadres, organisations cached; the rest read once (now)", a_s=ta, b_s=tb,
                same_result=ra == rb)


def _with_vars(extra: dict):
    """``redcloud.marts._common_args`` with ``extra`` added to dbt's ``--vars``."""
    from redcloud import marts

    orig = marts._common_args

    def args(st, d, ch=None, bases=None):
        a = orig(st, d, ch, bases)
        i = a.index("--vars")
        a[i + 1] = json.dumps({**json.loads(a[i + 1]), **extra})
        return a
    return args


def case_marts_write(spark, repeat: int, day: dt.date) -> dict:
    """The incremental marts rewritten over their whole period range (what a daily run does when a
    member's record changed: :func:`redcloud.marts.changed_from` gives the start of history for the
    composition mart), as a MERGE (A) and as Delta's ``insert into ... replace where`` (B). Each
    repetition runs ``dbt build`` of the marts and their parents (staging views, tests alongside);
    the figure is the sum of dbt's node seconds of the marts' models."""
    from redcloud import marts
    from redcloud.config import get_settings
    from redcloud.lake import Lake

    s = get_settings()
    names = sorted(marts.INCREMENTAL_INPUTS)
    lake = Lake(s.paths.lake_root)
    missing = [n for n in names if not lake.exists("marts", n)]
    if missing:
        return dict(case="marts_write", skipped=f"marts not built in this lake: {', '.join(missing)}")
    changed = {n: marts.FROM_START.isoformat() for n in names}
    orig = marts._common_args

    def checksum():
        out = {}
        for n in names:
            r = spark.sql(f"select count(*) n, sum(cast(xxhash64(to_json(struct(*))) as decimal(38, 0))) h from delta.`{lake.path('marts', n)}`").first()
            out[n] = (int(r["n"]), int(r["h"] or 0))
        return out

    def build(mode):
        def go():
            marts._common_args = _with_vars({"marts_write": mode})
            try:
                res = marts.build(spark, day, s, select=[f"+{n}" for n in names], changed=changed)
            finally:
                marts._common_args = orig
            go.seconds.append(round(sum(n["seconds"] for n in res["nodes"] if n["type"] == "model"), 2))
            return checksum()
        go.seconds = []
        return go

    a, b = build("merge"), build("replace_where")
    _, _, ra, rb = _alternate(a, b, repeat)
    rows = {n: v[0] for n, v in rb.items()}
    return dict(case="marts_write", what=f"the {len(names)} incremental marts over their whole range on {day} "
                f"({', '.join(f'{n} {r:,} rows' for n, r in rows.items())}); dbt's node seconds of the {len(names)} models",
                a="MERGE on the unique key, range-restricted, delete when not matched by source (before)",
                b="insert into ... replace where <range> (now)", a_s=a.seconds, b_s=b.seconds, same_result=ra == rb)


def case_test_scope(spark, repeat: int, day: dt.date) -> dict:
    """The data tests of the incremental marts on a daily run (each repetition: ``dbt build`` of
    the marts and their parents, which rewrites the logical date's period), every test reading the
    whole mart (A) or the rewritten range (B); the figure is the sum of dbt's node seconds of the tests."""
    from redcloud import marts
    from redcloud.config import get_settings
    from redcloud.lake import Lake

    s = get_settings()
    names = sorted(marts.INCREMENTAL_INPUTS)
    missing = [n for n in names if not Lake(s.paths.lake_root).exists("marts", n)]
    if missing:
        return dict(case="test_scope", skipped=f"marts not built in this lake: {', '.join(missing)}")
    orig = marts._common_args

    def build(scope):
        def go():
            marts._common_args = _with_vars({"test_scope": scope})
            try:
                res = marts.build(spark, day, s, select=[f"+{n}" for n in names])
            finally:
                marts._common_args = orig
            tests = [n for n in res["nodes"] if n["type"] == "test" and n["tested"] in names]
            go.seconds.append(round(sum(n["seconds"] for n in tests), 2))
            return sorted((n["name"], n["status"]) for n in tests)
        go.seconds = []
        return go

    a, b = build("all"), build("rewritten")
    _, _, ra, rb = _alternate(a, b, repeat)
    return dict(case="test_scope", what=f"the {len(rb)} data tests of the {len(names)} incremental marts on a daily run "
                f"for {day}; dbt's node seconds of the tests", a="every test reads the whole mart (before)",
                b="row-level and key tests read the rewritten range (now)", a_s=a.seconds, b_s=b.seconds,
                same_result=ra == rb)


def case_web_recheck(repeat: int, day: dt.date, scale: int) -> dict:
    """The news crawl of the day after a full crawl, with the client's default politeness interval,
    against the benchmark city's web server: A asks every known article again (before), B one day in
    7 (now, ``[sources] web_article_recheck_days``). Figures: wall seconds and requests sent."""
    import subprocess

    from benchmarks.run import BENCH, SEED, _free_port
    from redcloud.config import get_settings
    from redcloud.services import procs
    from redcloud.sources.web_client import ValidatorStore, WebClient

    web = Path(get_settings().paths.synth_dir) / f"scale-{scale}-seed-{SEED}" / "web"
    if not web.is_dir():
        return dict(case="web_recheck", skipped=f"no city web data in {web} (run benchmarks.run for this scale)")
    port = _free_port()
    log = BENCH / f"ab_web_{port}.log"
    srv = subprocess.Popen([sys.executable, "-m", "redcloud.demo.web_server", "--data-dir", str(web), "--port",
                            str(port), "--seed", str(SEED), "--fault-rate", "0", "--slow-rate", "0"],
                           cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    try:
        procs.wait_for_port("127.0.0.1", port, 30, "web server", log)
        base = f"http://127.0.0.1:{port}"
        with WebClient(base) as c:
            t0 = time.perf_counter()
            first = list(c.iter_news())
            first_s, first_n = time.perf_counter() - t0, c.requests_sent
            state = ValidatorStore(c.validators.entries)
        sent = {}

        def crawl(n):
            def go():
                with WebClient(base, validators=ValidatorStore(state.entries), article_recheck_days=n,
                               today=day + dt.timedelta(days=1)) as c:
                    pages = list(c.iter_news())
                    sent[n] = c.requests_sent
                    return (sorted(p.url for p in pages if p.kind == "list"),
                            sorted(p.url for p in pages if not p.unchanged))
            return go

        ta, tb, ra, rb = _alternate(crawl(1), crawl(7), repeat)
    finally:
        srv.terminate()
        srv.wait(10)
    articles = sum(p.kind == "article" for p in first)
    return dict(case="web_recheck", what=f"the news crawl the day after a full one ({articles:,} articles; the full "
                f"crawl: {first_n:,} requests, {first_s:.1f} s), 50 ms between requests",
                a=f"every known article asked again: {sent[1]:,} requests (before)",
                b=f"known articles one day in 7: {sent[7]:,} requests (now)", a_s=ta, b_s=tb,
                same_result=ra == rb)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", type=int, default=10000)
    ap.add_argument("--history-months", type=int, default=0)
    ap.add_argument("--date", default="2025-12-31", help="the logical date of the lake's daily run")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cases", default="source_keys,silver_empty_batch,identity_news")
    ap.add_argument("--driver-memory", help="Spark driver memory (default: the settings', 4g)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = ap.parse_args(argv)
    os.environ.update(_bench_env(args.scale, args.history_months, args.driver_memory))
    from redcloud.spark import get_spark

    spark = get_spark()
    day = dt.date.fromisoformat(args.date)
    results = []
    for case in args.cases.split(","):
        print(f"== {case}", flush=True)
        r = {"source_keys": lambda: case_source_keys(spark, args.repeat),
             "silver_empty_batch": lambda: case_silver_empty_batch(spark, args.repeat, day),
             "identity_news": lambda: case_identity_news(spark, args.repeat),
             "identity_inputs": lambda: case_identity_inputs(spark, args.repeat, day),
             "marts_write": lambda: case_marts_write(spark, args.repeat, day),
             "test_scope": lambda: case_test_scope(spark, args.repeat, day),
             "web_recheck": lambda: case_web_recheck(args.repeat, day, args.scale)}[case]()
        if "a_s" in r:
            r["a_median_s"], r["b_median_s"] = round(statistics.median(r["a_s"]), 3), round(statistics.median(r["b_s"]), 3)
            r["ratio"] = round(r["a_median_s"] / r["b_median_s"], 2)
            print(f"   A {r['a_median_s']} s, B {r['b_median_s']} s, A/B {r['ratio']}x, same result: {r['same_result']}",
                  flush=True)
        results.append(r)
    label = bench_label(args.scale, args.history_months)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    doc = dict(at=dt.datetime.now().isoformat(timespec="seconds"), scale=args.scale, history_months=args.history_months,
               date=args.date, repeat=args.repeat, load_end=os.getloadavg(), cpus=os.cpu_count(), cases=results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"ab_{label}_{stamp}.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1))
    lines = [f"# Before / after, {args.scale:,} members" + (f" ({args.history_months}-month history)" if args.history_months else ""),
             "", f"`python -m benchmarks.ab --scale {args.scale} --history-months {args.history_months}` at {doc['at']}, "
             f"{args.repeat} alternating repetitions, medians; 1-min load average at the end {doc['load_end'][0]:.1f} "
             f"on {doc['cpus']} cores.", "",
             "| case | what | A (before) | B (now) | A s | B s | A / B | same result |", "|---|---|---|---|---:|---:|---:|---|"]
    for r in results:
        if "a_s" in r:
            lines.append(f"| {r['case']} | {r['what']} | {r['a']} | {r['b']} | {r['a_median_s']} | {r['b_median_s']} | "
                         f"{r['ratio']}× | {'yes' if r['same_result'] else 'NO'} |")
        else:
            lines.append(f"| {r['case']} | {r.get('skipped')} | | | | | | |")
    (args.out / f"ab_{label}_{stamp}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if all(r.get("same_result", True) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
