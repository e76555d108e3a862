"""History stage: SCD2 tables in silver, rebuilt from bronze/silver on every run (overwrite).

``silver/organization_history`` comes from every bronze version loaded up to the logical date;
``silver/member_status_history`` and ``silver/cadre_post_history`` from silver, cut at the logical
date by effective dates. A rerun or a backfill therefore writes exactly the same rows for the
same inputs.
"""

from __future__ import annotations

from redcloud.context import RunContext
from redcloud.lake import DeltaDataSet
from spark_jobs.silver import history as H

TABLES = ("organization_history", "member_status_history", "cadre_post_history")


def build(ctx: RunContext) -> list[DeltaDataSet]:
    spark, lake, day = ctx.spark, ctx.lake, ctx.day
    s = lambda name: lake.read(spark, "silver", name)  # noqa: E731
    return [
        DeltaDataSet("organization_history", "silver",
                     H.organization_history(lake.read(spark, "bronze", "org__organizations"), day),
                     keys=["org_id", "valid_from"], description=H.organization_history.__doc__, skip_unchanged=True),
        DeltaDataSet("member_status_history", "silver",
                     H.member_status_history(s("member_status_changes"), s("members"), day),
                     keys=["member_id", "valid_from"], description=H.member_status_history.__doc__,
                     skip_unchanged=True),
        DeltaDataSet("cadre_post_history", "silver", H.cadre_post_history(s("cadre_posts"), s("cadres"), day),
                     keys=["cadre_id", "valid_from"], description=H.cadre_post_history.__doc__,
                     skip_unchanged=True),
    ]


def run(ctx: RunContext) -> dict:
    return {"tables": ctx.lake.write_all(ctx.spark, build(ctx), ctx.progress)}
