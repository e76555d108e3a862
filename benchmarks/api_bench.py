"""API point-read benchmark on loopback, with the DuckDB query alone as the reference, in one run.

    .run/venv/pipeline/bin/python benchmarks/api_bench.py [--requests 2000] [--seconds 8] [--clients 1,4,16]

Against the current serving snapshot (``[serving] duckdb_dir``; publish one first). Starts its own
uvicorn process (the same command as ``redcloud services up --all``: ``[api] workers`` workers, or
``--workers``) on a free loopback port, creates a JWT scoped to the county with the most members, then
measures ``GET /api/v1/members/{id}`` for that county's members:

1. cold: the first read of each of ``--requests`` distinct ids, one keep-alive connection (every worker
   still has to read the row from DuckDB: the snapshot's point-read cache is empty);
2. for each of ``--clients`` (1, 4, 16): that many keep-alive connections sending as fast as they are
   answered for ``--seconds``: p50/p99 latency and requests/s (warm: rows read before come from the
   snapshot's point-read cache, ``[api] row_cache_size``);
3. the exact SQL the endpoint runs, on a DuckDB cursor of the same snapshot file, for the same ids:
   p50/p99 and queries/s (what a read costs without the API and without its cache).

The clients are plain sockets in threads of this process (a request is a prepared byte string, a
response is read by its Content-Length), so the client's own cost stays small beside the server's;
client and server still share the machine's cores.

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


class Conn:
    """One keep-alive HTTP/1.1 connection that sends GETs and reads each response by Content-Length."""

    def __init__(self, port: int, headers: dict[str, str]):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.head = "".join(f"{k}: {v}\r\n" for k, v in {"Host": f"127.0.0.1:{port}", **headers}.items())
        self.buf = b""

    def get(self, path: str) -> tuple[int, bytes]:
        self.sock.sendall(f"GET {path} HTTP/1.1\r\n{self.head}\r\n".encode())
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next((int(x.split(b":", 1)[1]) for x in lines[1:] if x.lower().startswith(b"content-length:")), 0)
        while len(self.buf) < length:
            self._recv()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body

    def _recv(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def load(port: int, headers: dict, ids: list[int], clients: int, seconds: float) -> dict:
    """``clients`` connections, each sending the next request as soon as the last is answered."""
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    stop = threading.Event()

    def worker(k: int) -> None:
        rng = random.Random(k)
        c = Conn(port, headers)
        try:
            while not stop.is_set():
                t = time.perf_counter()
                status, _ = c.get(f"/api/v1/members/{rng.choice(ids)}")
                lat[k].append(time.perf_counter() - t)
                errors[k] += status != 200
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(60)
    wall = time.perf_counter() - t0
    xs = [x for per in lat for x in per]
    return {"clients": clients, "seconds": seconds, **summary_ms(xs), "errors": sum(errors),
            "requests_per_s": round(len(xs) / wall, 1)}


def main(argv=None) -> int:
    from redcloud.api import auth
    from redcloud.config import get_settings
    from redcloud.serving import snapshot

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000, help="distinct ids read cold, and by DuckDB alone")
    ap.add_argument("--seconds", type=float, default=8, help="duration of each concurrency level")
    ap.add_argument("--clients", default="1,4,16", help="concurrency levels, comma-separated")
    ap.add_argument("--workers", type=int, default=0, help="uvicorn workers (default: [api] workers)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    a = ap.parse_args(argv)
    settings = get_settings()
    workers = a.workers or max(1, settings.api.workers)
    levels = [int(x) for x in a.clients.split(",") if x.strip()]

    path = snapshot.Snapshots(settings.serving).resolve_current()
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
    seq = rng.sample(ids, min(a.requests, len(ids)))

    # -- reference: DuckDB alone, same SQL, same ids, same snapshot file
    cur = con.cursor()
    for i in seq[:100]:
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
    port = _free_port()
    work = Path(settings.paths.run_dir) / "bench"  # server log and audit trail stay out of the repo
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "REDCLOUD_API__PORT": str(port),
           "REDCLOUD_API__AUDIT_LOG": str(work / "api_bench_audit.jsonl")}
    log = open(work / "api_bench_server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "redcloud.api.app:create_app",
                             "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
                             "--no-access-log", "--log-level", "warning"],
                            cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    headers = {"Authorization": "Bearer " + auth.create_token(county, "benchmark")}
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"API did not start; see {work / 'api_bench_server.log'}")
            time.sleep(0.2)
        time.sleep(1.0 if workers > 1 else 0)   # let every worker finish starting
        # cold: each id once (a new connection per worker is not guaranteed; the kernel spreads them)
        cold = []
        c = Conn(port, headers)
        try:
            t0 = time.perf_counter()
            for i in seq:
                t = time.perf_counter()
                status, body = c.get(f"/api/v1/members/{i}")
                cold.append(time.perf_counter() - t)
                if status != 200:
                    raise RuntimeError(f"{status} {body[:200]!r}")
            cold_rps = len(seq) / (time.perf_counter() - t0)
        finally:
            c.close()
        levels_out = [load(port, headers, ids, n, a.seconds) for n in levels]
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()

    cold_s, db_s = summary_ms(cold), summary_ms(db_lat)
    by = {x["clients"]: x for x in levels_out}
    result = {
        "benchmark": "api_point_read", "endpoint": "GET /api/v1/members/{member_id}",
        "at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "snapshot_id": sid, "snapshot_file_mb": round(path.stat().st_size / 1e6, 1),
        "members_total": total_members, "scope_org_id": county, "members_in_scope": n_members,
        "workers": workers, "row_cache_size": settings.api.row_cache_size,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "api_cold": {**cold_s, "requests_per_s": round(cold_rps, 1)},
        "api_concurrent": levels_out,
        # the one-client figures under the name the scale benchmark (benchmarks/run.py) reads
        "api_sequential": by.get(1) or {**cold_s, "requests_per_s": round(cold_rps, 1)},
        "duckdb_alone": {**db_s, "queries_per_s": round(db_qps, 1)},
        "target": {"clients": 4, "requests_per_s": 1000, "p99_ms": 10,
                   "met": bool(by.get(4) and by[4]["requests_per_s"] >= 1000 and by[4]["p99_ms"] < 10)},
        "notes": f"{workers} uvicorn worker(s) (uvloop, httptools); socket clients in threads of the benchmark "
                 "process on the same cores; every API request verifies the JWT, checks the scope org, masks "
                 "names and appends its audit line before the response is sent",
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"api_bench_{sid}_{dt.datetime.now():%Y%m%dT%H%M%S}"
    (out / f"{stem}.json").write_text(json.dumps(result, ensure_ascii=False, indent=1))

    def row(name: str, x: dict, per_s: float) -> str:
        return f"| {name} | {x['n']} | {x['p50_ms']} | {x['p90_ms']} | {x['p99_ms']} | {per_s} |"

    md = [f"# API point-read benchmark ({result['at']})", "",
          f"Snapshot `{sid}` ({result['snapshot_file_mb']} MB, {total_members} members); caller scoped to org "
          f"{county} ({n_members} members); {os.cpu_count()} CPUs; {workers} API worker(s); "
          f"`{result['endpoint']}`.", "",
          "| measure | n | p50 ms | p90 ms | p99 ms | per second |", "|---|---|---|---|---|---|",
          row("API cold (first read of each id), 1 client", cold_s, result["api_cold"]["requests_per_s"]),
          *[row(f"API warm, {x['clients']} client(s), {a.seconds:g} s", x, x["requests_per_s"])
            for x in levels_out],
          row("DuckDB query alone (same SQL, same ids)", db_s, round(db_qps, 1)), "",
          f"Target (issue: ≥ 1,000 req/s with p99 < 10 ms at 4 clients): "
          f"{'met' if result['target']['met'] else 'not met'}.", "", result["notes"] + ".", ""]
    (out / f"{stem}.md").write_text("\n".join(md))
    print("\n".join(md))
    print(f"results: {out / stem}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
