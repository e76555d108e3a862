"""``ops/runs``: the state of every stage run, per logical date, so a half-built layer is visible.

The stage runner (:func:`redcloud.pipeline.run_stage`) appends a row when a stage starts
(``running``) and when it ends (``succeeded`` or ``failed``, with the error). A process that dies
in between (killed, out of memory, the machine going down) leaves ``running`` as the stage's last
state for the date: the layer is incomplete, and :func:`check_complete` says so. The publish stage
calls it, so no serving snapshot (and therefore no API answer, dashboard or brief) is built on a
layer some stage left half-written. Rerunning the stage for the date completes it: every stage is
idempotent per logical date, and silver only rewrites what changed.

The table is append-only (written with delta-rs, no JVM): concurrent stages of one date (Airflow
runs the ingest DAGs side by side) never conflict, and the rows are the history of every run.
"""

from __future__ import annotations

import datetime as dt
import os
import socket

TABLE = "runs"
RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"


class IncompleteLayer(RuntimeError):
    """A stage of the date is still running or did not finish: nothing may be published past it."""


def _schema():
    import pyarrow as pa

    return pa.schema([("logical_date", pa.date32()), ("stage", pa.string()), ("run_id", pa.string()),
                      ("state", pa.string()), ("at", pa.timestamp("us")), ("seconds", pa.float64()),
                      ("host", pa.string()), ("pid", pa.int64()), ("error", pa.string())])


def record(lake, day: dt.date, stage: str, run_id: str, state: str, seconds: float | None = None,
           error: str | None = None) -> None:
    """Append one state change of ``stage`` for ``day``."""
    import pyarrow as pa
    from deltalake import write_deltalake

    row = dict(logical_date=day, stage=stage, run_id=run_id, state=state, at=dt.datetime.now(),
               seconds=seconds, host=socket.gethostname(), pid=os.getpid(),
               error=(error or None) and error[:2000])
    write_deltalake(lake.path("ops", TABLE), pa.Table.from_pylist([row], schema=_schema()), mode="append")


def latest(lake, day: dt.date) -> dict[str, dict]:
    """Each stage's last state change for ``day`` (stage -> row)."""
    if not lake.exists("ops", TABLE):
        return {}
    rows = lake.arrow("ops", TABLE, filters=[("logical_date", "=", day)]).to_pylist()
    out: dict[str, dict] = {}
    for r in sorted(rows, key=lambda r: r["at"]):
        out[r["stage"]] = r
    return out


def incomplete(lake, day: dt.date, stages) -> list[dict]:
    """The last state of each of ``stages`` for ``day`` that is not ``succeeded`` (stages that never
    ran for the date are not listed: nothing is known about them)."""
    last = latest(lake, day)
    return [last[s] for s in stages if s in last and last[s]["state"] != SUCCEEDED]


def check_complete(lake, day: dt.date, stages) -> None:
    """Raise :class:`IncompleteLayer` when a stage of ``stages`` did not finish for ``day``."""
    bad = incomplete(lake, day, stages)
    if not bad:
        return
    what = "; ".join(
        f"{r['stage']}: {r['state']} since {r['at']:%Y-%m-%d %H:%M:%S} (run {r['run_id']}, pid {r['pid']} on {r['host']})"
        + (f" – {r['error'][:200]}" if r.get("error") else "") for r in bad)
    raise IncompleteLayer(f"{day.isoformat()} 的数据层未完成，拒绝发布 (incomplete for {day.isoformat()}): {what}. "
                          f"Rerun the stage for this date (`redcloud run <stage> --date {day.isoformat()}`): "
                          f"it completes the layer.")
