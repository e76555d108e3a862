"""The 15-minute micro-batch on a city lake: wall and CPU seconds, beside the full rebuild of the
same gold table in the same run (figures, never assertions).

    .run/venv/pipeline/bin/python -m benchmarks.microbatch            # on the demo's lake (make demo first)
    .run/venv/pipeline/bin/python -m benchmarks.microbatch --lake-root .run/bench/10000/lake --app-db rc_bench_10000_app

Works on copies, never on the demo itself: the lake is copied to ``.run/bench/microbatch/lake`` and
the app database to ``rc_bench_mb_app`` (a PostgreSQL template copy). The day is the first working
day after the lake's last 学习问答 day. A share of the obligated cadres answer in the morning
(``--morning-share``) and a few more after lunch, and the same share of the 驻村 assignments record
their day in the morning; then, in one warm Spark process:

1. ``morning``: the micro-batch at 11:00 (bronze -> silver -> gold, no reminders yet);
2. ``afternoon``: the micro-batch at 16:00, with the day's reminders (enqueued; SMTP delivery off);
3. ``full_rebuild``: ``gold.run(only=FACTS)``, the nightly path for the same two tables.

The JVM start is reported on its own (``spark_session``): without the warm engine the CLI and the
Airflow task pay it on every micro-batch. ``--engine connect`` measures the batches as deployed with
the warm engine: a Spark Connect server is started here (``spark_session`` is then its start, paid
once a day), and each batch is a new ``redcloud microbatch`` process on it, as Airflow's task runs it. Writes ``results/microbatch_<members>_<stamp>.{json,md}``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import random
from pathlib import Path

from benchmarks.run import RESULTS, Probe, scratch_lake

DB = "rc_bench_mb_app"


def _answers(members: list[int], day: dt.date, start: dt.time, span_min: int, rng: random.Random) -> None:
    from redcloud.services import postgres

    first = postgres.execute(DB, "select coalesce(max(answer_id), 0) + 1 from learning_answers")[0][0]
    rows = []
    for i, m in enumerate(members):
        at = dt.datetime.combine(day, start) + dt.timedelta(minutes=rng.randrange(span_min))
        rows.append((first + i, m, day, at, 5, rng.randint(2, 5), 80, at))
    conn = postgres.connect(DB)
    with conn, conn.cursor() as cur:
        cur.executemany("insert into learning_answers (answer_id, member_id, answer_date, answered_at, questions, "
                        "correct, score, updated_at) values (%s, %s, %s, %s, %s, %s, %s, %s)", rows)
    conn.close()


def _village_records(assignments: list[tuple[int, int, int]], day: dt.date, rng: random.Random) -> None:
    """One 每日工作记实 each for ``assignments`` (assignment, cadre, village), signed in in the morning."""
    from redcloud.services import postgres

    first = postgres.execute(DB, "select coalesce(max(record_id), 0) + 1 from village_work_records")[0][0]
    rows = []
    for i, (a, c, v) in enumerate(assignments):
        at = dt.datetime.combine(day, dt.time(8)) + dt.timedelta(minutes=rng.randrange(120))
        rows.append((first + i, a, c, v, day, "走访农户，了解产业发展情况", rng.randint(0, 4), True, at, at))
    conn = postgres.connect(DB)
    with conn, conn.cursor() as cur:
        cur.executemany("insert into village_work_records (record_id, assignment_id, cadre_id, village_org_id, work_date, "
                        "content, photo_count, signed_in, sign_in_at, updated_at) values "
                        "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    conn.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli_batch(st, day: dt.date, at: dt.time) -> dict:
    """One micro-batch as Airflow's task runs it: a new ``redcloud microbatch`` process on the warm engine."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "REDCLOUD_PATHS__LAKE_ROOT": st.paths.lake_root, "REDCLOUD_PATHS__RUN_DIR": st.paths.run_dir,
           "REDCLOUD_SOURCES__APP_URL": st.sources.app_url, "REDCLOUD_ALERTS__DELIVER": "false",
           "REDCLOUD_SPARK__REMOTE": st.spark.remote}
    cp = subprocess.run([sys.executable, "-m", "redcloud.cli", "microbatch", "--date", day.isoformat(),
                         "--at", at.strftime("%H:%M"), "--engine", "connect", "--run-id", "bench_microbatch"],
                        env=env, capture_output=True, text=True, timeout=1800)
    if cp.returncode:
        raise RuntimeError(f"redcloud microbatch failed ({cp.returncode}):\n{cp.stderr[-3000:]}")
    return json.loads(cp.stdout)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lake-root", help="the lake to copy (default: the configured lake, i.e. the demo's)")
    p.add_argument("--app-db", help="the app source database to copy (default: the configured one)")
    p.add_argument("--morning-share", type=float, default=0.6, help="obligated cadres answering before 11:00")
    p.add_argument("--engine", choices=["local", "connect"], default="local",
                   help="local: both batches in this process's JVM; connect: each batch a new `redcloud microbatch` "
                        "process (as Airflow runs it) on the warm engine, a Spark Connect server started here")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    from redcloud import workdays
    from redcloud.config import get_settings
    from redcloud.context import RunContext
    from redcloud.lake import Lake
    from redcloud.services import postgres

    s = get_settings()
    src = Path(args.lake_root or s.paths.lake_root)
    app_db = args.app_db or s.source_url("app").rsplit("/", 1)[1]
    postgres.copy_database(app_db, DB)
    st, copy_s = scratch_lake(s, src, "microbatch", sources={"app_url": s.sources.app_url.rsplit("/", 1)[0] + "/" + DB},
                              alerts={"deliver": False})
    lake = Lake(st.paths.lake_root)
    last = lake.pandas("gold", "fct_learning_daily", ["work_date"])["work_date"].max()
    day = last + dt.timedelta(days=1)
    while not workdays.is_workday(day):
        day += dt.timedelta(days=1)
    on_last = lake.pandas("gold", "fct_learning_daily", ["member_id", "is_obligated"],
                          filters=[("work_date", "=", last)])
    obligated = sorted(int(m) for m in on_last.loc[on_last.is_obligated, "member_id"].unique())
    rng = random.Random(20251231)
    rng.shuffle(obligated)
    k = int(len(obligated) * args.morning_share)
    morning, after_lunch = obligated[:k], obligated[k:k + max(1, len(obligated) // 10)]
    _answers(morning, day, dt.time(8, 30), 150, rng)
    vlast = lake.pandas("gold", "fct_village_work_daily", ["work_date"])["work_date"].max()
    active = lake.pandas("gold", "fct_village_work_daily", ["assignment_id", "cadre_id", "village_org_id"],
                         filters=[("work_date", "=", vlast)])
    active = sorted((int(r.assignment_id), int(r.cadre_id), int(r.village_org_id)) for r in active.itertuples())
    rng.shuffle(active)
    village = active[:int(len(active) * args.morning_share)]
    _village_records(village, day, rng)
    members = len(lake.pandas("silver", "members", ["member_id"], alive=True))

    stages: dict[str, dict] = {}
    with contextlib.ExitStack() as cleanup:   # the warm engine and the database copy go, whatever happens
        engine = None
        with Probe() as pr:
            from redcloud.spark import get_spark

            if args.engine == "connect":
                from redcloud.services import spark_connect

                engine = spark_connect
                st = st.replace(spark={"connect_port": _free_port()})   # a server of its own, never the demo's
                cleanup.callback(spark_connect.stop, st)
                print(spark_connect.start(st), flush=True)
                st = st.replace(spark={"remote": spark_connect.url(st)})
            spark = get_spark(st)
            spark.range(1).count()
        stages["spark_session"] = pr.result
        from redcloud.stages import gold, microbatch

        ctx = RunContext.create(day, st, run_id="bench_microbatch", spark=spark)

        def batch(at: dt.time) -> dict:
            if engine is None:
                return microbatch.run(ctx, dt.datetime.combine(day, at))
            return _cli_batch(st, day, at)

        with Probe() as pr:
            r1 = batch(dt.time(11))
        facts = list(microbatch.FACTS)
        stages["morning"] = {**pr.result, "steps": r1["steps"], "rows_replaced": sum(r1["gold"][f]["rows_replaced"] for f in facts),
                             "from_date": min(r1["gold"][f]["from_date"] for f in facts),
                             "bronze_rows": sum(b["bronze_rows"] for b in r1["bronze"])}
        _answers(after_lunch, day, dt.time(13), 120, rng)
        with Probe() as pr:
            r2 = batch(dt.time(16))
        stages["afternoon"] = {**pr.result, "steps": r2["steps"], "rows_replaced": sum(r2["gold"][f]["rows_replaced"] for f in facts),
                               "bronze_rows": sum(b["bronze_rows"] for b in r2["bronze"]),
                               "reminders": sum(r2["alerts"]["alerts_active"].get(k, 0)
                                                for k in ("learning_reminder", "village_reminder")),
                               "messages_new": r2["alerts"]["messages_new"]}
        with Probe() as pr:
            gold.run(ctx, only=set(facts))
        rows = sum(lake.count("gold", f) for f in facts)
        stages["full_rebuild"] = {**pr.result, "rows": rows}
        postgres.drop_database(DB)

    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    res = dict(members=members, engine=args.engine, obligated_cadres=len(obligated), day=day.isoformat(), lake_copy_s=round(copy_s, 1),
               morning_answers=len(morning), village_records=len(village), village_assignments=len(active), after_lunch_answers=len(after_lunch), stages=stages,
               ratio_full_to_afternoon_cpu=round(stages["full_rebuild"]["cpu_s"] / stages["afternoon"]["cpu_s"], 2),
               ratio_full_to_afternoon_wall=round(stages["full_rebuild"]["wall_s"] / stages["afternoon"]["wall_s"], 2))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"microbatch_{members}_{stamp}"
    (out / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))
    lines = [f"# Micro-batch, {members:,} members, {day.isoformat()} (run {stamp})", "",
             f"{len(obligated):,} obligated cadres; {len(morning):,} answer before 11:00, {len(after_lunch):,} after lunch; "
             f"{len(village):,} of {len(active):,} 驻村 assignments record their day before 10:00.",
             f"`{'`, `'.join(facts)}`: {rows:,} rows after the day.", "",
             "| step | wall s | CPU s | peak RSS MB | notes |", "|---|---|---|---|---|"]
    how = ("each batch a new `redcloud microbatch --engine connect` process on the warm engine (as Airflow runs it)"
           if engine is not None else "both batches in this process, one warm JVM")
    lines.insert(4, f"Engine: `--engine {args.engine}`: {how}.")
    notes = {"spark_session": ("the warm engine's start (a Spark Connect server): once a day, not per batch"
                               if engine is not None else "JVM start, paid per CLI/Airflow micro-batch without the warm engine"),
             "morning": f"11:00: bronze -> silver -> gold, {stages['morning']['rows_replaced']:,} rows recomputed "
                        f"from {stages['morning']['from_date']}",
             "afternoon": f"16:00: the same, {stages['afternoon']['rows_replaced']:,} rows, and "
                          f"{stages['afternoon']['reminders']:,} reminders ({stages['afternoon']['messages_new']:,} messages enqueued)",
             "full_rebuild": f"gold.run(only={{{', '.join(facts)}}}): the nightly path for the same tables"}
    for k, v in stages.items():
        lines.append(f"| {k} | {v['wall_s']} | {v['cpu_s']} | {v['peak_rss_mb']} | {notes[k]} |")
    for k in ("morning", "afternoon"):
        lines.append(f"| ↳ {k} by step (wall s, gates included) | | | | "
                     + ", ".join(f"{n} {v}" for n, v in stages[k]["steps"].items()) + " |")
    lines += ["", f"Full rebuild of the table ÷ the afternoon micro-batch (all its steps): "
                  f"CPU {res['ratio_full_to_afternoon_cpu']}x, wall {res['ratio_full_to_afternoon_wall']}x."]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
