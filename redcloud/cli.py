"""The ``redcloud`` command: synth, load, services, run <stage>, demo."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

from redcloud.config import get_settings


def _city(args) -> Path:
    from redcloud.synth import city_dir

    s = get_settings()
    return city_dir(s.paths.synth_dir, args.scale, args.seed)


def cmd_synth(args) -> int:
    from redcloud.synth import generate

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


def cmd_load(args) -> int:
    from redcloud.sources import ironcage_landing, orgdb

    s = get_settings()
    city = _city(args)
    if not (city / "manifest.json").exists():
        print(f"no synthetic city at {city}: run `redcloud synth --scale {args.scale} --seed {args.seed}`", file=sys.stderr)
        return 2
    urls = {sys_: s.source_url(sys_) for sys_ in ("org", "cadre", "app")}
    res = orgdb.load_city(urls, city, force=args.force)
    for system, counts in res.items():
        if counts:
            print(f"loaded {system}: " + ", ".join(f"{k}={v:,}" for k, v in counts.items()))
        else:
            print(f"{system}: already loaded (same city checksum)")
    n = ironcage_landing.drop_exports(city, Path(s.paths.landing_dir))
    print(f"数据铁笼 landing folder {s.paths.landing_dir}: {n} new export files dropped")
    return 0


def cmd_services(args) -> int:
    from redcloud.services import stack

    if args.action == "up":
        for line in stack.up(args.scale, args.seed, apps=args.all):
            print(line)
    elif args.action == "down":
        for line in stack.down():
            print(line)
    else:
        for line in stack.status():
            print(line)
    return 0


def cmd_run(args) -> int:
    from redcloud import pipeline

    day = dt.date.fromisoformat(args.date) if args.date else dt.date.fromisoformat(get_settings().synth.end)
    result = pipeline.run_stage(args.stage, day, args.run_id)
    print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return 0


def _fingerprint(city: Path) -> str | None:
    """City checksum + the code's git commit (None when the tree has uncommitted changes or no git)."""
    import subprocess

    from redcloud.config import PROJECT_ROOT

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
    from redcloud.services import stack

    s = get_settings()
    t0 = time.perf_counter()
    print("== 1/4 services")
    for line in stack.up(args.scale, args.seed):
        print("  " + line)
    print("== 2/4 synthetic city")
    cmd_synth(argparse.Namespace(scale=args.scale, seed=args.seed, start=None, end=None, force=False))
    print("== 3/4 source systems")
    cmd_load(argparse.Namespace(scale=args.scale, seed=args.seed, force=False))
    print("== 4/4 main job")
    day = dt.date.fromisoformat(s.synth.end)
    marker = Path(s.paths.run_dir) / "state" / f"main-{day.isoformat()}.json"
    fingerprint = _fingerprint(_city(args))
    if (fingerprint and marker.exists() and Path(s.paths.lake_root).exists()
            and json.loads(marker.read_text()).get("fingerprint") == fingerprint):
        print(json.loads(marker.read_text())["summary"])
        print(f"main job already ran for {day} on this city and code (fingerprint {fingerprint[:12]}); "
              f"`redcloud run all --date {day}` rebuilds it (idempotent)")
    else:
        summary = pipeline.run_main(day)
        text = pipeline.format_summary(summary)
        print(text)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"fingerprint": fingerprint, "summary": text}, ensure_ascii=False))
    print(f"demo finished in {time.perf_counter() - t0:.0f}s; lake at {s.paths.lake_root}")
    return 0


def cmd_api(args) -> int:
    from redcloud.api import auth

    return auth.main(args.api_args)


def main(argv: list[str] | None = None) -> int:
    s = get_settings()
    p = argparse.ArgumentParser(prog="redcloud", description="党建红云 lakehouse and analytics pipeline")
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("synth", help="generate the synthetic city")
    sp.add_argument("--scale", type=int, default=s.synth.scale, help="members (10k/30k/100k/300k)")
    sp.add_argument("--seed", type=int, default=s.synth.seed)
    sp.add_argument("--start"), sp.add_argument("--end")
    sp.add_argument("--force", action="store_true", help="regenerate even if an identical city exists")
    sp.set_defaults(fn=cmd_synth)

    sp = sub.add_parser("load", help="load the city into the source systems and drop exports in the landing folder")
    sp.add_argument("--scale", type=int, default=s.synth.scale)
    sp.add_argument("--seed", type=int, default=s.synth.seed)
    sp.add_argument("--force", action="store_true")
    sp.set_defaults(fn=cmd_load)

    sp = sub.add_parser("services", help="start/stop the project's processes")
    sp.add_argument("action", choices=["up", "down", "status"])
    sp.add_argument("--all", action="store_true",
                    help="also the application services: MLflow UI, API, Superset, Airflow")
    sp.add_argument("--scale", type=int, default=s.synth.scale)
    sp.add_argument("--seed", type=int, default=s.synth.seed)
    sp.set_defaults(fn=cmd_services)

    sp = sub.add_parser("run", help="run one pipeline stage for a logical date (idempotent)")
    sp.add_argument("stage", help="bronze | silver | gold | models | marts | alerts | publish | brief | all; or one source kind: bronze_orgdb | bronze_ironcage | bronze_web")
    sp.add_argument("--date", help="logical date YYYY-MM-DD (default: the city's last day)")
    sp.add_argument("--run-id", dest="run_id", help="run id stamped on what the run publishes (Airflow passes its own)")
    sp.set_defaults(fn=cmd_run)

    sp = sub.add_parser("api", help="API credentials scoped to an organisation: token | key (see docs/api.md)",
                        add_help=False)
    sp.add_argument("api_args", nargs=argparse.REMAINDER)
    sp.set_defaults(fn=cmd_api)

    sp = sub.add_parser("demo", help="services + city + sources + main job, end to end")
    sp.add_argument("--scale", type=int, default=s.synth.scale)
    sp.add_argument("--seed", type=int, default=s.synth.seed)
    sp.set_defaults(fn=cmd_demo)

    args = p.parse_args(argv)
    try:
        return args.fn(args)
    except Exception as exc:  # a failed quality gate is an expected, loud stop: no traceback needed
        if type(exc).__name__ == "GateFailed":
            print(f"质量闸门未通过，下游不发布 (quality gate failed; nothing downstream runs):\n{exc}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
