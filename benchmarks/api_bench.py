"""API point-read benchmark on loopback, with the DuckDB query alone as the reference, in one run.

    .run/venv/pipeline/bin/python benchmarks/api_bench.py [--requests 2000] [--seconds 10] [--clients 4]

Against the current serving snapshot (``[serving] duckdb_dir``; publish one first). Starts its own
uvicorn process (the same command as ``redcloud services up --all``, one worker) on a free loopback
port, creates a JWT scoped to the county with the most members, then measures:

1. ``GET /api/v1/members/{id}`` sequentially over one keep-alive connection: p50/p90/p99 latency;
2. the same endpoint from ``--clients`` concurrent keep-alive clients for ``--seconds``: requests/s;
3. the exact SQL the endpoint runs, on a DuckDB cursor of the same snapshot file, for the same ids:
   p50/p99 and queries/s (the floor the API adds HTTP, auth, JSON, masking and the audit write to).

Writes ``benchmarks/results/api_bench_<snapshot>_<time>.json`` and a ``.md`` summary next to it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MEMBER_SQL = "select * from dim_member where member_id = ?"  # what the endpoint runs (scope checked in memory)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def summary_ms(xs: list[float]) -> dict:
    return {"n": len(xs), "p50_ms": round(pct(xs, 50) * 1e3, 3), "p90_ms": round(pct(xs, 90) * 1e3, 3),
            "p99_ms": round(pct(xs, 99) * 1e3, 3), "mean_ms": round(statistics.fmean(xs) * 1e3, 3),
            "max_ms": round(max(xs) * 1e3, 3)}


def main(argv=None) -> int:
    import httpx

    from redcloud.api import auth
    from redcloud.serving import snapshot

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    a = ap.parse_args(argv)

    from redcloud.config import get_settings

    path = snapshot.Snapshots(get_settings().serving).resolve_current()
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    sid = snapshot.read_stamp(con)["snapshot_id"]
    county, n_members = con.execute(
        """select o.org_id, count(*) from dim_member m join dim_organization mo using (org_id),
           dim_organization o where o.depth = 1 and list_contains(mo.path, o.org_id)
           group by 1 order by 2 desc limit 1""").fetchone()
    ids = [r[0] for r in con.execute(
        """select m.member_id from dim_member m join dim_organization o using (org_id)
           where list_contains(o.path, ?)""", [county]).fetchall()]
    total_members = con.execute("select count(*) from dim_member").fetchone()[0]
    rng = random.Random(7)
    seq = [rng.choice(ids) for _ in range(a.requests)]

    # -- reference: DuckDB alone, same SQL, same ids, same snapshot file
    cur = con.cursor()
    for i in seq[:200]:
        cur.execute(MEMBER_SQL, [i]).fetchall()
    db_lat = []
    t0 = time.perf_counter()
    for i in seq:
        t = time.perf_counter()
        res = cur.execute(MEMBER_SQL, [i])
        cols = [d[0] for d in res.description]
        [dict(zip(cols, r)) for r in res.fetchall()]
        db_lat.append(time.perf_counter() - t)
    db_qps = len(seq) / (time.perf_counter() - t0)
    cur.close()
    con.close()

    # -- the API process
    from redcloud.config import get_settings

    port = _free_port()
    work = Path(get_settings().paths.run_dir) / "bench"  # server log and audit trail stay out of the repo
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "REDCLOUD_API__PORT": str(port),
           "REDCLOUD_API__AUDIT_LOG": str(work / "api_bench_audit.jsonl")}
    log = open(work / "api_bench_server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "redcloud.api.app:create_app",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--no-access-log",
                             "--log-level", "warning"], cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API did not start; see {work / 'api_bench_server.log'}")
            time.sleep(0.2)
        headers = {"Authorization": "Bearer " + auth.create_token(county, "benchmark")}
        base = f"http://127.0.0.1:{port}"
        api_lat = []
        with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
            for i in seq[:200]:
                assert c.get(f"/api/v1/members/{i}").status_code == 200
            t0 = time.perf_counter()
            for i in seq:
                t = time.perf_counter()
                r = c.get(f"/api/v1/members/{i}")
                api_lat.append(time.perf_counter() - t)
                if r.status_code != 200:
                    raise RuntimeError(f"{r.status_code} {r.text[:200]}")
            seq_rps = len(seq) / (time.perf_counter() - t0)

        counts, errors = [0] * a.clients, [0] * a.clients
        stop = threading.Event()

        def worker(k: int):
            r_ = random.Random(k)
            with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
                while not stop.is_set():
                    resp = c.get(f"/api/v1/members/{r_.choice(ids)}")
                    if resp.status_code == 200:
                        counts[k] += 1
                    else:
                        errors[k] += 1

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(a.clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        time.sleep(a.seconds)
        stop.set()
        for t in threads:
            t.join(60)
        conc_rps = sum(counts) / (time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()

    api_s, db_s = summary_ms(api_lat), summary_ms(db_lat)
    result = {
        "benchmark": "api_point_read", "endpoint": "GET /api/v1/members/{member_id}",
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "snapshot_id": sid, "snapshot_file_mb": round(path.stat().st_size / 1e6, 1),
        "members_total": total_members, "scope_org_id": county, "members_in_scope": n_members,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "api_sequential": {**api_s, "requests_per_s": round(seq_rps, 1)},
        "api_concurrent": {"clients": a.clients, "seconds": a.seconds, "requests": sum(counts),
                           "errors": sum(errors), "requests_per_s": round(conc_rps, 1)},
        "duckdb_alone": {**db_s, "queries_per_s": round(db_qps, 1)},
        "api_overhead_p50_ms": round(api_s["p50_ms"] - db_s["p50_ms"], 3),
        "notes": "one uvicorn worker; client and server share the machine's cores; every API request also "
                 "verifies the JWT, checks the scope org, masks names and appends an audit line",
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"api_bench_{sid}_{dt.datetime.now():%Y%m%dT%H%M%S}"
    (out / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))
    md = [f"# API point-read benchmark ({result['at']})", "",
          f"Snapshot `{sid}` ({result['snapshot_file_mb']} MB, {total_members} members); caller scoped to org "
          f"{county} ({n_members} members); {os.cpu_count()} CPUs; `{result['endpoint']}`.", "",
          "| measure | n | p50 ms | p90 ms | p99 ms | per second |", "|---|---|---|---|---|---|",
          f"| API, sequential, keep-alive | {api_s['n']} | {api_s['p50_ms']} | {api_s['p90_ms']} | {api_s['p99_ms']} "
          f"| {result['api_sequential']['requests_per_s']} |",
          f"| API, {a.clients} concurrent clients, {a.seconds:g} s | {sum(counts)} | | | | {round(conc_rps, 1)} |",
          f"| DuckDB query alone (same SQL, same ids) | {db_s['n']} | {db_s['p50_ms']} | {db_s['p90_ms']} "
          f"| {db_s['p99_ms']} | {round(db_qps, 1)} |", "", result["notes"] + ".", ""]
    (out / f"{stem}.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"results: {out / stem}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
