"""The ``redcloud`` command: run <stage>, microbatch, services, cards, api. (The demo's commands are ``redcloud-demo``.)"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from redcloud.config import get_settings
from redcloud.stages import registry


def cmd_services(args) -> int:
    from redcloud.services import stack

    if args.action == "up":
        for line in stack.up(apps=args.all, engine=args.engine):
            print(line)
    elif args.action == "down":
        for line in stack.down():
            print(line)
    else:
        for line in stack.status():
            print(line)
    return 0


def cmd_run(args) -> int:
    """One stage (or ``all``) for a logical date: progress on stderr, the result as JSON on stdout."""
    from redcloud import pipeline
    from redcloud.context import RunContext
    from redcloud.progress import Progress

    s = get_settings()
    day = dt.date.fromisoformat(args.date) if args.date else dt.date.fromisoformat(s.synth.end)
    gold_tables = [t for t in (args.gold_tables or "").split(",") if t.strip()]
    if gold_tables and args.stage not in ("gold", "all"):
        print(f"redcloud run: --gold-tables 只适用于 gold 阶段 (or all), not {args.stage}", file=sys.stderr)
        return 2
    if gold_tables:
        from redcloud.stages.gold import TABLES

        unknown = sorted({t.strip() for t in gold_tables} - set(TABLES))
        if unknown:  # before any Spark session starts: a typo is a usage error, not a traceback
            print(f"redcloud run: 未知的 gold 表 (unknown gold table) {', '.join(unknown)}; "
                  f"the gold stage writes: {', '.join(TABLES)}", file=sys.stderr)
            return 2
    ctx = RunContext.create(day, s, run_id=args.run_id, progress=Progress.console(),
                            gold_tables=[t.strip() for t in gold_tables])
    result = pipeline.run_main(ctx) if args.stage == "all" else pipeline.run_stage(ctx, args.stage)
    print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return 0


def engine_settings(s, engine: str):
    """Settings for ``--engine``: ``local`` a JVM of this process's own; ``connect`` the warm engine
    (``[spark] remote``, else this project's Spark Connect server, which must be up); ``auto`` the warm
    engine when it is configured or up, else a JVM of our own."""
    from redcloud.services import spark_connect

    if engine == "local":
        return s.replace(spark={"remote": ""})
    if s.spark.remote:
        return s
    if spark_connect.running(s):
        return s.replace(spark={"remote": spark_connect.url(s)})
    if engine == "connect":
        raise RuntimeError(f"the warm engine is not running at {spark_connect.url(s)}: "
                           "start it with `redcloud services up --engine`")
    return s


def cmd_microbatch(args) -> int:
    """One 15-minute micro-batch of the app's 学习问答 and 驻村 data (bronze -> silver -> gold, same-day reminders)."""
    from redcloud.context import RunContext
    from redcloud.progress import Progress
    from redcloud.stages import microbatch

    s = get_settings()
    try:
        s = engine_settings(s, args.engine)
    except RuntimeError as e:
        print(f"redcloud microbatch: {e}", file=sys.stderr)
        return 2
    day = dt.date.fromisoformat(args.date) if args.date else dt.date.today()
    at = dt.datetime.combine(day, dt.time.fromisoformat(args.at)) if args.at else dt.datetime.now()
    ctx = RunContext.create(day, s, run_id=args.run_id, progress=Progress.console())
    result = microbatch.run(ctx, at)
    result["engine"] = s.spark.remote or f"local ({s.spark.master})"
    print(json.dumps(result, ensure_ascii=False, indent=1, default=str))
    return 0


def cmd_cards(args) -> int:
    """Write each champion's card (``models/<model>/MODEL_CARD.md``) and its MLflow description."""
    from models import MODELS, cards
    from models.common import Env
    from redcloud.context import RunContext

    s = get_settings()
    day = dt.date.fromisoformat(args.date) if args.date else dt.date.fromisoformat(s.synth.end)
    env = Env.from_context(RunContext.create(day, s, run_id="cards"))
    for spec in MODELS:
        card = cards.publish(env, spec.key, write_file=not args.description_only)
        print(f"{spec.key}: " + ("no champion" if card is None else
                                 ("description set" if args.description_only else "MODEL_CARD.md and description written")))
    return 0


def cmd_api(args) -> int:
    from redcloud.api import auth

    return auth.main(args.api_args)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="redcloud", description="党建红云 lakehouse and analytics pipeline")
    sub = p.add_subparsers(dest="cmd", required=True)

    sp = sub.add_parser("services", help="start/stop the project's processes")
    sp.add_argument("action", choices=["up", "down", "status"])
    sp.add_argument("--all", action="store_true",
                    help="also the application services: MLflow UI, SMTP sink, API, Superset, Airflow")
    sp.add_argument("--engine", action="store_true",
                    help="also the warm engine: a Spark Connect server the micro-batch runs on (no JVM per batch)")
    sp.set_defaults(fn=cmd_services)

    sp = sub.add_parser("run", help="run one pipeline stage for a logical date (idempotent)")
    sp.add_argument("stage", help="a stage of the main job (" + " | ".join(registry.NAMES) + "), one of its parts ("
                    + " | ".join(st.name for st in registry.PARTS) + "), or all")
    sp.add_argument("--date", help="logical date YYYY-MM-DD (default: the city's last day)")
    sp.add_argument("--run-id", dest="run_id", help="run id stamped on what the run publishes (Airflow passes its own)")
    sp.add_argument("--gold-tables", dest="gold_tables", metavar="T1,T2",
                    help="gold: rebuild only these tables (and gate them); the others stay as they are")
    sp.set_defaults(fn=cmd_run)

    sp = sub.add_parser("microbatch", help="one 15-minute micro-batch of the app's 学习问答 and 驻村 data, with same-day reminders")
    sp.add_argument("--date", help="logical date YYYY-MM-DD (default: today)")
    sp.add_argument("--at", help="time of day HH:MM the batch runs up to (default: now)")
    sp.add_argument("--run-id", dest="run_id", help="run id (Airflow passes its own)")
    sp.add_argument("--engine", choices=["auto", "local", "connect"], default="auto",
                    help="Spark: the warm engine (Spark Connect, `services up --engine`) when it is up (auto), "
                         "a JVM of this process (local), or the warm engine only (connect)")
    sp.set_defaults(fn=cmd_microbatch)

    sp = sub.add_parser("cards", help="write each model's card from its champion's MLflow run")
    sp.add_argument("--date", help="logical date YYYY-MM-DD (default: the city's last day)")
    sp.add_argument("--description-only", action="store_true", help="set the MLflow descriptions, leave the files")
    sp.set_defaults(fn=cmd_cards)

    sp = sub.add_parser("api", help="API credentials scoped to an organisation: token | key (see docs/api.md)",
                        add_help=False)
    sp.add_argument("api_args", nargs=argparse.REMAINDER)
    sp.set_defaults(fn=cmd_api)

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
