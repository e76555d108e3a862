"""干部调训 in gold on hand-built classes: 学时 against the yearly requirement and the year-end warning,
which starts when the configured number of working days (official calendar) is left in the year."""

from __future__ import annotations

import datetime as dt

from redcloud import workdays
from redcloud.rules import Rules
from spark_jobs.gold import facts as G
from spark_jobs.gold import training as T

D = dt.date
RULES = Rules.defaults()
META = "is_deleted boolean, deleted_on date"


def _frames(spark):
    classes = spark.createDataFrame([(1, "党校主体班", D(2025, 3, 3), D(2025, 3, 7), 40.0, False, None),
                                     (2, "网络专题班", D(2025, 6, 2), D(2025, 6, 3), 12.0, False, None),
                                     (3, "专题培训班", D(2025, 12, 29), D(2025, 12, 31), 24.0, False, None)],
                                    f"class_id long, class_type string, start_date date, end_date date, hours double, {META}")
    enrol = spark.createDataFrame([(1, 1, 1, True, 40.0, False, None), (2, 2, 2, True, 12.0, False, None),
                                   (3, 3, 2, None, 0.0, False, None), (4, 1, 3, False, 0.0, False, None)],
                                  f"enrollment_id long, class_id long, cadre_id long, attended boolean, "
                                  f"hours_credited double, {META}")
    return classes, enrol


def test_training_hours_and_the_year_end_warning_on_the_official_calendar(spark):
    classes, enrol = _frames(spark)
    cal = G.calendar_frame(spark, D(2025, 1, 1), D(2025, 12, 31))
    first = workdays.workdays_between(D(2025, 1, 1), D(2025, 12, 31))[-RULES.training_warning_workdays]
    assert RULES.training_hours_required == 24 and RULES.training_warning_workdays == 60
    day = D(2025, 12, 30)
    out = T.fct_cadre_training_year(classes, enrol, cal, day, RULES).toPandas().set_index("cadre_id")
    assert (out.loc[1].hours, out.loc[1].hours_short, out.loc[1].shortfall_warning) == (40.0, 0.0, False)
    two = out.loc[2]   # 12 学时 done, the December class has not ended: short by 12, warned
    assert (two.classes_planned, two.classes_attended, two.classes_pending, two.hours) == (2, 1, 1, 12.0)
    assert two.hours_short == 12.0 and two.shortfall_warning and two.warning_from == first
    assert two.remaining_workdays == len(workdays.workdays_between(D(2025, 12, 31), D(2025, 12, 31))) == 1
    assert out.loc[3].classes_missed == 1 and out.loc[3].hours_short == 24.0
    # the day before the warning window: nobody is warned yet; on its first day they are
    before = [d for d in workdays.workdays_between(D(2025, 9, 1), first) if d < first][-1]
    early = T.fct_cadre_training_year(classes, enrol, cal, before, RULES).toPandas().set_index("cadre_id")
    assert not early.shortfall_warning.any() and early.loc[3].remaining_workdays == RULES.training_warning_workdays
    on = T.fct_cadre_training_year(classes, enrol, cal, first, RULES).toPandas().set_index("cadre_id")
    assert on.loc[3].shortfall_warning and not on.loc[1].shortfall_warning
