"""The same spark_jobs on a Spark standalone cluster (a master + 2 workers on loopback) give the same
lake as local mode.

The test session's SparkSession is local and shared, so the cluster run happens in a subprocess
whose settings point ``spark.master`` at the cluster and the lake at its own folder; it runs the
real daily pipeline (bronze -> silver -> gold, PostgreSQL sources, 数据铁笼 landing folder, web
reference server) for the test city's last day. Its silver and gold tables are then compared row
for row (multiset equality over every column but wall-clock ones) with the local run of
``main_lake``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WALL_CLOCK = {"_loaded_at", "published_at", "computed_at", "scored_at", "generated_at"}  # and *fetched_at

CLUSTER_RUN = r"""
import datetime as dt, json, sys
from redcloud import pipeline
from redcloud.spark import get_spark
day = dt.date.fromisoformat(sys.argv[1])
spark = get_spark()
sc = spark.sparkContext
summary = {st: pipeline.run_stage(st, day, sys.argv[2]) for st in ("bronze", "silver", "gold")}
executors = sc._jsc.sc().getExecutorMemoryStatus().size() - 1   # minus the driver
jars = sc.getConf().get("spark.jars", "")
print("CLUSTER_RESULT " + json.dumps({"master": sc.master, "executors": executors,
                                      "delta_jar": "delta-spark" in jars,
                                      "gold": [t["table"] for t in summary["gold"]["tables"]]}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def standalone_cluster():
    """A loopback master + 2 workers (1 core, 1.5 GiB each), stopped afterwards (by PID)."""
    from redcloud.services import spark_cluster

    line = spark_cluster.start(workers=2, cores=1, memory="1536m")
    try:
        url = spark_cluster.master_url()
        assert url and url.startswith("spark://127.0.0.1:"), line
        yield url
    finally:
        spark_cluster.stop()
        assert spark_cluster.master_url() is None


def _tables(root: Path, layer: str) -> list[str]:
    d = root / layer
    return sorted(p.name for p in d.iterdir() if (p / "_delta_log").exists()) if d.exists() else []


def _diff(local: Path, cluster: Path) -> dict:
    """Rows only in one of the two tables (multiset, over every non-wall-clock column), plus counts."""
    import duckdb
    from deltalake import DeltaTable

    con = duckdb.connect()
    con.register("a_arrow", DeltaTable(str(local)).to_pyarrow_table())
    con.register("b_arrow", DeltaTable(str(cluster)).to_pyarrow_table())
    cols_a = [r[0] for r in con.execute("select column_name from (describe a_arrow)").fetchall()]
    cols_b = [r[0] for r in con.execute("select column_name from (describe b_arrow)").fetchall()]
    cols = [c for c in cols_a if c not in WALL_CLOCK and not c.endswith("fetched_at")]
    if "_fetched_at" in cols_a:  # web tables: their _version string embeds the fetch time (and URL)
        cols = [c for c in cols if c != "_version"]

    def canon(c: str) -> str:
        """Doubles to 9 decimals (summation order may differ by partitioning); the web reference
        server's loopback address dropped from provenance URLs (each run serves on a free port)."""
        return (f"case when typeof(\"{c}\") in ('DOUBLE', 'FLOAT') then cast(round(\"{c}\"::double, 9) as varchar) "
                f"else regexp_replace(cast(\"{c}\" as varchar), 'http://127\\.0\\.0\\.1:[0-9]+', 'http://web') end")

    row = " || '|' || ".join(f"coalesce({canon(c)}, '∅')" for c in cols)
    n_a = con.execute("select count(*) from a_arrow").fetchall()[0][0]
    n_b = con.execute("select count(*) from b_arrow").fetchall()[0][0]
    only_a = con.execute(f"select count(*) from (select {row} from a_arrow except all select {row} from b_arrow)").fetchall()[0][0]
    only_b = con.execute(f"select count(*) from (select {row} from b_arrow except all select {row} from a_arrow)").fetchall()[0][0]
    example = None
    if only_a:
        example = con.execute(f"select {row} from a_arrow except all select {row} from b_arrow limit 1").fetchall()[0][0]
    con.close()
    return dict(local_rows=n_a, cluster_rows=n_b, only_local=only_a, only_cluster=only_b,
                same_columns=set(cols_a) == set(cols_b), example=example)


@pytest.mark.slow
@pytest.mark.timeout(3600)  # includes building the session's main_lake when this test uses it first
def test_daily_pipeline_on_standalone_cluster_matches_local(main_lake, city, standalone_cluster, settings):
    from redcloud.services import procs
    from redcloud.services.spark_cluster import session_env
    from redcloud.sources import ironcage_landing

    base = Path(settings.paths.run_dir) / "cluster"
    lake, landing, run_dir = base / "lake", base / "landing", base / "run"
    run_dir.mkdir(parents=True, exist_ok=True)
    ironcage_landing.drop_exports(city, landing)
    port = _free_port()
    weblog = open(base / "web.log", "wb")
    web = subprocess.Popen([sys.executable, "-m", "redcloud.sources.web_server", "--data-dir", str(city / "web"),
                            "--port", str(port), "--seed", "4242", "--fault-rate", "0", "--slow-rate", "0"],
                           cwd=ROOT, stdout=weblog, stderr=subprocess.STDOUT)
    try:
        procs.wait_for_port("127.0.0.1", port, 30, "web server", base / "web.log")
        env = {**os.environ, **session_env(standalone_cluster),
               "REDCLOUD_PATHS__RUN_DIR": str(run_dir), "REDCLOUD_PATHS__LAKE_ROOT": str(lake),
               "REDCLOUD_PATHS__LANDING_DIR": str(landing),
               "REDCLOUD_SOURCES__WEB_BASE_URL": f"http://127.0.0.1:{port}"}
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CLUSTER_RUN, main_lake.day.isoformat(), main_lake.run_id],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        seconds = time.perf_counter() - t0
    finally:
        web.terminate()
        web.wait(10)
        weblog.close()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("CLUSTER_RESULT "))
    res = json.loads(line.split(" ", 1)[1])
    print(f"cluster run: {seconds:.0f}s, {res}")
    # it really ran on the cluster: the master URL, two executors (one per worker), Delta jars shipped
    assert res["master"] == standalone_cluster
    assert res["executors"] == 2
    assert res["delta_jar"]

    # main_lake's gold also holds what later stages of other tests added there (scores, alerts, ...):
    # compare the tables this run of bronze -> silver -> gold made, every one of them
    produced = {layer: _tables(lake, layer) for layer in ("silver", "gold")}
    assert {t.rsplit("/", 1)[-1] for t in res["gold"]} <= set(produced["gold"]), res["gold"]
    assert len(produced["gold"]) >= 5 and len(produced["silver"]) >= 15, produced
    for layer, names in produced.items():
        missing = set(names) - set(_tables(main_lake.root, layer))
        assert not missing, f"{layer} tables only the cluster run made: {missing}"
    diffs = {}
    for layer, names in produced.items():
        for name in names:
            d = _diff(main_lake.root / layer / name, lake / layer / name)
            if not (d["same_columns"] and d["only_local"] == 0 and d["only_cluster"] == 0
                    and d["local_rows"] == d["cluster_rows"]):
                diffs[f"{layer}/{name}"] = d
    assert not diffs, json.dumps(diffs, ensure_ascii=False, indent=1)
    # and the comparison is not vacuous: the gold tables hold rows
    assert _diff(main_lake.root / "gold" / "fct_member_month", lake / "gold" / "fct_member_month")["local_rows"] > 1000
