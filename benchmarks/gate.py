"""Silver's quality gate in its two scopes on one city lake, in the same process (figures, never
assertions).

    .run/venv/pipeline/bin/python -m benchmarks.gate --lake-root .run/bench/10000/lake

``table`` checks every expectation on every row; ``batch`` (the default, ``[quality] silver_scope``)
checks row-level expectations on the rows the date committed and uniqueness and row counts on the
whole table (:func:`redcloud.quality.gate`). The date is the lake's last silver date (the daily run's),
or ``--date``. Works on a copy of the lake's silver tables (the gate records its results in
``ops/quality_results``), under ``.run/bench/gate``. GX is warmed up on one table first; then the
scopes alternate (table, batch, table, batch) and each scope's best run is reported.
Writes ``results/gate_<members>_<stamp>.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

from benchmarks.run import RESULTS, Probe, scratch_lake


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lake-root", help="the lake (default: the configured lake, i.e. the demo's)")
    p.add_argument("--date", type=dt.date.fromisoformat, help="the logical date (default: the last silver date)")
    p.add_argument("--repeat", type=int, default=2, help="runs per scope (alternating)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    from redcloud import quality
    from redcloud.config import get_settings
    from redcloud.context import RunContext
    from redcloud.lake import Lake
    from redcloud.spark import get_spark

    s = get_settings()
    src = Path(args.lake_root or s.paths.lake_root)
    st, _ = scratch_lake(s, src, "gate", ("silver",))
    lake = Lake(st.paths.lake_root)
    if args.date:
        day = args.date
    else:
        from deltalake import DeltaTable

        dated = [t for t in quality.suites_module().suites("silver") if lake.exists("silver", t)
                 and "_logical_date" in [f.name for f in DeltaTable(lake.path("silver", t)).schema().fields]]
        day = max(lake.pandas("silver", t, ["_logical_date"])["_logical_date"].max() for t in dated)
    members = len(lake.pandas("silver", "members", ["member_id"], alive=True))
    spark = get_spark()
    ctx = RunContext.create(day, st, run_id="bench_gate", spark=spark)
    quality.gate(ctx, "silver", ["organizations"], scope="table")   # warm-up: GX import, first Spark jobs

    runs: dict[str, list[dict]] = {"table": [], "batch": []}
    for _ in range(args.repeat):
        for scope in ("table", "batch"):
            with Probe() as pr:
                results = quality.gate(ctx, "silver", scope=scope)
            runs[scope].append({**pr.result, "tables": {r.table: dict(seconds=r.seconds, rows=r.rows,
                                                                      batch_rows=r.batch_rows,
                                                                      expectations=r.n_expectations)
                                                        for r in results}})
    best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in runs.items()}
    ratio_wall = round(best["table"]["wall_s"] / best["batch"]["wall_s"], 2)
    ratio_cpu = round(best["table"]["cpu_s"] / best["batch"]["cpu_s"], 2)
    stamp = dt.datetime.now().strftime("%Y%m%dT%H%M%S")
    res = dict(members=members, day=str(day), lake=str(src), runs=runs, best=best,
               ratio_table_to_batch_wall=ratio_wall, ratio_table_to_batch_cpu=ratio_cpu)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"gate_{members}_{stamp}"
    (out / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))
    tb, bt = best["table"]["tables"], best["batch"]["tables"]
    lines = [f"# Silver quality gate by scope, {members:,} members, {day} (run {stamp})", "",
             f"Lake `{src}`; best of {args.repeat} alternating runs per scope, one warm process.", "",
             "| scope | wall s | CPU s | peak RSS MB | tables | expectations |", "|---|---:|---:|---:|---:|---:|"]
    for k, v in best.items():
        lines.append(f"| {k} | {v['wall_s']} | {v['cpu_s']} | {v['peak_rss_mb']} | {len(v['tables'])} | "
                     f"{sum(t['expectations'] for t in v['tables'].values())} |")
    lines += ["", f"Table scope ÷ batch scope: wall {ratio_wall}x, CPU {ratio_cpu}x.", "",
              "| table | rows | batch rows | table-scope s | batch-scope s |", "|---|---:|---:|---:|---:|"]
    for t in sorted(tb, key=lambda t: -tb[t]["seconds"]):
        b = bt.get(t, {})
        br = "whole table" if b.get("batch_rows") is None else f"{b['batch_rows']:,}"
        lines.append(f"| {t} | {tb[t]['rows']:,} | {br} | {tb[t]['seconds']} | {b.get('seconds', '')} |")
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
