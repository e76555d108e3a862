"""The stage runner: runs the stages of :mod:`redcloud.stages.registry` for one run context.

``run_stage(ctx, "silver")`` runs one stage (its parts in order, for a composite stage);
``run_main(ctx)`` runs the main job, every stage in order. Every stage is idempotent per logical date.

Write-audit-publish: a stage with a ``gate`` records the Delta version of every table it may write
(:data:`GATED_TABLES`) before it runs; after it, the layer's quality gate validates what was
written, and a failed gate puts every one of those tables back to its previous version (tables the
run created are removed) before :class:`redcloud.quality.GateFailed` stops the job, so no reader
ever builds on a failed layer. ``ops/quality_results`` keeps the verdict.

Every stage's start and end is recorded in ``ops/runs`` (:mod:`redcloud.runs`): a stage a dead
process left half-done shows as ``running``, and publish refuses to build a snapshot past it.

Reconciliation (``ops/reconciliation``, :mod:`redcloud.stages.reconciliation`) records, per source
table and batch, source rows = bronze rows + rejected rows (bronze step) and bronze rows = silver
rows + quarantine rows (silver step).
"""

from __future__ import annotations

import importlib
import logging
import time
from typing import Callable

from redcloud import runs
from redcloud.context import RunContext
from redcloud.stages import registry

log = logging.getLogger(__name__)

# what a gated stage may write, restored together when its gate fails: layer -> (layer, table or "*")
GATED_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "silver": (("silver", "*"), ("quarantine", "*"), ("ops", "reconciliation")),
    "gold": (("gold", "*"),),
}


def resolve(stage: registry.Stage) -> Callable[[RunContext], dict]:
    """The function behind a stage's ``entry`` ("module:function")."""
    module, _, fn = stage.entry.partition(":")
    return getattr(importlib.import_module(module), fn)


def _versions(ctx: RunContext, layer: str) -> dict[tuple[str, str], int | None]:
    out = {}
    for lay, name in GATED_TABLES[layer]:
        names = ctx.lake.tables(lay) if name == "*" else [name]
        for n in names:
            out[(lay, n)] = ctx.lake.version(lay, n)
    return out


def restore(ctx: RunContext, layer: str, before: dict[tuple[str, str], int | None]) -> list[str]:
    """Put every table a gated stage may have written back to its version in ``before``."""
    restored = []
    now = _versions(ctx, layer)
    for key in sorted(set(before) | set(now)):
        prev, cur = before.get(key), now.get(key)
        if prev != cur:
            ctx.lake.restore(ctx.spark, key[0], key[1], prev)
            restored.append(f"{key[0]}/{key[1]}@{'(none)' if prev is None else prev}")
    return restored


def _replaced_rows(result: dict) -> dict | None:
    """The rows a stage replaced in the tables it updated from a date on (the gold stage's daily
    facts: ``increments``, table -> first date): the gate checks those rows, and the tables' keys
    and row counts whole."""
    if not result.get("increments"):
        return None
    import datetime as dt

    from pyspark.sql import functions as F

    return {t: F.col("work_date") >= F.lit(dt.date.fromisoformat(d)) for t, d in result["increments"].items()}


def _run_leaf(ctx: RunContext, stage: registry.Stage) -> dict:
    fn = resolve(stage)
    if not stage.gate:
        return fn(ctx)
    from redcloud import quality

    before = _versions(ctx, stage.gate)
    result = fn(ctx)
    t_gate = time.perf_counter()
    try:
        with ctx.progress.step(f"quality gate {stage.gate}"):
            # a partial gold rebuild validates what it rebuilt (the other tables did not change)
            only = sorted(ctx.gold_tables) if stage.gate == "gold" and ctx.gold_tables else None
            results = quality.gate(ctx, stage.gate, only, batches=_replaced_rows(result))
    except quality.GateFailed as failed:
        restored = restore(ctx, stage.gate, before)
        ctx.progress.note(f"质量闸门未通过：{len(restored)} 张表已恢复到运行前的版本 (restored: {', '.join(restored)})")
        failed.restored = restored
        raise
    result["quality"] = dict(layer=stage.gate, suites=len(results), passed=True,
                             expectations=sum(r.n_expectations for r in results),
                             seconds=round(time.perf_counter() - t_gate, 2))
    ctx.progress.note(f"quality gate {stage.gate} passed: {result['quality']['suites']} suites, "
                      f"{result['quality']['expectations']} expectations")
    return result


def run_stage(ctx: RunContext, name: str) -> dict:
    """One stage of the registry (a composite runs its parts in order) for ``ctx``; its start and end
    are recorded in ``ops/runs`` (:mod:`redcloud.runs`)."""
    stage = registry.get(name)
    t0 = time.perf_counter()
    runs.record(ctx.lake, ctx.day, stage.name, ctx.run_id, runs.RUNNING)
    try:
        with ctx.progress.stage(stage.name, stage.title):
            if stage.parts:
                parts = {p: run_stage(ctx, p) for p in stage.parts}
                result = {"parts": parts, "tables": [t for r in parts.values() for t in r.get("tables", [])]}
            else:
                result = _run_leaf(ctx, stage)
    except BaseException as exc:
        runs.record(ctx.lake, ctx.day, stage.name, ctx.run_id, runs.FAILED, round(time.perf_counter() - t0, 1),
                    f"{type(exc).__name__}: {exc}")
        raise
    result["seconds"] = round(time.perf_counter() - t0, 1)
    runs.record(ctx.lake, ctx.day, stage.name, ctx.run_id, runs.SUCCEEDED, result["seconds"])
    return result


def run_main(ctx: RunContext, stages: tuple[str, ...] | None = None) -> dict:
    """The main job for one logical date: every stage in order (or ``stages``), one run id for all."""
    names = list(stages or registry.NAMES)
    with ctx.progress.job(f"main job {ctx.day.isoformat()} ({ctx.run_id})", names):
        return {name: run_stage(ctx, name) for name in names}


def format_summary(summary: dict, ctx: RunContext) -> str:
    """What the main job produced, table by table, and the reconciliation, as text."""
    lines = [f"lake root: {ctx.lake.root}"]
    for name in registry.NAMES:
        part = summary.get(name)
        if not part:
            continue
        q = part.get("quality")
        gate = f"; quality gate passed: {q['suites']} suites, {q['expectations']} expectations" if q else ""
        lines.append(f"{name} ({part.get('seconds', '?')}s{gate}):")
        for r in part.get("tables", []):
            extra = "".join(f"  {k} {r[k]:>6,}" for k in ("quarantined", "deleted", "skipped_files") if r.get(k))
            rows = r.get("rows")
            lines.append(f"  {r['table']:38s} rows {rows:>9,}{extra}" if rows is not None else f"  {r['table']}")
    rec = summary.get("silver", {}).get("reconciliation", [])
    if rec:
        lines.append("reconciliation (source = bronze + rejected; bronze = silver + quarantine):")

        def n(v) -> str:
            return f"{v:>8,}" if v is not None and v == v else "       ?"

        for r in rec:
            ok = "OK      " if r["balanced"] and r["complete"] else ("PARTIAL " if r["balanced"] else "MISMATCH")
            lines.append(f"  {ok} {r['table']:26s} source {n(r['source_rows'])} = bronze {n(r['bronze_rows'])}"
                         f" + rejected {n(r['rejected_rows'])};  silver {n(r['silver_rows'])}"
                         f" + quarantine {n(r['quarantine_rows'])}")
    return "\n".join(lines)
