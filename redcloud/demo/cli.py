"""``redcloud-demo``: generate the synthetic city, load it into the source systems, run the demo.

``synth`` generates (or reuses) the city; ``load`` fills the organisation databases and the 数据铁笼
landing folder; ``up`` starts the services and the demo's web reference server; ``demo`` does all of
that and runs the main job for the city's last day (``redcloud run all``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from redcloud.config import PROJECT_ROOT, get_settings, reset_settings

# the DAGs the demo runs on their schedules (time-based; nothing consumes their assets)
DEMO_UNPAUSE = ("redcloud_daily", "weekly_brief")


def demo_airflow_settings() -> None:
    """The city ends on ``[synth] end``: Airflow schedules nothing after that day, so the demo's DAGs
    can be unpaused without running on days that have no data (explicit settings win)."""
    s = get_settings()
    if not s.airflow.end_date:
        os.environ["REDCLOUD_AIRFLOW__END_DATE"] = s.synth.end
    if not s.airflow.unpause:
        os.environ["REDCLOUD_AIRFLOW__UNPAUSE"] = json.dumps(list(DEMO_UNPAUSE))
    reset_settings()


def city_path(scale: int, seed: int) -> Path:
    from redcloud.demo.synth import city_dir

    return city_dir(get_settings().paths.synth_dir, scale, seed)


def cmd_synth(args) -> int:
    from redcloud.demo.synth import generate

    s = get_settings()
    t = time.perf_counter()
    man = generate(args.scale, args.seed, s.paths.synth_dir, start=args.start or s.synth.start,
                   end=args.end or s.synth.end, force=args.force)
    what = "reused" if man.get("reused") else "generated"
    print(f"synthetic city {what} in {time.perf_counter() - t:.1f}s: {man['path']}")
    for k, v in man["counts"].items():
        print(f"  {k:34s} {v:>10,}")
    print(f"  数据铁笼 export files: {len(man['ironcage_files'])}; planted faults: "
          + ", ".join(f"{k}={v}" for k, v in sorted(man["faults"].items())))
    return 0


REPORT_START, REPORT_END = "<!-- report:start -->", "<!-- report:end -->"


def cmd_synth_report(args) -> int:
    """The generated city beside the official figures: printed, and written into docs/synthetic_city.md."""
    from redcloud.demo.synth import generate, targets

    s = get_settings()
    man = generate(args.scale, args.seed, s.paths.synth_dir, start=s.synth.start, end=s.synth.end)
    measured = targets.measure(man["path"])
    text = targets.report(measured, title=f"城市 {args.scale:,} 名党员（seed {args.seed}）在 "
                                          f"{targets.load()['as_of']} 与官方数字对照（生成用时 {man['seconds']} 秒）")
    print(text)
    if args.write:
        doc = Path(__file__).resolve().parents[2] / "docs" / "synthetic_city.md"
        body = doc.read_text(encoding="utf-8")
        head, rest = body.split(REPORT_START, 1)
        doc.write_text(head + REPORT_START + "\n" + text + REPORT_END + rest.split(REPORT_END, 1)[1], encoding="utf-8")
        print(f"written to {doc}")
    return 0 if measured.within.all() else 1


def cmd_load(args) -> int:
    from redcloud.demo import landing, sources

    s = get_settings()
    city = city_path(args.scale, args.seed)
    if not (city / "manifest.json").exists():
        print(f"no synthetic city at {city}: run `redcloud-demo synth --scale {args.scale} --seed {args.seed}`",
              file=sys.stderr)
        return 2
    urls = {sys_: s.source_url(sys_) for sys_ in ("org", "cadre", "app")}
    for system, counts in sources.load_city(urls, city, force=args.force).items():
        if counts:
            print(f"loaded {system}: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
        else:
            print(f"{system}: already loaded (same city checksum)")
    n = landing.drop_exports(city, Path(s.paths.landing_dir))
    print(f"数据铁笼 landing folder {s.paths.landing_dir}: {n} new export files dropped")
    return 0


def start_web(scale: int, seed: int) -> str:
    """The demo's web reference server (penalties, enforcement lists, news of the city) on [web] host:port."""
    from redcloud.services import procs

    s = get_settings()
    data = city_path(scale, seed) / "web"
    if procs.read_pid("web") or procs.port_open(s.web.host, s.web.port):
        return f"web reference server: already up on http://{s.web.host}:{s.web.port}"
    procs.start("web", [sys.executable, "-m", "redcloud.demo.web_server", "--data-dir", str(data),
                        "--host", s.web.host, "--port", str(s.web.port), "--seed", str(seed),
                        "--fault-rate", str(s.web.fault_rate), "--slow-rate", str(s.web.slow_rate),
                        "--slow-seconds", str(s.web.slow_seconds)])
    procs.wait_for_port(s.web.host, s.web.port, 20, "web reference server", procs.log_dir() / "web.log")
    return f"web reference server: http://{s.web.host}:{s.web.port} (data {data})"


def cmd_up(args) -> int:
    from redcloud.services import stack

    demo_airflow_settings()
    for line in stack.up(apps=args.all, engine=args.all):   # the micro-batch DAG's runs use the warm engine
        print(line)
    if (city_path(args.scale, args.seed) / "web").is_dir():
        print(start_web(args.scale, args.seed))
    else:
        print("web reference server: not started (no city yet: `redcloud-demo synth`)")
    return 0


def _fingerprint(city: Path) -> str | None:
    """City checksum + the code's git commit (None when the tree has uncommitted changes or no git)."""
    try:
        head = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(PROJECT_ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    if dirty:
        return None
    checksum = json.loads((city / "manifest.json").read_text())["checksum"]
    return f"{checksum}:{head}"


def cmd_demo(args) -> int:
    from redcloud import pipeline
    from redcloud.context import RunContext
    from redcloud.progress import Progress
    from redcloud.services import stack

    demo_airflow_settings()
    s = get_settings()
    t0 = time.perf_counter()
    print("== 1/4 services")
    for line in stack.up(apps=False):
        print("  " + line)
    from redcloud.services import smtp

    print("  " + smtp.start())   # the alerts stage delivers the demo's e-mails to the local sink (.run/mail)
    print("== 2/4 synthetic city")
    cmd_synth(argparse.Namespace(scale=args.scale, seed=args.seed, start=None, end=None, force=False))
    if not s.models.truth_dir:
        # a synthetic city: each model's final report (after it is fitted and chosen) is checked against
        # the planted truth, so the cards show what the model finds beside the best single feature
        os.environ["REDCLOUD_MODELS__TRUTH_DIR"] = str(city_path(args.scale, args.seed) / "truth")
        reset_settings()
        s = get_settings()
    print("  " + start_web(args.scale, args.seed))
    print("== 3/4 source systems")
    cmd_load(argparse.Namespace(scale=args.scale, seed=args.seed, force=False))
    print("== 4/4 main job")
    day = dt.date.fromisoformat(s.synth.end)
    marker = Path(s.paths.run_dir) / "state" / f"main-{day.isoformat()}.json"
    fingerprint = _fingerprint(city_path(args.scale, args.seed))
    if (fingerprint and marker.exists() and Path(s.paths.lake_root).exists()
            and json.loads(marker.read_text()).get("fingerprint") == fingerprint):
        print(json.loads(marker.read_text())["summary"])
        print(f"main job already ran for {day} on this city and code (fingerprint {fingerprint[:12]}); "
              f"`redcloud run all --date {day}` rebuilds it (idempotent)")
    elif args.in_process:
        ctx = RunContext.create(day, s, progress=Progress.console())
        summary = pipeline.run_main(ctx)
        text = pipeline.format_summary(summary, ctx)
        print(text)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"fingerprint": fingerprint, "summary": text}, ensure_ascii=False))
    else:
        # through Airflow, as production runs it: the run, its task logs and durations are in the UI
        from redcloud.services import airflow

        print("  Airflow: starting (api-server, scheduler, dag-processor, triggerer); then a run of redcloud_daily "
              f"for {day} through the REST API, each stage a task (`redcloud run <stage>`)", flush=True)
        state, run_id = airflow.run_dag("redcloud_daily", day.isoformat(), echo=lambda line: print(line, flush=True))
        text = f"Airflow run {run_id} of redcloud_daily: {state}\n" + airflow.run_summary("redcloud_daily", run_id)
        print(text)
        print(f"  {airflow.status()}")
        if state != "success":
            print("main job failed in Airflow; the failing task's output is above, its log in the Airflow UI")
            return 1
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"fingerprint": fingerprint, "summary": text}, ensure_ascii=False))
    print(f"demo finished in {time.perf_counter() - t0:.0f}s; lake at {s.paths.lake_root}")
    return 0


def main(argv: list[str] | None = None) -> int:
    s = get_settings()
    p = argparse.ArgumentParser(prog="redcloud-demo", description="党建红云 demo: synthetic city and its sources")
    sub = p.add_subparsers(dest="cmd", required=True)

    def city_args(sp):
        sp.add_argument("--scale", type=int, default=s.synth.scale, help="members (10k/30k/100k/300k)")
        sp.add_argument("--seed", type=int, default=s.synth.seed)

    sp = sub.add_parser("synth", help="generate the synthetic city")
    city_args(sp)
    sp.add_argument("--start"), sp.add_argument("--end")
    sp.add_argument("--force", action="store_true", help="regenerate even if an identical city exists")
    sp.set_defaults(fn=cmd_synth)

    sp = sub.add_parser("synth-report", help="the city beside the 党内统计公报 and census figures (targets.toml)")
    city_args(sp)
    sp.add_argument("--write", action="store_true", help="also write the table into docs/synthetic_city.md")
    sp.set_defaults(fn=cmd_synth_report)

    sp = sub.add_parser("load", help="load the city into the source systems and drop exports in the landing folder")
    city_args(sp)
    sp.add_argument("--force", action="store_true")
    sp.set_defaults(fn=cmd_load)

    sp = sub.add_parser("up", help="start the services and the demo's web reference server")
    city_args(sp)
    sp.add_argument("--all", action="store_true",
                    help="also the application services: MLflow UI, SMTP sink, API, Superset, Airflow, and the warm engine (Spark Connect)")
    sp.set_defaults(fn=cmd_up)

    sp = sub.add_parser("demo", help="services + city + sources + main job, end to end")
    city_args(sp)
    sp.add_argument("--in-process", action="store_true",
                    help="run the main job in this process instead of as the redcloud_daily DAG in Airflow")
    sp.set_defaults(fn=cmd_demo)

    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
