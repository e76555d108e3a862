"""Identity fusion stage: silver members, cadres and external records -> silver/person_links + silver/persons.

A full, deterministic rebuild from the current silver tables (``overwrite``): rerunning a date gives
the same content. Silver tables that do not exist yet are skipped (their records get no links).
"""

from __future__ import annotations

import time

from pyspark.sql import functions as F

from redcloud.context import RunContext
from redcloud.lake import DeltaDataSet
from spark_jobs.identity import build_identity

INPUTS = ("members", "cadres", "organizations", "power_operations", "duty_records", "complaints", "penalties",
          "enforcement", "news")
# the inputs several joins read (kept in memory for the stage); the others are read once, for the few
# columns linking needs (caching the 数据铁笼 tables whole cost their every column at 300k members)
SHARED = ("members", "cadres", "organizations")


def run(ctx: RunContext, persist: tuple[str, ...] = SHARED) -> dict:
    """Rebuild ``silver/person_links`` and ``silver/persons`` (the date is recorded, not used to filter);
    ``persist``: the inputs cached for the stage (:data:`SHARED`; ``benchmarks.ab`` compares others)."""
    spark, lake, day = ctx.spark, ctx.lake, ctx.day
    t0 = time.perf_counter()
    frames = {name: lake.read(spark, "silver", name) if lake.exists("silver", name) else None for name in INPUTS}
    if frames["members"] is None:
        return {"tables": [], "skipped": "no silver/members table", "logical_date": day.isoformat()}
    inputs = {n: (df.persist() if df is not None and n in persist else df) for n, df in frames.items()}
    res = build_identity(**inputs)
    links = res.links.persist()
    lake.write(spark, DeltaDataSet("person_links", "silver", links, mode="overwrite",
                                   description="one row per source record -> person_key, with method and status",
                                   skip_unchanged=True))
    persons = res.persons.persist()
    lake.write(spark, DeltaDataSet("persons", "silver", persons, mode="overwrite",
                                   description="one row per person (member), with the linked cadre and conflicts",
                                   skip_unchanged=True))
    summary = (links.groupBy("source", "status").agg(F.count(F.lit(1)).alias("n"))
               .orderBy("source", "status").collect())
    n_persons = persons.count()
    for df in [links, persons, *[d for n, d in inputs.items() if d is not None and n in persist]]:
        df.unpersist()
    by_source: dict[str, dict[str, int]] = {}
    for r in summary:
        by_source.setdefault(r["source"], {})[r["status"]] = int(r["n"])
    n_links = sum(sum(v.values()) for v in by_source.values())
    secs = round(time.perf_counter() - t0, 2)
    ctx.progress.table("silver/person_links", n_links, secs)
    ctx.progress.table("silver/persons", n_persons)
    return {"tables": [dict(table="silver/person_links", rows=n_links, seconds=secs),   # both tables' time
                       dict(table="silver/persons", rows=n_persons)],
            "links": by_source, "skipped_inputs": [n for n, df in frames.items() if df is None],
            "logical_date": day.isoformat(), "seconds": secs}
