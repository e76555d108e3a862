"""The ``marts`` stage: ``dbt build`` of ``dbt_project/`` (dbt-spark) for one logical date.

dbt runs in-process with :class:`dbt.cli.main.dbtRunner`, after :func:`redcloud.spark.get_spark` has
created the Delta-configured session, so dbt-spark (``method: session``) reuses it: one JVM. The same
project also runs as a separate process (``dbt build`` from the pipeline venv, e.g. Airflow/Cosmos):
``python -m redcloud.marts env`` prints the environment it needs (lake root, logical date, jars, run
folder for the Derby metastore and warehouse).

Marts are Delta tables at ``<lake_root>/marts/<model>``. Incremental marts replace only the logical
date's partition (date or month), so reruns change nothing and backfills touch only their date.
Marts over the models' score tables (tag ``model_outputs``) are built only when their score table
exists in gold; otherwise they are skipped and the skip is logged and reported.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

from redcloud.config import Settings, get_settings

log = logging.getLogger("redcloud.marts")

# Marts over model outputs -> the gold score table each one reads.
MODEL_OUTPUT_MARTS = {
    "mart_vitality_by_unit": "score_member_vitality",
    "mart_cadre_evaluation_by_unit": "score_cadre_evaluation",
    "mart_branch_archetypes": "score_branch_innovation",
    "mart_integrity_flags": "score_integrity_portrait",
}
CORE_MARTS = (
    "mart_member_composition", "mart_membership_changes", "mart_org_life_monthly", "mart_learning_compliance",
    "mart_village_work", "mart_poverty_projects", "mart_power_operation_monthly",
)
MARTS = CORE_MARTS + tuple(MODEL_OUTPUT_MARTS)
MODEL_OUTPUT_STAGING = {
    "score_member_vitality": "stg_score_member_vitality",
    "score_cadre_evaluation": "stg_score_cadre_evaluation",
    "score_branch_innovation": "stg_score_branch_innovation",
    "score_integrity_portrait": "stg_score_integrity_portrait",
}


class DbtBuildFailed(RuntimeError):
    """dbt reported a failed model or test; nothing downstream should publish."""


def _is_delta(path: str) -> bool:
    return (Path(path) / "_delta_log").is_dir() if "://" not in path else True


def env(settings: Settings | None = None, day: dt.date | None = None) -> dict[str, str]:
    """Environment for a dbt run (in-process or ``dbt build`` in a subprocess)."""
    from redcloud.spark import jars

    s = settings or get_settings()
    run = Path(s.paths.run_dir) / "dbt"
    out = {
        "REDCLOUD_PATHS__LAKE_ROOT": s.paths.lake_root,
        "REDCLOUD_DBT__TARGET": s.dbt.target,
        "REDCLOUD_DBT__THREADS": str(s.dbt.threads),
        "REDCLOUD_DBT_RUN_DIR": str(run),
        "REDCLOUD_DBT_SPARK_JARS": ",".join(jars(s)),
        "REDCLOUD_SPARK__MASTER": s.spark.master,
        "REDCLOUD_SPARK__SHUFFLE_PARTITIONS": str(s.spark.shuffle_partitions),
        "REDCLOUD_SPARK__DRIVER_MEMORY": s.spark.driver_memory,
        "DBT_TARGET_PATH": str(run / "target"),
        "DBT_LOG_PATH": str(run / "logs"),
        "DBT_PROFILES_DIR": s.dbt.project_dir,
        "DBT_PROJECT_DIR": s.dbt.project_dir,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "SPARK_LOCAL_IP": "127.0.0.1",  # a stand-alone dbt's JVM binds loopback only
        "TZ": "Asia/Shanghai",
    }
    if day is not None:
        out["REDCLOUD_LOGICAL_DATE"] = day.isoformat()
    return out


def plan(settings: Settings | None = None) -> dict:
    """Which model-output marts can be built now (their score table exists in gold) and which are skipped."""
    s = settings or get_settings()
    build, skip = [], {}
    for mart, table in MODEL_OUTPUT_MARTS.items():
        if _is_delta(f"{s.paths.lake_root}/gold/{table}"):
            build.append(mart)
        else:
            skip[mart] = f"gold/{table} does not exist yet"
    return dict(build=build, skip=skip)


def existing_marts(settings: Settings | None = None) -> list[str]:
    s = settings or get_settings()
    root = Path(s.paths.lake_root) / "marts"
    if "://" in s.paths.lake_root or not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "_delta_log").is_dir() and not p.name.startswith("_"))


SCHEMA = "redcloud_marts"  # profiles.yml schema


def register_existing(spark, settings: Settings | None = None) -> list[str]:
    """Point the session catalog's mart tables at ``<lake_root>/marts/<model>`` before dbt starts.

    dbt reads its relation cache before any hook runs, and the in-process session's catalog is
    in-memory: without this, every run would see no table and rebuild incremental marts from scratch.
    A table registered for another lake root (tests switch lakes) is re-pointed; one whose folder is
    gone is dropped (dropping an external table keeps files)."""
    s = settings or get_settings()
    spark.sql(f"create schema if not exists {SCHEMA}")
    present = {r.tableName for r in spark.sql(f"show tables in {SCHEMA}").collect()}
    registered = []
    for name in MARTS:
        path = f"{s.paths.lake_root.rstrip('/')}/marts/{name}"
        exists = _is_delta(path)
        if name in present:
            try:
                loc = spark.sql(f"describe detail {SCHEMA}.{name}").collect()[0]["location"]
            except Exception:  # noqa: BLE001 - files gone
                loc = None
            if not exists or loc is None or loc.removeprefix("file:").rstrip("/") != path:
                spark.sql(f"drop table if exists {SCHEMA}.{name}")
                present.discard(name)
        if exists and name not in present:
            try:
                spark.sql(f"create table {SCHEMA}.{name} using delta location '{path}'")
            except Exception as exc:  # noqa: BLE001 - e.g. a folder without a commit yet
                log.warning("marts: cannot register %s at %s (%s); dbt will rebuild it", name, path, exc)
                continue
        if exists:
            registered.append(name)
    return registered


def _invoke(args: list[str]):
    from dbt.cli.main import dbtRunner

    return dbtRunner().invoke(args)


def _common_args(s: Settings, day: dt.date) -> list[str]:
    vars_ = {"logical_date": day.isoformat(), "existing_marts": existing_marts(s)}
    return ["--project-dir", s.dbt.project_dir, "--profiles-dir", s.dbt.project_dir, "--target", s.dbt.target,
            "--vars", json.dumps(vars_)]


class _DbtEnv:
    """Set the dbt environment for the block; restore the environment and the Spark session's SQL
    settings that dbt-spark changes (it forces ``spark.sql.ansi.enabled=false``)."""

    KEEP = ("spark.sql.ansi.enabled", "spark.sql.sources.partitionOverwriteMode")

    def __init__(self, spark, s: Settings, day: dt.date):
        self.spark, self.vars = spark, env(s, day)

    def __enter__(self):
        self.old_env = {k: os.environ.get(k) for k in self.vars}
        os.environ.update(self.vars)
        Path(self.vars["REDCLOUD_DBT_RUN_DIR"]).mkdir(parents=True, exist_ok=True)
        self.old_conf = {k: self.spark.conf.get(k, None) for k in self.KEEP} if self.spark is not None else {}
        return self

    def __exit__(self, *exc):
        for k, v in self.old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for k, v in self.old_conf.items():
            if v is None:
                self.spark.conf.unset(k)
            else:
                self.spark.conf.set(k, v)
        return False


SEEDS = ("cn_calendar_days",)


def reset_seeds(spark, settings: Settings | None = None) -> None:
    """Seeds are static reference data, loaded from their CSV on every build: forget the previous
    load first (catalog entry and Delta folder), so a rerun reloads instead of appending the rows again."""
    s = settings or get_settings()
    for name in SEEDS:
        spark.sql(f"drop table if exists {SCHEMA}.{name}")
    root = s.paths.lake_root.rstrip("/") + "/marts/_seeds"
    if "://" not in root or root.startswith("file:"):
        shutil.rmtree(root.removeprefix("file:"), ignore_errors=True)


def build(spark, day: dt.date, select: list[str] | None = None, full_refresh: bool = False,
          settings: Settings | None = None) -> dict:
    """``dbt build`` (seeds, models, data tests, unit tests) for the logical date, in-process."""
    s = settings or get_settings()
    p = plan(s)
    for mart, why in p["skip"].items():
        log.warning("marts: skipping %s (%s)", mart, why)
    args = ["build", *_common_args(s, day)]
    if select:
        args += ["--select", *select]
    exclude = list(p["skip"]) + [MODEL_OUTPUT_STAGING[MODEL_OUTPUT_MARTS[m]] for m in p["skip"]]
    if exclude:
        args += ["--exclude", *exclude]
    if full_refresh:
        args.append("--full-refresh")
    t0 = time.perf_counter()
    with _DbtEnv(spark, s, day):
        if s.dbt.target == "session":
            spark.sql(f"create schema if not exists {SCHEMA}")
            reset_seeds(spark, s)
            register_existing(spark, s)
        res = _invoke(args)
    seconds = round(time.perf_counter() - t0, 1)
    nodes = []
    for r in (getattr(res.result, "results", None) or []):
        node = r.node
        nodes.append(dict(name=node.name, type=node.resource_type.value if hasattr(node.resource_type, "value")
                          else str(node.resource_type), status=str(r.status.value if hasattr(r.status, "value")
                                                                   else r.status),
                          seconds=round(r.execution_time or 0, 2), message=r.message))
    failed = [n for n in nodes if n["status"] in ("error", "fail", "runtime error")]
    if not res.success or failed:
        detail = "; ".join(f"{n['type']} {n['name']}: {n['status']} {n['message'] or ''}"[:400] for n in failed)
        raise DbtBuildFailed(f"dbt build failed for {day}: {detail or res.exception}")
    return dict(nodes=nodes, skipped=p["skip"], seconds=seconds)


def mart_rows(spark, names=MARTS, settings: Settings | None = None) -> list[dict]:
    s = settings or get_settings()
    out = []
    for name in names:
        path = f"{s.paths.lake_root}/marts/{name}"
        if _is_delta(path):
            out.append(dict(table=f"marts/{name}", rows=spark.read.format("delta").load(path).count()))
    return out


def run(spark, day: dt.date, run_id: str) -> dict:
    """Pipeline stage ``marts``: dbt build for the logical date; row counts of every mart built."""
    result = build(spark, day)
    built = [n["name"] for n in result["nodes"] if n["type"] == "model" and n["name"] in MARTS]
    kinds = {}
    for n in result["nodes"]:
        kinds.setdefault(n["type"], {}).setdefault(n["status"], 0)
        kinds[n["type"]][n["status"]] += 1
    return dict(tables=mart_rows(spark, built), run_id=run_id, logical_date=day.isoformat(),
                dbt=kinds, skipped=result["skipped"], dbt_seconds=result["seconds"])


def docs(spark=None, day: dt.date | None = None, settings: Settings | None = None) -> Path:
    """``dbt docs generate --static --empty-catalog``: returns the self-contained ``static_index.html`` (in <run_dir>/dbt/target)."""
    s = settings or get_settings()
    day = day or dt.date.fromisoformat(s.synth.end)
    if spark is None:
        from redcloud.spark import get_spark

        spark = get_spark(s)
    with _DbtEnv(spark, s, day) as e:
        # --empty-catalog: column docs come from the YAML; no catalog queries against Spark (the sources
        # live in the pseudo-schema `delta`, which has no catalog to list), and it takes seconds.
        res = _invoke(["docs", "generate", "--static", "--empty-catalog", *_common_args(s, day)])
        target = Path(e.vars["DBT_TARGET_PATH"])
    if not res.success:
        raise DbtBuildFailed(f"dbt docs generate failed: {res.exception}")
    return target / "static_index.html"


def write_calendar_seed(path: Path | None = None, start: dt.date = dt.date(2020, 1, 1),
                        end: dt.date = dt.date(2026, 12, 31), settings: Settings | None = None) -> Path:
    """Regenerate ``seeds/cn_calendar_days.csv`` from chinesecalendar: public holidays (incl. bridging
    rest days) and make-up workdays (调休); every other Monday-Friday is a working day."""
    from redcloud import workdays

    s = settings or get_settings()
    path = path or Path(s.dbt.project_dir) / "seeds" / "cn_calendar_days.csv"
    rows = ["calendar_date,day_kind"]
    day = start
    while day <= end:
        if workdays.is_holiday(day):
            rows.append(f"{day.isoformat()},public_holiday")
        elif workdays.is_workday(day) and day.weekday() >= 5:
            rows.append(f"{day.isoformat()},makeup_workday")
        day += dt.timedelta(days=1)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m redcloud.marts env [DATE]`` prints ``export`` lines for a stand-alone dbt;
    ``build DATE`` / ``docs [DATE]`` run in-process; ``calendar`` regenerates the calendar seed."""
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = argv[0] if argv else "env"
    day = dt.date.fromisoformat(argv[1]) if len(argv) > 1 else None
    if cmd == "env":
        import shlex

        for k, v in env(get_settings(), day).items():
            print(f"export {k}={shlex.quote(v)}")
        return 0
    if cmd == "calendar":
        print(write_calendar_seed())
        return 0
    from redcloud.spark import get_spark

    spark = get_spark()
    if cmd == "build":
        print(json.dumps(run(spark, day or dt.date.fromisoformat(get_settings().synth.end), "manual"),
                         ensure_ascii=False, indent=1, default=str))
    elif cmd == "docs":
        print(docs(spark, day))
    else:
        print(f"unknown command {cmd!r}: env | build DATE | docs [DATE] | calendar", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
