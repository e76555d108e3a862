"""City-scale benchmarks of the redcloud pipeline (figures, never timed assertions).

One command (what the lead runs on a quiet machine):

    .run/venv/pipeline/bin/python -m benchmarks.run --scales 10000,30000

For each scale a fresh worker process (a fresh JVM and settings) does, in ``.run/bench/<scale>/``:

1. ``generate``: the synthetic city (``redcloud.demo.synth.generate``, reused when identical; say ``--force-generate``)
2. ``load_sources``: the city into PostgreSQL databases dedicated to the benchmark
   (``rc_bench_<scale>_{org,cadre,app}``; reused when the same city is loaded); a web reference
   server for the city on a free port (no injected faults or delays, so timings are the pipeline's)
3. the **rebuild** (phase ``full``): a fresh lake, logical date = city end - 1 day; bronze extracts every
   source row up to that day (no watermark yet), silver and gold derive the whole history (36 months
   of data, or ``--history-months``; gold is a full rebuild per run anyway), the models are trained
   (no champion yet; a ``--history-months`` city starts from a copy of the whole-period city's
   registry when that city was run, so the same champions score both lakes) and the marts are built
   from scratch. This is the documented cheaper equivalent
   of a "12-month rebuild": one from-scratch run over all the history instead of 12 month-end
   backfills (``--rebuild-months 12`` runs the real thing: 12 month-end dates in a separate lake; slow).
4. the **daily incremental run** (phase ``daily``): logical date = city end; bronze extracts by
   ``updated_at`` watermark (the day's changes + tombstones), the last 数据铁笼 daily export is
   dropped only now, silver merges the batch, gold rebuilds, the models re-score with their
   champions, the marts update incrementally, then alerts, publish and brief, via
   ``redcloud.pipeline.run_stage``: the steady state of a production day
5. ``reference_duckdb``: the DuckDB SQL reference of the silver/gold transformations over the same
   bronze tables, timed, with checksums compared to the Spark silver/gold (``benchmarks/reference_duckdb.py``)

Per stage: wall time, CPU time (this process + the JVM and its Python workers, via psutil), peak
RSS (sampled every 0.2 s, process + children), rows/bytes in (the stage's input layer) and out
(tables the stage committed a new Delta version of), files per table, load average before/after.
The parent fits wall = fixed + per_member x members per stage over the scales run and writes
``benchmarks/results/latest.json``, ``benchmarks/results/README.md`` and ``benchmarks/results/stages.png``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BENCH = ROOT / ".run" / "bench"
SEED = 20251231

from redcloud.stages.registry import NAMES as PIPELINE_STAGES  # noqa: E402  (declared once, in order)

REBUILD_STAGES = PIPELINE_STAGES[:3]   # bronze, silver, gold: the layers a full rebuild remakes
# The full phase also trains the models and builds the marts from scratch, so that the daily phase
# measures the steady state (re-scoring with the champions, incremental marts), as in production.
FULL_STAGES = REBUILD_STAGES + ("models", "marts")
# the lake layers a stage reads (rows/bytes in); "sources" = the source systems (reported by bronze)
INPUT_LAYERS = {"silver": ("bronze",), "gold": ("silver",), "models": ("gold",), "marts": ("gold",),
                "alerts": ("gold",), "publish": ("gold", "marts"), "brief": ("gold", "marts")}


# ---------------------------------------------------------------------------------------------
# measurement
# ---------------------------------------------------------------------------------------------

def scratch_lake(settings, src: Path, name: str, layers: tuple[str, ...] = (), **sections):
    """A copy of the lake ``src`` (only ``layers`` when given) under ``.run/bench/<name>``, for a
    benchmark that writes; returns the settings pointing at it (plus ``sections`` changed) and the
    copy's seconds."""
    base = BENCH / name
    shutil.rmtree(base, ignore_errors=True)
    t = time.perf_counter()
    for part in layers or ("",):
        shutil.copytree(src / part, base / "lake" / part, symlinks=True)
    seconds = time.perf_counter() - t
    return settings.replace(paths={"lake_root": str(base / "lake"), "run_dir": str(base / "run")}, **sections), seconds


class Probe:
    """Wall, CPU (process + all descendants) and peak RSS of a block of work."""

    def __init__(self, interval: float = 0.2):
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self._dead_cpu = 0.0   # CPU of descendants seen earlier that have exited since
        self._seen: dict[int, float] = {}

    def _tree(self):
        import psutil

        procs = [self.proc]
        try:
            procs += self.proc.children(recursive=True)
        except psutil.Error:
            pass
        return procs

    def _cpu_rss(self) -> tuple[float, int]:
        import psutil

        cpu, rss, now = 0.0, 0, {}
        for p in self._tree():
            try:
                t = p.cpu_times()
                c = t.user + t.system
                now[p.pid] = c
                cpu += c
                rss += p.memory_info().rss
            except psutil.Error:
                continue
        for pid, c in self._seen.items():   # descendants gone since the last sample: keep their last CPU
            if pid not in now:
                self._dead_cpu += c
        self._seen = now
        return cpu + self._dead_cpu, rss

    def __enter__(self):
        self.t0 = time.perf_counter()
        self.cpu0, rss = self._cpu_rss()
        self.peak = rss
        self.load0 = os.getloadavg()
        self._stop = threading.Event()

        def sample():
            while not self._stop.wait(self.interval):
                _, r = self._cpu_rss()
                self.peak = max(self.peak, r)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        cpu1, rss = self._cpu_rss()
        self.peak = max(self.peak, rss)
        self.result = dict(wall_s=round(time.perf_counter() - self.t0, 2), cpu_s=round(cpu1 - self.cpu0, 2),
                           peak_rss_mb=round(self.peak / 2**20), load_start=[round(x, 2) for x in self.load0],
                           load_end=[round(x, 2) for x in os.getloadavg()])
        return False


def lake_snapshot(lake_root: Path) -> dict[str, dict]:
    """Every Delta table under the lake: version, active files, rows, bytes (from the Delta log)."""
    import pyarrow as pa
    from deltalake import DeltaTable

    out = {}
    if not lake_root.exists():
        return out
    for layer in sorted(p for p in lake_root.iterdir() if p.is_dir()):
        for t in sorted(p for p in layer.iterdir() if p.is_dir()):
            if not (t / "_delta_log").exists():
                continue
            try:
                dtab = DeltaTable(str(t))
                adds = pa.table(dtab.get_add_actions(flatten=True))
                rows = adds.column("num_records").to_pylist() if "num_records" in adds.column_names else []
                size = adds.column("size_bytes").to_pylist()
                out[f"{layer.name}/{t.name}"] = dict(version=dtab.version(), files=adds.num_rows,
                                                     rows=int(sum(r or 0 for r in rows)), bytes=int(sum(size)))
            except Exception as e:  # noqa: BLE001 - a table being written elsewhere is reported, not fatal
                out[f"{layer.name}/{t.name}"] = dict(error=str(e)[:200])
    return out


def _io(before: dict, after: dict, stage: str) -> dict:
    written = {k: v for k, v in after.items() if "version" in v and before.get(k, {}).get("version") != v["version"]}
    layers = INPUT_LAYERS.get(stage, ())
    inputs = {k: v for k, v in before.items() if k.split("/")[0] in layers and "rows" in v}
    return dict(rows_in=sum(v["rows"] for v in inputs.values()), bytes_in=sum(v["bytes"] for v in inputs.values()),
                rows_out=sum(v["rows"] for v in written.values()), bytes_out=sum(v["bytes"] for v in written.values()),
                tables_out=len(written),
                files_per_table={k: v["files"] for k, v in sorted(written.items())})


# ---------------------------------------------------------------------------------------------
# worker: one scale in its own process
# ---------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _file_day(name: str) -> dt.date | None:
    stem = name.rsplit(".", 1)[0].rsplit("_", 1)[-1]
    if len(stem) == 8 and stem.isdigit():
        return dt.date(int(stem[:4]), int(stem[4:6]), int(stem[6:]))
    return None


def drop_exports_until(city: Path, landing: Path, day: dt.date) -> int:
    """Copy the 数据铁笼 export files available on ``day`` (daily files dated after it are held back)."""
    landing.mkdir(parents=True, exist_ok=True)
    n = 0
    for src in sorted((city / "ironcage").iterdir()):
        d = _file_day(src.name)
        if d is not None and d > day:
            continue
        dst = landing / src.name
        if not dst.exists():
            shutil.copyfile(src, dst)
            n += 1
    return n


def bench_label(scale: int, history_months: int = 0) -> str:
    """Folder and database name part of one benchmark city: ``10000``, or ``300000_h3`` for a 3-month history."""
    return str(scale) if not history_months else f"{scale}_h{history_months}"


def history_start(end: str, months: int) -> str:
    """First day of the month ``months - 1`` months before ``end``'s month (3 -> Oct..Dec for a December end)."""
    e = dt.date.fromisoformat(end)
    idx = e.year * 12 + (e.month - 1) - (months - 1)
    return dt.date(idx // 12, idx % 12 + 1, 1).isoformat()


def _bench_env(scale: int, history_months: int = 0, driver_memory: str | None = None) -> dict[str, str]:
    label = bench_label(scale, history_months)
    base = BENCH / label
    env = {
        "REDCLOUD_PATHS__RUN_DIR": str(base / "run"),
        "REDCLOUD_PATHS__LAKE_ROOT": str(base / "lake"),
        "REDCLOUD_PATHS__LANDING_DIR": str(base / "landing"),
        "REDCLOUD_PATHS__SYNTH_DIR": str(BENCH / ("synth" if not history_months else f"synth_h{history_months}")),
        "REDCLOUD_MLFLOW__TRACKING_URI": f"sqlite:///{base}/run/mlflow/mlflow.db",
        "REDCLOUD_MLFLOW__ARTIFACT_ROOT": str(base / "run" / "mlflow" / "artifacts"),
        "REDCLOUD_SERVING__DUCKDB_DIR": str(base / "run" / "serving"),
        "REDCLOUD_BRIEF__OUT_DIR": str(base / "run" / "briefs"),
    }
    for system in ("org", "cadre", "app"):
        env[f"REDCLOUD_SOURCES__{system.upper()}_URL"] = (
            "postgresql+psycopg2://{user}:{password}@{host}:{port}/" + f"rc_bench_{label}_{system}")
    if history_months:
        from redcloud.config import SynthConfig

        env["REDCLOUD_SYNTH__START"] = history_start(SynthConfig().end, history_months)
    if driver_memory:
        env["REDCLOUD_SPARK__DRIVER_MEMORY"] = driver_memory
    return env


def _ensure_databases(label: str) -> None:
    from redcloud.services import postgres

    postgres.ensure_running()
    conn = postgres.connect("postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("select datname from pg_database")
        have = {r[0] for r in cur.fetchall()}
        for system in ("org", "cadre", "app"):
            if f"rc_bench_{label}_{system}" not in have:
                cur.execute(f"create database rc_bench_{label}_{system}")
    conn.close()


def _run_stage_measured(stage: str, day: dt.date, run_id: str, lake_root: Path, record: list, phase: str,
                        settings=None) -> bool:
    from redcloud import pipeline
    from redcloud.config import get_settings
    from redcloud.context import RunContext

    ctx = RunContext.create(day, settings or get_settings(), run_id=run_id)
    before = lake_snapshot(lake_root)
    err = None
    with Probe() as p:
        try:
            res = pipeline.run_stage(ctx, stage)
        except Exception as e:  # noqa: BLE001 - a failing stage is a result to report, not a crash
            err = f"{type(e).__name__}: {e}"[:2000]
            traceback.print_exc()
            res = {}
    after = lake_snapshot(lake_root)
    row = dict(phase=phase, stage=stage, status="failed" if err else "ok", **p.result, **_io(before, after, stage))
    if stage == "bronze":
        parts = res.get("parts", {})
        orgdb = parts.get("bronze_orgdb", {}).get("tables", [])
        row["rows_in"] = int(sum(r.get("source_rows", 0) for r in orgdb)
                             + sum(r.get("source_rows", 0) for r in parts.get("bronze_ironcage", {}).get("tables", []))
                             + sum(r.get("records", 0) for r in parts.get("bronze_web", {}).get("tables", [])))
        row["bronze_detail"] = {"orgdb_methods": sorted({r.get("method") for r in orgdb} - {None})}
    # where the time went inside the stage, as the stage itself reports it
    parts = {t.get("table"): t.get("seconds") for t in res.get("tables", []) if isinstance(t, dict) and t.get("seconds")}

    parts.update(res.get("test_seconds") or {})   # marts: dbt's data and unit tests, summed per kind
    for name, part in (res.get("parts") or {}).items():   # a composite stage (bronze): each part's wall
        if isinstance(part, dict) and part.get("seconds"):
            parts[f"({name})"] = part["seconds"]
    if parts:
        row["part_seconds"] = parts
    if isinstance(res.get("quality"), dict):
        row["quality"] = res["quality"]
    if res.get("skipped"):  # e.g. models that this lake's history cannot train
        row["skipped"] = res["skipped"]
    if res.get("seconds_by_model"):
        row["part_seconds"] = {**row.get("part_seconds", {}), **res["seconds_by_model"]}
    if err:
        row["error"] = err
    record.append(row)
    print(f"  [{phase}] {stage:8s} {row['status']:6s} wall {row['wall_s']:7.1f}s cpu {row['cpu_s']:7.1f}s "
          f"peak {row['peak_rss_mb']:6d} MB rows in {row['rows_in']:>10,} out {row['rows_out']:>10,} "
          f"load {row['load_start'][0]}->{row['load_end'][0]}", flush=True)
    return err is None


def machine_speed() -> dict:
    """The CPU model and the seconds a fixed single-threaded workload takes (SHA-256 of 256 MiB, then
    sorting 2 M seeded random floats): measured at the start of every worker, so figures taken on
    different machines (sessions move between hosts) can be put side by side: compare ``speed_s``
    before comparing stage seconds."""
    import hashlib
    import random

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    t0 = time.process_time()
    block, h = bytes(range(256)) * 4096, hashlib.sha256()
    for _ in range(256):
        h.update(block)
    rnd = random.Random(20251231)
    sorted(rnd.random() for _ in range(2_000_000))
    return dict(cpu_model=model, speed_s=round(time.process_time() - t0, 2))


def _jvm_alive() -> bool:
    try:
        from redcloud.spark import get_spark

        get_spark().range(1).count()
        return True
    except Exception:  # noqa: BLE001
        return False


def worker(scale: int, seed: int, out: Path, force_generate: bool, rebuild_months: int, skip_reference: bool,
           stages: tuple[str, ...], history_months: int = 0, skip_api: bool = False) -> None:
    from redcloud.config import get_settings
    from redcloud.demo import sources as demo_sources
    from redcloud.demo.synth import generate

    s = get_settings()
    label = bench_label(scale, history_months)
    base = BENCH / label
    lake_root = Path(s.paths.lake_root)
    landing = Path(s.paths.landing_dir)
    # web_state too: the web client's validators are keyed by URL, and this run's web server has a new
    # port; a date's frozen validators from an earlier run would match nothing (every page a 200)
    for p in (lake_root, landing, base / "run" / "serving", base / "run" / "briefs", base / "run" / "mlflow",
              base / "run" / "web_state", base / "rebuild12"):
        shutil.rmtree(p, ignore_errors=True)
    (base / "run").mkdir(parents=True, exist_ok=True)
    # The same city with less history keeps the same models: a lake that holds 3 months is still scored
    # by the champions trained on the city's years (too little history trains none), so its daily run
    # scores and builds the model marts like the whole-period run's, and the two compare like for like.
    models_from = None
    whole = BENCH / bench_label(scale) / "run" / "mlflow"
    if history_months and (whole / "mlflow.db").exists():
        shutil.copytree(whole, base / "run" / "mlflow")
        models_from = str(whole)
        print(f"  models: the whole-period city's registry ({whole}), copied", flush=True)
    record: list[dict] = []
    res = dict(scale=scale, seed=seed, host=platform.node(), cpus=os.cpu_count(), machine_speed=machine_speed(),
               started=dt.datetime.now().isoformat(),
               python=sys.version.split()[0], stages=record, complete=False, history_months=history_months,
               period=dict(start=s.synth.start, end=s.synth.end), driver_memory=s.spark.driver_memory,
               models_from=models_from)

    def checkpoint() -> None:
        """Write what we have after every stage: a run killed half-way (OOM, timeout) still leaves figures."""
        out.write_text(json.dumps(res, ensure_ascii=False, indent=1, default=str))

    with Probe() as p:
        man = generate(scale, seed, s.paths.synth_dir, start=s.synth.start, end=s.synth.end, force=force_generate)
    record.append(dict(phase="setup", stage="generate", status="reused" if man.get("reused") else "ok", **p.result,
                       rows_out=int(sum(man["counts"].values()))))
    city = Path(man["path"])
    res["city"] = dict(path=str(city), counts=man["counts"])
    print(f"  generate {record[-1]['status']} ({p.result['wall_s']}s): {city}", flush=True)

    _ensure_databases(label)
    urls = {system: s.source_url(system) for system in ("org", "cadre", "app")}
    with Probe() as p:
        loaded = demo_sources.load_city(urls, city)
    record.append(dict(phase="setup", stage="load_sources", status="ok" if any(loaded.values()) else "reused",
                       **p.result, rows_out=int(sum(sum(c.values()) for c in loaded.values() if c))))
    print(f"  load_sources {record[-1]['status']} ({p.result['wall_s']}s)", flush=True)

    port = _free_port()
    weblog = open(base / "web.log", "wb")
    web = subprocess.Popen([sys.executable, "-m", "redcloud.demo.web_server", "--data-dir", str(city / "web"),
                            "--port", str(port), "--seed", str(seed), "--fault-rate", "0", "--slow-rate", "0"],
                           cwd=ROOT, stdout=weblog, stderr=subprocess.STDOUT)
    try:
        from redcloud.services import procs

        procs.wait_for_port("127.0.0.1", port, 30, "bench web server", base / "web.log")
        s.sources.web_base_url = f"http://127.0.0.1:{port}"
        end = dt.date.fromisoformat(s.synth.end)
        # Spark session start is its own line (a long-lived session is shared by every stage)
        with Probe() as p:
            from redcloud.spark import get_spark

            get_spark()
        record.append(dict(phase="setup", stage="spark_session", status="ok", **p.result))

        prev = end - dt.timedelta(days=1)
        drop_exports_until(city, landing, prev)
        print(f"  rebuild (fresh lake, logical date {prev}):", flush=True)
        ok = True
        for st in FULL_STAGES:
            if ok and st in stages:
                done = _run_stage_measured(st, prev, f"bench__full__{prev}", lake_root, record, "full")
                ok = done or st not in REBUILD_STAGES  # a failed model/mart build does not stop the daily run
                checkpoint()
        checkpoint()
        drop_exports_until(city, landing, end)
        print(f"  daily incremental run (logical date {end}):", flush=True)
        full_ok = ok
        for st in PIPELINE_STAGES:
            if st not in stages:
                continue
            # the daily run needs the full run's lake; a failed core stage stops the core stages after it;
            # a dead JVM (e.g. OOM-killed) would fail everything after it
            if not full_ok or (not ok and (st in REBUILD_STAGES or not _jvm_alive())):
                why = "the full run failed" if not full_ok else "an earlier stage failed"
                record.append(dict(phase="daily", stage=st, status="skipped", detail=why))
                continue
            ok = _run_stage_measured(st, end, f"bench__daily__{end}", lake_root, record, "daily") and ok
            checkpoint()
        res["lake"] = lake_snapshot(lake_root)

        if not skip_reference:
            from benchmarks import reference_duckdb

            print("  DuckDB reference:", flush=True)
            with Probe() as p:
                try:
                    ref = reference_duckdb.run(lake_root, end, s.secrets.pseudonym_key_bytes(), compare=True)
                except Exception as e:  # noqa: BLE001
                    traceback.print_exc()
                    ref = dict(error=f"{type(e).__name__}: {e}"[:2000])
            ref["measured"] = p.result
            res["reference"] = ref
            print(f"  reference: wall {p.result['wall_s']}s (transform {ref.get('transform_seconds')}s); "
                  f"matches: {ref.get('summary')}", flush=True)

        if not skip_api and "publish" in stages:
            res["api"] = _api_bench(base / "api")
            checkpoint()
        if rebuild_months:
            res["rebuild_months"] = _rebuild_months(end, rebuild_months, base / "rebuild12")
    finally:
        web.terminate()
        web.wait(10)
        weblog.close()
    res["finished"] = dt.datetime.now().isoformat()
    res["complete"] = True
    out.write_text(json.dumps(res, ensure_ascii=False, indent=1, default=str))


def _api_bench(out_dir: Path) -> dict:
    """``benchmarks/api_bench.py`` on the snapshot this run published (same env, so the same serving dir)."""
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    print("  API benchmark on the published snapshot:", flush=True)
    rc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "api_bench.py"), "--requests", "1000",
                         "--seconds", "10", "--out", str(out_dir)], cwd=ROOT).returncode
    found = sorted(out_dir.glob("api_bench_*.json"))
    if rc != 0 or not found:
        return dict(error=f"api_bench exited {rc}")
    doc = json.loads(found[-1].read_text())
    print(f"  API: p50 {doc['api_sequential']['p50_ms']} ms, p99 {doc['api_sequential']['p99_ms']} ms", flush=True)
    return doc


def _rebuild_months(end: dt.date, months: int, lake: Path) -> dict:
    """The real thing: bronze -> gold for each of the last ``months`` month-end dates, in order, in its own lake."""
    from redcloud.config import get_settings

    s = get_settings()
    old = s.paths.lake_root
    s.paths.lake_root = str(lake)
    days = []
    y, m = end.year, end.month
    for _ in range(months):
        first_next = dt.date(y + (m == 12), m % 12 + 1, 1)
        days.append(first_next - dt.timedelta(days=1))
        y, m = (y - 1, 12) if m == 1 else (y, m - 1)
    days.sort()
    rec: list[dict] = []
    with Probe() as p:
        for d in days:
            for st in REBUILD_STAGES:
                _run_stage_measured(st, d, f"bench__rebuild__{d}", lake, rec, f"rebuild-{d}")
    s.paths.lake_root = old
    return dict(dates=[d.isoformat() for d in days], total=p.result, stages=rec)


# ---------------------------------------------------------------------------------------------
# parent: run the scales, fit, write the results page
# ---------------------------------------------------------------------------------------------

def fit(xs: list[float], ys: list[float]) -> dict | None:
    """Least-squares y = fixed + per_unit * x (None with fewer than 2 distinct x)."""
    if len(set(xs)) < 2:
        return None
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    a = my - b * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - a - b * x) ** 2 for x, y in zip(xs, ys))
    return dict(fixed_s=round(a, 3), per_1k_members_s=round(b * 1000, 4),
                r2=round(1 - ss_res / ss_tot, 4) if ss_tot else None, points=n)


def summarise(runs: list[dict]) -> dict:
    fits, rows_fits = {}, {}
    keys = sorted({(r["phase"], r["stage"]) for run in runs for r in run["stages"] if r.get("status") == "ok"
                   and "wall_s" in r})
    for phase, stage in keys:
        pts = [(run["scale"], r["wall_s"], r.get("rows_in") or 0) for run in runs for r in run["stages"]
               if r["phase"] == phase and r["stage"] == stage and r.get("status") == "ok"]
        f = fit([x for x, _, _ in pts], [y for _, y, _ in pts])
        if f:
            fits[f"{phase}/{stage}"] = f
        g = fit([ri for _, _, ri in pts], [y for _, y, _ in pts]) if all(ri for _, _, ri in pts) else None
        if g:
            rows_fits[f"{phase}/{stage}"] = dict(fixed_s=g["fixed_s"], per_million_rows_in_s=round(g["per_1k_members_s"] * 1000, 3),
                                                 r2=g["r2"])
    return dict(fit_per_member=fits, fit_per_input_row=rows_fits)


PROVINCE_MEMBERS = (1_000_000, 2_000_000, 4_000_000)


def capacity(doc: dict, window_h: float = 2.0, efficiency: float = 0.5) -> dict | None:
    """Province sizing from the measured daily-run CPU seconds (Spark stages), as a formula, not a feeling.

    CPU(M) = fixed + per_member x M, fitted over the scales run (with one scale: CPU/member of that
    scale, which overstates the per-member cost by the fixed part). Cores = CPU(M) / (window x efficiency):
    the daily run must finish in ``window_h`` hours with ``efficiency`` of the cores doing useful work
    (shuffles, stragglers, the single-threaded driver parts). Events per day: source rows per member
    per day of the synthetic city (its whole period) x M. The daily run rebuilds gold over the whole
    lake, so its cost also grows with the history kept: a fit over cities with a short history
    (``--history-months``) understates a province that keeps years (see infra/cluster/README.md).
    """
    core = set(REBUILD_STAGES)
    runs = [r for r in doc["runs"]
            if core <= {s["stage"] for s in r["stages"] if s["phase"] == "daily" and s.get("status") == "ok"}]
    if not runs:
        return dict(skipped="not computed: no scale has a daily run whose bronze, silver and gold all succeeded")
    pts = []
    for r in runs:
        cpu = sum(s["cpu_s"] for s in r["stages"] if s["phase"] == "daily" and s.get("status") == "ok")
        pts.append((r["scale"], cpu))
    f = fit([x for x, _ in pts], [y for _, y in pts])
    if f:
        fixed, per = f["fixed_s"], f["per_1k_members_s"] / 1000
        how = f"fit over {len(pts)} scales"
    else:
        fixed, per = 0.0, pts[-1][1] / pts[-1][0]
        how = f"one scale ({pts[-1][0]:,}): CPU per member incl. fixed costs (an overestimate)"
    big = max(runs, key=lambda r: r["scale"])
    counts = big["city"]["counts"]
    src_rows = sum(v for k, v in counts.items() if not k.startswith("web."))
    period = big.get("period") or {"start": "2023-01-01", "end": "2025-12-31"}  # older runs: the default period
    days = (dt.date.fromisoformat(period["end"]) - dt.date.fromisoformat(period["start"])).days + 1
    per_member_day = src_rows / big["scale"] / days
    rows = []
    for m in PROVINCE_MEMBERS:
        cpu = fixed + per * m
        rows.append(dict(members=m, daily_cpu_h=round(cpu / 3600, 2), events_per_day=round(per_member_day * m),
                         cores_for_window=max(1, round(cpu / (window_h * 3600 * efficiency)))))
    return dict(method=how, window_h=window_h, efficiency=efficiency, fixed_cpu_s=round(fixed, 1),
                cpu_s_per_1k_members=round(per * 1000, 3), source_rows_per_member_day=round(per_member_day, 4),
                daily_points=pts, province=rows)


def _fmt_bytes(n) -> str:
    if n is None:
        return ""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _daily(run: dict) -> dict[str, float]:
    return {r["stage"]: r["wall_s"] for r in run["stages"] if r["phase"] == "daily" and r.get("status") == "ok"}


def _flags(runs: list[dict]) -> str:
    """The command-line flags that shaped the runs (as recorded by the workers)."""
    hm = {r.get("history_months") or 0 for r in runs}
    dm = {r.get("driver_memory") for r in runs} - {None}
    out = f" --history-months {hm.pop()}" if len(hm) == 1 and 0 not in hm else ""
    return out + (f" --driver-memory {dm.pop()}" if len(dm) == 1 else "")


def side_by_side(runs: list[dict]) -> list[str]:
    """The headline figures of every run of the invocation, one row per scale."""
    lines = ["## Side by side", "",
             "| members | history | daily end to end s | daily silver+gold s | DuckDB reference s | ratio | "
             "reference tables identical | API p50 / p99 ms | brief s | daily stages not ok |",
             "|---:|---|---:|---:|---:|---:|---|---|---:|---|"]
    for run in runs:
        d = _daily(run)
        bad = [r["stage"] for r in run["stages"] if r["phase"] == "daily" and r.get("status") != "ok"]
        ref = run.get("reference") or {}
        sg = d.get("silver", 0) + d.get("gold", 0)
        ref_s = ref.get("total_seconds")
        ratio = f"{sg / ref_s:.0f}×" if ref_s and "silver" in d and "gold" in d else ""
        api = (run.get("api") or {}).get("api_sequential") or {}
        api_cell = f"{api.get('p50_ms')} / {api.get('p99_ms')}" if api else ""
        hm = run.get("history_months")
        lines.append(f"| {run['scale']:,} | {str(hm) + ' months' if hm else 'whole period'} | {sum(d.values()):.0f} | "
                     f"{sg:.0f} | {f'{ref_s:.1f}' if ref_s else ''} | {ratio} | {ref.get('summary', '')} | "
                     f"{api_cell} | "
                     f"{d.get('brief', '')} | {', '.join(bad)} |")
    return lines + [""]


def where_daily_time_went(daily: list[dict], top: int = 6) -> list[str]:
    """Per daily stage: its quality gate, its sub-steps (a composite stage's parts; the marts' dbt data
    and unit tests, summed) and its costliest tables as the stage reports them (seconds per table;
    tables written side by side overlap, so they need not add up to the stage's wall)."""
    rows = []
    for r in daily:
        ps = r.get("part_seconds") or {}
        steps = [(k.strip("()"), v) for k, v in ps.items() if k.startswith("(")]
        parts = sorted(((k, v) for k, v in ps.items() if not k.startswith("(")), key=lambda kv: -kv[1])
        gate = (r.get("quality") or {}).get("seconds")
        if not parts and not steps and gate is None:
            continue
        shown = ", ".join(f"{k.split('/')[-1]} {v:.1f}" for k, v in parts[:top])
        rest = sum(v for _, v in parts[top:])
        rows.append(f"| {r['stage']} | {r['wall_s']:.1f} | {'' if gate is None else f'{gate:.1f}'} | "
                    f"{', '.join(f'{k} {v:.1f}' for k, v in steps)} | {len(parts)} | {sum(v for _, v in parts):.1f} | "
                    f"{shown}" + (f"; {len(parts) - top} more {rest:.1f}" if rest else "") + " |")
    if not rows:
        return []
    return ["Where the daily time went (each stage's own figures; tables written side by side overlap):", "",
            "| stage | wall s | quality gate s | sub-steps s | tables | tables s | costliest tables (s) |",
            "|---|---:|---:|---|---:|---:|---|", *rows, ""]


def write_page(doc: dict, out_dir: Path) -> None:
    lines = ["# Benchmark results", "",
             f"Generated {doc['generated']} by `python -m benchmarks.run --scales {','.join(map(str, doc['scales']))}"
             f"{_flags(doc['runs'])}` "
             f"on {doc['machine']['cpus']} cores / {doc['machine']['mem_gb']} GiB (`{doc['machine']['host']}`). "
             "Load averages are recorded per stage: figures taken while other jobs ran on the machine are inflated.",
             *(["", "**Notes:** " + doc["note"]] if doc.get("note") else []),
             "", "Phases: **full** = fresh lake, logical date = city end − 1 day, whole history extracted and derived, "
             "models trained, marts built from scratch (the cheaper equivalent of a 12-month rebuild, see "
             "`benchmarks/README.md`); **daily** = the incremental run for the city's last day on top of it "
             "(watermark extract, silver merge, gold rebuild, re-scoring, incremental marts, alerts, publish, brief): "
             "the steady state of a production day.", ""]
    lines += side_by_side(doc["runs"])
    for run in doc["runs"]:
        partial = "" if run.get("complete", True) else " (INCOMPLETE run: the worker died or was stopped; figures up to that point)"
        period = run.get("period") or {}
        hm = run.get("history_months")
        lines += [f"## {run['scale']:,} members{' — ' + str(hm) + '-month history' if hm else ''}{partial}", "",
                  f"City period {period.get('start', '?')} → {period.get('end', '?')}; Spark driver memory "
                  f"{run.get('driver_memory', '?')}; events generated: {sum((run.get('city') or {}).get('counts', {}).values()):,} rows"
                  + (f"; machine: {run['machine_speed']['cpu_model']}, fixed CPU workload "
                     f"{run['machine_speed']['speed_s']} s (`benchmarks.run.machine_speed`: compare it before "
                     "comparing runs of different days)." if run.get("machine_speed") else ".")
                  + (f" Models: the whole-period city's registry (`{run['models_from']}`), its champions "
                     "score this lake." if run.get("models_from") else ""),
                  "",
                  "| phase | stage | status | wall s | CPU s | peak RSS MB | rows in | rows out | bytes out | tables | max files/table | load 1m start→end |",
                  "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for r in run["stages"]:
            if "wall_s" not in r:
                lines.append(f"| {r['phase']} | {r['stage']} | {r['status']} ({r.get('detail', '')[:60]}) | | | | | | | | | |")
                continue
            fpt = r.get("files_per_table") or {}
            status = r["status"] if r["status"] != "failed" else f"failed: {r.get('error', '')[:70]}".replace("|", "/")
            if r.get("skipped"):
                status += f" (skipped: {', '.join(r['skipped'])})"
            lines.append(
                f"| {r['phase']} | {r['stage']} | {status} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mb']} | "
                f"{r.get('rows_in', 0) or 0:,} | {r.get('rows_out', 0) or 0:,} | {_fmt_bytes(r.get('bytes_out'))} | "
                f"{r.get('tables_out', '')} | {max(fpt.values()) if fpt else ''} | {r['load_start'][0]}→{r['load_end'][0]} |")
        for r in run["stages"]:
            for what, why in (r.get("skipped") or {}).items():
                lines.append(f"\n{r['phase']}/{r['stage']}: {what} skipped: {why}.")
        daily = [r for r in run["stages"] if r["phase"] == "daily" and r.get("status") == "ok"]
        missing = [r["stage"] for r in run["stages"] if r["phase"] == "daily" and r.get("status") != "ok"]
        lines += ["", f"Daily run end to end, stages that succeeded: **{sum(r['wall_s'] for r in daily):.0f} s** "
                  f"({', '.join(r['stage'] for r in daily) or 'none'})"
                  + (f"; not counted (failed / skipped / not available): {', '.join(missing)}." if missing else "."), ""]
        lines += where_daily_time_went(daily)
        ref = run.get("reference")
        if ref and "error" not in ref:
            sp = {r["stage"]: r["wall_s"] for r in daily if r["stage"] in ("silver", "gold")}
            spark_s = sum(sp.values())
            full = {r["stage"]: r["wall_s"] for r in run["stages"] if r["phase"] == "full" and r["stage"] in ("silver", "gold")}
            lines += [f"DuckDB reference (same bronze Delta tables, subset: {', '.join(ref['tables_built'])}): "
                      f"transform **{ref['transform_seconds']:.2f} s** (+ {ref['read_seconds']:.2f} s reading bronze). "
                      f"Spark silver+gold daily = {spark_s:.0f} s → ratio **{spark_s / max(ref['total_seconds'], 1e-9):.0f}×** "
                      f"(full rebuild silver+gold {sum(full.values()):.0f} s → {sum(full.values()) / max(ref['total_seconds'], 1e-9):.0f}×). "
                      "The reference covers a subset of what the Spark stages do (see the table list); the ratio "
                      "is an upper bound on Spark's overhead for that subset only.", "",
                      "| table | reference rows | Spark rows | checksum | note |", "|---|---:|---:|---|---|"]
            for c in ref.get("comparison", []):
                lines.append(f"| {c['table']} | {c.get('ref_rows', '')} | {c.get('spark_rows', '')} | "
                             f"{'match' if c.get('match') else 'DIFFERS'} | {c.get('note', '')} |")
            lines.append("")
        elif ref:
            lines += [f"DuckDB reference failed: `{ref['error'][:300]}`", ""]
    s = doc["summary"]
    if s["fit_per_member"]:
        lines += ["## Fitted cost per stage (wall = fixed + per-member × members)", "",
                  "| phase/stage | fixed s | s per 1k members | R² | points | s per 1M input rows |", "|---|---:|---:|---:|---:|---:|"]
        for k, f in s["fit_per_member"].items():
            g = s["fit_per_input_row"].get(k, {})
            lines.append(f"| {k} | {f['fixed_s']} | {f['per_1k_members_s']} | {f['r2']} | {f['points']} | "
                         f"{g.get('per_million_rows_in_s', '')} |")
        lines.append("")
    else:
        lines += ["Fits need at least two scales.", ""]
    for f in sorted(out_dir.glob("reference-*.json")):
        ref = json.loads(f.read_text())
        lines += [f"## Stand-alone DuckDB reference run: `{f.name}`", "",
                  f"`python -m benchmarks.reference_duckdb --lake {ref.get('lake')} --date {ref.get('date')}`: "
                  f"read {ref['read_seconds']} s wall / {ref.get('read_cpu_seconds')} s CPU, transform "
                  f"{ref['transform_seconds']} s wall / {ref.get('transform_cpu_seconds')} s CPU "
                  f"(1-min load average at the end: {round(ref.get('load_end', [0])[0], 1)}); "
                  f"comparison with the Spark tables of that lake: **{ref.get('summary')}**.", "",
                  "| table | rows | identical |", "|---|---:|---|"]
        for c in ref.get("comparison", []):
            lines.append(f"| {c['table']} | {c.get('spark_rows', '')} | {'yes' if c.get('match') else 'NO'} |")
        lines.append("")
    api = sorted(out_dir.glob("api_bench_*.md"), key=lambda f: f.stat().st_mtime)
    if api:  # written by benchmarks/api_bench.py (the API's own benchmark)
        lines += ["## API p99", "", f"Latest API benchmark: [{api[-1].name}]({api[-1].name}) "
                  f"(`python -m benchmarks.api_bench`; {len(api)} run(s) in this folder).", ""]
    cap = doc.get("capacity")
    if cap and cap.get("skipped"):
        lines += ["## Province capacity estimate", "", cap["skipped"] + ".", ""]
    elif cap:
        lines += ["## Province capacity estimate (daily run, Spark stages that ran)", "",
                  f"CPU(M) = {cap['fixed_cpu_s']} s + {cap['cpu_s_per_1k_members']} s per 1k members ({cap['method']}); "
                  f"cores = CPU / ({cap['window_h']} h window × {cap['efficiency']} efficiency); "
                  f"events/day = {cap['source_rows_per_member_day']} source rows per member per day × M.", "",
                  "| members | daily CPU h | source events/day | cores for the window |", "|---:|---:|---:|---:|"]
        for r in cap["province"]:
            lines.append(f"| {r['members']:,} | {r['daily_cpu_h']} | {r['events_per_day']:,} | {r['cores_for_window']} |")
        lines.append("")
    if (out_dir / "stages.png").exists():
        lines += ["![wall time per stage and scale](stages.png)", ""]
    (out_dir / "README.md").write_text("\n".join(lines))


def plot(doc: dict, out_dir: Path) -> None:
    """Wall and CPU seconds per stage against members, full and daily phases (successful stages only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 8))
    for col, phase in enumerate(("full", "daily")):
        for row, metric in enumerate(("wall_s", "cpu_s")):
            ax = axes[row][col]
            for st in PIPELINE_STAGES:
                pts = sorted((run["scale"], r[metric]) for run in doc["runs"] for r in run["stages"]
                             if r["phase"] == phase and r["stage"] == st and r.get("status") == "ok")
                if pts:
                    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=st)
            key = "total_seconds" if metric == "wall_s" else "total_cpu_seconds"
            refs = sorted((run["scale"], run["reference"][key]) for run in doc["runs"]
                          if run.get("reference") and key in run["reference"])
            if refs and phase == "daily":
                ax.plot([p[0] for p in refs], [p[1] for p in refs], marker="s", linestyle="--", color="k",
                        label="DuckDB reference (silver/gold subset)")
            ax.set_title(f"{phase} run: {'wall' if metric == 'wall_s' else 'CPU'} seconds per stage")
            ax.set_xlabel("members")
            ax.set_ylabel("seconds")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "stages.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scales", default="10000,30000", help="comma-separated member counts (100000,300000 are slow)")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--stages", default=",".join(PIPELINE_STAGES), help="pipeline stages to run (default: all)")
    ap.add_argument("--force-generate", action="store_true", help="regenerate the city even if it exists (times generation)")
    ap.add_argument("--rebuild-months", type=int, default=0,
                    help="also run the real N-month backfill (bronze->gold for N month-end dates); slow")
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--skip-api", action="store_true", help="no API benchmark on the published snapshot")
    ap.add_argument("--history-months", type=int, default=0,
                    help="a city whose events cover only the last N months (members, organisations and cadres "
                         "as at full scale); own folders and databases. Default 0: the whole period (36 months)")
    ap.add_argument("--driver-memory", help="Spark driver memory for the workers (default: the settings', 4g)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--note", help="a sentence for the results page (e.g. what disturbed the run)")
    ap.add_argument("--from-runs", nargs="+", type=Path,
                    help="rebuild latest.json/README.md/plot from worker JSON files (results/runs/*.json) without running")
    ap.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    stages = tuple(x for x in args.stages.split(",") if x)

    if args.worker:
        worker(args.worker, args.seed, args.worker_out, args.force_generate, args.rebuild_months, args.skip_reference,
               stages, args.history_months, args.skip_api)
        return 0

    import psutil

    scales = [int(x) for x in args.scales.split(",") if x]
    args.out.mkdir(parents=True, exist_ok=True)
    runs_dir = args.out / "runs"
    runs_dir.mkdir(exist_ok=True)
    runs = [json.loads(p.read_text()) for p in (args.from_runs or [])]
    runs.sort(key=lambda r: r["scale"])
    for scale in ([] if args.from_runs else scales):
        stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
        out = runs_dir / f"{bench_label(scale, args.history_months)}-{stamp}.json"
        env = {**os.environ, **_bench_env(scale, args.history_months, args.driver_memory)}
        argv_ = [sys.executable, "-m", "benchmarks.run", "--worker", str(scale), "--worker-out", str(out),
                 "--seed", str(args.seed), "--stages", ",".join(stages), "--rebuild-months", str(args.rebuild_months),
                 "--history-months", str(args.history_months)]
        if args.skip_api:
            argv_.append("--skip-api")
        if args.force_generate:
            argv_.append("--force-generate")
        if args.skip_reference:
            argv_.append("--skip-reference")
        print(f"== {scale:,} members (worker log: stdout; lake {BENCH / bench_label(scale, args.history_months) / 'lake'})",
              flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run(argv_, cwd=ROOT, env=env).returncode
        if not out.exists():
            print(f"   worker for {scale} failed (exit {rc}) before any figure", flush=True)
            continue
        run = json.loads(out.read_text())
        if rc != 0 or not run.get("complete"):
            print(f"   worker for {scale} did not finish (exit {rc}): partial figures kept", flush=True)
        run["worker_wall_s"] = round(time.perf_counter() - t0, 1)
        runs.append(run)
    if not runs:
        return 1
    doc = dict(generated=dt.datetime.now().isoformat(timespec="seconds"), scales=[r["scale"] for r in runs],
               machine=dict(host=platform.node(), cpus=os.cpu_count(),
                            mem_gb=round(psutil.virtual_memory().total / 2**30)),
               runs=runs, summary=summarise(runs))
    doc["capacity"] = capacity(doc)
    if args.note:
        doc["note"] = args.note
    (args.out / "latest.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1, default=str))
    plot(doc, args.out)
    write_page(doc, args.out)
    print(f"results: {args.out / 'README.md'}, {args.out / 'latest.json'}, {args.out / 'stages.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
