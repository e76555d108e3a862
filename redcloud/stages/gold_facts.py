"""Gold facts stage: silver + silver history -> gold facts (full, deterministic rebuild per logical date).

Needs the history stage (``silver/member_status_history``, ``silver/cadre_post_history``) of the
same logical date. Tables are written in dependency order and read back from the lake where a
later fact builds on an earlier one (meeting signals -> branch-quarter; learning and village days
-> cadre-year), so each is computed once.
"""

from __future__ import annotations

import datetime as dt
import time

from pyspark.sql import functions as F

from redcloud import lake
from redcloud.lake import DeltaDataSet
from spark_jobs.gold import facts as G


def _min_date(df, col: str) -> dt.date | None:
    return df.where(~F.coalesce(F.col("is_deleted"), F.lit(False))).agg(F.min(col)).first()[0]


def run(spark, day: dt.date) -> dict:
    for name in ("member_status_history", "cadre_post_history"):
        if not lake.exists(spark, "silver", name):
            raise RuntimeError(f"silver/{name} is missing: run the history stage for {day.isoformat()} first")
    s = lambda name: lake.read(spark, "silver", name)  # noqa: E731
    hist, posts = s("member_status_history"), s("cadre_post_history")

    # go-live dates: nobody could answer / record before the system existed
    learning_since = _min_date(s("learning_answers"), "answer_date")
    village_since = _min_date(s("village_work_records"), "work_date")
    first_meeting = _min_date(s("meetings"), "meeting_date")
    known = [x for x in (learning_since, village_since, first_meeting) if x is not None and x <= day]
    cal_start = G.first_known_day(min(known) if known else dt.date(day.year, 1, 1), day)
    calendar = G.calendar_frame(spark, cal_start, day).cache()
    first_year = s("cadre_assessments").agg(F.min("assess_year")).first()[0]
    first_year = min(int(first_year) if first_year is not None else day.year, cal_start.year)

    links = G.cadre_member_links(s("cadres"), s("members")).cache()  # TODO(identity-fusion): read the fusion table
    out = []

    def write(name: str, df, doc: str) -> None:
        t0 = time.perf_counter()
        lake.write(spark, DeltaDataSet(name, "gold", df, mode="overwrite", description=doc))
        out.append(dict(table=f"gold/{name}", rows=lake.read(spark, "gold", name).count(),
                        seconds=round(time.perf_counter() - t0, 2)))

    g = lambda name: lake.read(spark, "gold", name)  # noqa: E731
    write("fct_meeting_signals",
          G.fct_meeting_signals(s("meetings"), s("meeting_attendance"), hist, calendar, day),
          G.fct_meeting_signals.__doc__)
    write("fct_branch_quarter",
          G.fct_branch_quarter(s("organizations"), g("fct_meeting_signals"), hist, s("volunteer_records"),
                               s("app_activity_monthly"), day),
          G.fct_branch_quarter.__doc__)
    write("fct_learning_daily",
          G.fct_learning_daily(links, s("app_users"), s("learning_answers"), hist, posts, calendar, day,
                               since=learning_since),
          G.fct_learning_daily.__doc__)
    write("fct_village_work_daily",
          G.fct_village_work_daily(s("village_assignments"), s("village_work_records"), calendar, day,
                                   since=village_since),
          G.fct_village_work_daily.__doc__)
    write("fct_project_status", G.fct_project_status(s("poverty_projects"), day), G.fct_project_status.__doc__)
    write("fct_cadre_year",
          G.fct_cadre_year(s("cadres"), links, g("fct_learning_daily"), s("meeting_attendance"), s("meetings"),
                           s("cadre_assessments"), s("cadre_discipline"), posts, g("fct_village_work_daily"),
                           s("poverty_projects"), day, first_year),
          G.fct_cadre_year.__doc__)
    calendar.unpersist()
    links.unpersist()
    return {"tables": out, "calendar_start": cal_start.isoformat(), "learning_since": str(learning_since),
            "village_since": str(village_since)}
