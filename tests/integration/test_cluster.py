"""The same spark_jobs on a Spark standalone cluster (a master + 2 workers on loopback) give the same
lake as local mode.

The test session's SparkSession is local and shared, so the cluster run happens in a subprocess
whose settings point ``spark.master`` at the cluster and the lake at a copy of the city lake; it
rebuilds gold tables that carry rules' verdicts (在册 and the project lifecycle) for the test city's
last day (the learning fact is left to the local rules test, to keep the suite short). They are then
compared row for row (multiset equality over every column but wall-clock ones) with the city lake's,
built in local mode.
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

ROOT = Path(__file__).resolve().parents[2]
REBUILT = ("dim_member", "fct_project_lifecycle", "fct_project_status")
WALL_CLOCK = {"_loaded_at", "published_at", "computed_at", "scored_at", "generated_at"}  # and *fetched_at

CLUSTER_RUN = r"""
import json, sys
from redcloud.config import get_settings
from redcloud.context import RunContext
from redcloud.stages import gold
ctx = RunContext.create(sys.argv[1], get_settings(), run_id=sys.argv[2])
sc = ctx.spark.sparkContext
summary = {"gold": gold.run(ctx, only=set(sys.argv[3].split(",")))}
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
@pytest.mark.timeout(1800)
def test_gold_on_a_standalone_cluster_matches_local(city_lake, standalone_cluster, tmp_path):
    from lakes import copy_lake

    from redcloud.services.spark_cluster import session_env

    copy = copy_lake(city_lake, tmp_path)
    lake = Path(copy.paths.lake_root)
    before = {name: (lake / "gold" / name / "_delta_log").exists() for name in _tables(lake, "gold")}
    env = {**os.environ, **session_env(standalone_cluster),
           "REDCLOUD_PATHS__RUN_DIR": copy.paths.run_dir, "REDCLOUD_PATHS__LAKE_ROOT": str(lake)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CLUSTER_RUN, city_lake.day.isoformat(), "test__cluster",
                           ",".join(REBUILT)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("CLUSTER_RESULT "))
    res = json.loads(line.split(" ", 1)[1])
    print(f"cluster run: {seconds:.0f}s, {res}")
    # it really ran on the cluster: the master URL, two executors (one per worker), Delta jars shipped
    assert res["master"] == standalone_cluster
    assert res["executors"] == 2
    assert res["delta_jar"]
    produced = sorted(t.rsplit("/", 1)[-1] for t in res["gold"])
    assert produced == sorted(REBUILT) and set(produced) <= set(before), produced
    diffs = {}
    for name in produced:
        d = _diff(city_lake.root / "gold" / name, lake / "gold" / name)
        if not (d["same_columns"] and d["only_local"] == 0 and d["only_cluster"] == 0
                and d["local_rows"] == d["cluster_rows"]):
            diffs[f"gold/{name}"] = d
    assert not diffs, json.dumps(diffs, ensure_ascii=False, indent=1)
    # and the comparison is not vacuous: the gold tables hold rows
    assert _diff(city_lake.root / "gold" / "fct_member_month", lake / "gold" / "fct_member_month")["local_rows"] > 1000
