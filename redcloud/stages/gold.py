"""Gold stage: silver -> gold dimensions and facts (full, deterministic rebuild; idempotent per date)."""

from __future__ import annotations

import datetime as dt

from redcloud import lake
from redcloud.lake import DeltaDataSet
from spark_jobs import gold as G


def build(spark, day: dt.date) -> list[DeltaDataSet]:
    s = lambda name: lake.read(spark, "silver", name)  # noqa: E731
    dim_org = G.dim_organization(s("organizations"))
    return [
        DeltaDataSet("dim_organization", "gold", dim_org, description=G.dim_organization.__doc__),
        DeltaDataSet("dim_member", "gold", G.dim_member(s("members"), dim_org, day), description=G.dim_member.__doc__),
        DeltaDataSet("fct_member_month", "gold",
                     G.fct_member_month(s("members"), s("app_activity_monthly"), s("dues_payments"),
                                        s("volunteer_records"), s("meetings"), s("meeting_attendance")),
                     partition_col=None, description=G.fct_member_month.__doc__),
    ]


def run(spark, day: dt.date) -> dict:
    return {"tables": lake.write_all(spark, build(spark, day))}
