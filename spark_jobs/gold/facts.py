"""Gold facts for the models and the auto-flow (pure transforms over silver and silver history).

Tables (each function's docstring states its grain and columns):

- ``fct_meeting_signals``: one row per meeting: attendance counts and three suspicious-record signals.
- ``fct_branch_quarter``: one row per branch (党支部) and quarter: organisational life, 三会一课
  completion, activity types, participation and the suspicious-meeting counts.
- ``fct_learning_daily``: one row per cadre and working day of the 学习问答 obligation: answered,
  and the running count of consecutive missed working days (what reminders/escalation read).
- ``fct_cadre_year``: one row per cadre and year: duty-related inputs of the cadre evaluation model
  and the assessment grade (the label).
- ``fct_cadre_duty_month``: one row per cadre and month of 四位一体 岗位责任工作记实: targets, completion
  (month and year to date) and whether the month's 记实 is missing past its due working day.
- ``fct_village_work_daily``: one row per 驻村 assignment and working day of its active window.
- ``fct_project_status``: one row per 帮扶 project: status as of the logical date.

Working days are China's official calendar with 调休 (:mod:`redcloud.workdays`), brought into
Spark as a small calendar table (:func:`calendar_frame`), never as a per-row Python function.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from redcloud import workdays
from redcloud.rules import Rules
from redcloud.rules.vocab import (
    ABSENT,
    BRANCH,
    COMMITTEE_MEETING,
    COMPLETED,
    DEADLINE_WARNING,
    EXCUSED,
    EXPIRED,
    GENERAL_MEETING,
    GROUP_MEETING,
    IN_PROGRESS,
    ON_ROLL,
    OVERDUE,
    PARTY_LECTURE,
    PRESENT,
    PROJECT_STATES,
    THEME_DAY,
)

# meeting-type count columns of the branch facts (三会一课 types first)
TYPE_COLUMNS = {COMMITTEE_MEETING: "committee_meetings", GENERAL_MEETING: "general_meetings",
                GROUP_MEETING: "group_meetings", PARTY_LECTURE: "party_lectures", THEME_DAY: "theme_days"}


def _alive(df: DataFrame) -> DataFrame:
    return df.where(~F.coalesce(F.col("is_deleted"), F.lit(False)))


def _d(day: dt.date) -> Column:
    return F.lit(day).cast("date")


def _within(date_col: Column, prefix: str = "") -> Column:
    """``date_col`` falls in the history period [valid_from, valid_to)."""
    return (date_col >= F.col(f"{prefix}valid_from")) & (
        F.col(f"{prefix}valid_to").isNull() | (date_col < F.col(f"{prefix}valid_to")))


# ---------------------------------------------------------------------------------------------
# calendar
# ---------------------------------------------------------------------------------------------

def first_known_day(start: dt.date, end: dt.date) -> dt.date:
    """``start``, or the first day of the first year from ``start`` the official calendar knows."""
    day = start
    while day <= end:
        try:
            workdays.is_workday(day)
            return day
        except workdays.CalendarUnknownError:
            day = dt.date(day.year + 1, 1, 1)
    return end


def calendar_frame(spark, start: dt.date, end: dt.date) -> DataFrame:
    """One row per day in [start, end]: cal_date, is_workday, is_public_holiday, is_makeup_workday.

    ``is_makeup_workday`` is a Saturday/Sunday that is an official working day (调休). Raises
    :class:`redcloud.workdays.CalendarUnknownError` for a year the official calendar does not know.
    """
    rows = []
    day = start
    while day <= end:
        wd = workdays.is_workday(day)
        rows.append((day, wd, workdays.is_holiday(day), wd and day.weekday() >= 5))
        day += dt.timedelta(days=1)
    return spark.createDataFrame(
        rows, "cal_date date, is_workday boolean, is_public_holiday boolean, is_makeup_workday boolean")


def workday_numbers(calendar: DataFrame) -> DataFrame:
    """(cal_date, _n): the working days of ``calendar`` numbered 1, 2, ... in date order."""
    return (calendar.where(F.col("is_workday")).select("cal_date")
            .withColumn("_n", F.row_number().over(Window.orderBy("cal_date"))))


def with_workday_number(df: DataFrame, date_col: str, numbers: DataFrame, out: str) -> DataFrame:
    """``df`` with ``out``: the number (:func:`workday_numbers`) of the last working day on or before
    ``date_col``; NULL for a NULL date or one before the calendar's first working day."""
    days = df.select(F.col(date_col).alias("_day")).where(F.col("_day").isNotNull()).distinct()
    num = (days.join(F.broadcast(numbers), F.col("cal_date") <= F.col("_day"))
           .groupBy("_day").agg(F.max("_n").alias(out)))
    return df.join(num.withColumnRenamed("_day", date_col), date_col, "left")


def with_workday_deadline(df: DataFrame, date_col: str, workdays_after: int, numbers: DataFrame, as_of: dt.date,
                          due_col: str) -> DataFrame:
    """``df`` with ``due_col``, the ``workdays_after``-th working day after ``date_col`` (NULL beyond the
    calendar or for a date before it), and the numbers ``_from_n`` (of ``date_col``), ``_due_n`` and
    ``_today_n`` (the last working day on or before ``as_of``), so working days between are differences."""
    due = numbers.select(F.col("_n").alias("_due_n"), F.col("cal_date").alias(due_col))
    today = numbers.where(F.col("cal_date") <= _d(as_of)).agg(F.max("_n").alias("_today_n"))
    return (with_workday_number(df, date_col, numbers, "_from_n")
            .withColumn("_due_n", F.col("_from_n") + F.lit(workdays_after))
            .join(F.broadcast(due), "_due_n", "left").crossJoin(F.broadcast(today)))


def miss_streaks(df: DataFrame, by: list[str], date_col: str, done_col: str, out: str = "miss_streak",
                 start: str | None = None, reached: tuple[str, int] | None = None) -> DataFrame:
    """Add ``out``: consecutive rows (ordered by ``date_col`` within ``by``) where ``done_col`` is
    FALSE, up to and including this row; 0 on a row where it is TRUE.

    ``start`` (optional column name): the first missed day of the streak (NULL on a done row).
    ``reached`` (optional ``(column, n)``): the day the streak reached ``n`` misses (NULL before).

    ``df`` must hold exactly the days that count (e.g. working days only), so weekends and holidays
    neither break nor extend a streak, and a 调休 make-up Saturday counts like any working day.
    """
    w = Window.partitionBy(*by).orderBy(date_col)
    grp = F.sum(F.col(done_col).cast("int")).over(w.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    df = df.withColumn("_grp", grp)
    streak = Window.partitionBy(*by, "_grp")
    rn = F.row_number().over(streak.orderBy(date_col))
    df = df.withColumn(out, F.when(F.col(done_col), F.lit(0))
                       .otherwise(rn - F.when(F.col("_grp") > 0, 1).otherwise(0)).cast("int"))
    missed = ~F.col(done_col)
    if start:
        df = df.withColumn(start, F.when(missed, F.min(F.when(missed, F.col(date_col))).over(streak)))
    if reached:
        col, n = reached
        df = df.withColumn(col, F.when(F.col(out) >= n, F.min(F.when(F.col(out) == n, F.col(date_col))).over(streak)))
    return df.drop("_grp")


def carry_streaks(window: DataFrame, prior: DataFrame, by: list[str], date_col: str, done_col: str,
                  out: str, start: str, reached: tuple[str, int] | None = None) -> DataFrame:
    """Continue the streaks :func:`miss_streaks` computed over ``window`` (the rows from some day on)
    from ``prior``, the same table's earlier rows (columns ``by``, ``date_col``, ``out``, ``start``).

    For each key, the last prior row's streak (``p`` missed rows, from ``p_start``) continues into
    the window's rows up to the key's first done row there: ``out`` becomes ``p +`` the window's
    count, ``start`` becomes ``p_start``, and the ``reached`` day (``n`` misses) is the prior row's
    that reached ``n`` in that streak, or the window row where ``p +`` its count reaches ``n``.
    Later rows, and keys without a prior streak, keep the window's values. The result equals
    :func:`miss_streaks` over prior + window rows (tested on days with late changes).
    """
    w = Window.partitionBy(*by).orderBy(date_col)
    last = Window.partitionBy(*by).orderBy(F.col(date_col).desc())
    state = (prior.withColumn("_rn", F.row_number().over(last)).where(F.col("_rn") == 1)
             .select(*by, F.col(out).alias("_p"), F.col(start).alias("_p_start")))
    df = (window.join(state, by, "left").fillna(0, subset=["_p"])
          .withColumn("_lead", F.sum(F.col(done_col).cast("int")).over(
              w.rowsBetween(Window.unboundedPreceding, Window.currentRow)) == 0))
    first = F.col("_lead") & (F.col("_p") > 0)
    df = (df.withColumn(out, F.when(first, F.col("_p") + F.col(out)).otherwise(F.col(out)).cast("int"))
          .withColumn(start, F.when(first, F.col("_p_start")).otherwise(F.col(start))))
    if reached:
        col, n = reached
        hit = (prior.where(F.col(out) == n).select(*by, F.col(start).alias("_p_start"),
                                                   F.col(date_col).alias("_p_reached")))
        in_window = F.min(F.when(F.col("_lead") & (F.col(out) == n), F.col(date_col))).over(Window.partitionBy(*by))
        df = (df.join(hit, [*by, "_p_start"], "left")
              .withColumn(col, F.when(first & (F.col("_p") >= n), F.col("_p_reached"))
                          .when(first & (F.col(out) >= n), in_window)
                          .otherwise(F.col(col)))
              .drop("_p_reached"))
    return df.drop("_p", "_p_start", "_lead")


def rank_is_obligated(rank: Column, rules: Rules) -> Column:
    """学习问答 obligation of a post's rank: its level is ``[rules] learning_min_level`` or above."""
    cond = F.lit(False)
    for level in rules.obligated_levels:
        cond = cond | rank.startswith(level)
    return F.coalesce(cond, F.lit(False))


# ---------------------------------------------------------------------------------------------
# cadre <-> member link
# ---------------------------------------------------------------------------------------------

# the columns cadre_member_links reads: a change of any other column moves no link
LINK_COLUMNS = {"cadres": ["cadre_id", "id_number_pseudonym", "is_deleted"],
                "members": ["member_id", "id_number_pseudonym", "is_deleted"]}


def cadre_member_links(cadres: DataFrame, members: DataFrame) -> DataFrame:
    """(cadre_id, member_id, link_method): which party member record a cadre record is.

    TODO(identity-fusion): the cadre system links to the member system only through identity
    fusion (name + unit + birth date when the 身份证号 is missing, ambiguity flagged), which is being
    built separately. Until it lands this links on ``id_number_pseudonym`` only, so cadres without a
    身份证号 have no member link (their learning and meeting inputs stay NULL). Replace the body of
    this function (or the stage's call to it) by a read of the fusion table; every fact that needs
    the link takes it as an argument.
    """
    c = _alive(cadres).where(F.col("id_number_pseudonym").isNotNull()).select("cadre_id", "id_number_pseudonym")
    m = _alive(members).where(F.col("id_number_pseudonym").isNotNull()).groupBy("id_number_pseudonym").agg(
        F.min("member_id").alias("member_id"))
    return c.join(m, "id_number_pseudonym").select("cadre_id", "member_id",
                                                   F.lit("id_number_pseudonym").alias("link_method"))


# ---------------------------------------------------------------------------------------------
# meetings
# ---------------------------------------------------------------------------------------------

def fct_meeting_signals(meetings: DataFrame, attendance: DataFrame, member_history: DataFrame,
                        calendar: DataFrame, as_of: dt.date) -> DataFrame:
    """One row per meeting held up to ``as_of``: attendance counts and suspicious-record signals.

    Signals:

    - ``is_non_working_day``: dated on a weekend or public holiday per the official calendar
      (a 调休 make-up Saturday is a working day); NULL outside the years the calendar knows.
    - ``identical_attendance``: the attendance list (the set of member_id + status) is exactly the
      list of an earlier meeting of the same branch (``identical_to_meeting_id``: the first one).
    - ``identical_attendance_nontrivial``: the same, when the list carries information: it has at
      least one 请假/缺席 entry and the meeting is not a 支委会 (a committee's roster is a fixed
      handful of people, so "all present again" repeats honestly all the time).
    - ``declared_exceeds_members``: declared attendance above the branch's members on the roll
      (在册, from member_status_history) on the meeting date.

    ``signal_count`` counts is_non_working_day, identical_attendance_nontrivial and
    declared_exceeds_members; ``is_suspicious`` is signal_count > 0.

    Columns: meeting_id, org_id, meeting_type, meeting_date, quarter_start, declared_attendance,
    attendance_rows, attended_count, excused_count, absent_count, attendance_rate,
    branch_member_count, is_non_working_day, is_public_holiday, is_makeup_workday,
    identical_attendance, identical_to_meeting_id, identical_attendance_nontrivial,
    declared_exceeds_members, signal_count, is_suspicious, attendance_signature, as_of_date.
    """
    m = _alive(meetings).where(F.col("meeting_date") <= _d(as_of)).select(
        "meeting_id", "org_id", "meeting_type", "meeting_date", "declared_attendance")
    a = _alive(attendance).select("meeting_id", "member_id", "status").join(m.select("meeting_id"), "meeting_id")
    entry = F.concat_ws(":", F.col("member_id").cast("string"), F.col("status"))
    agg = a.groupBy("meeting_id").agg(
        F.count("*").alias("attendance_rows"),
        F.sum(F.when(F.col("status") == PRESENT, 1).otherwise(0)).alias("attended_count"),
        F.sum(F.when(F.col("status") == EXCUSED, 1).otherwise(0)).alias("excused_count"),
        F.sum(F.when(F.col("status") == ABSENT, 1).otherwise(0)).alias("absent_count"),
        F.sha2(F.concat_ws(",", F.array_sort(F.collect_set(entry))), 256).alias("attendance_signature"))
    roll = (member_history.where(F.col("membership_status") == ON_ROLL)
            .select("member_id", F.col("org_id").alias("_org"), "valid_from", "valid_to"))
    counts = (m.select("meeting_id", "org_id", "meeting_date")
              .join(roll, (F.col("org_id") == F.col("_org")) & _within(F.col("meeting_date")))
              .groupBy("meeting_id").agg(F.countDistinct("member_id").alias("branch_member_count")))
    cal = calendar.select(F.col("cal_date").alias("meeting_date"), "is_workday", "is_public_holiday",
                          "is_makeup_workday")
    out = (m.join(agg, "meeting_id", "left").join(counts, "meeting_id", "left").join(F.broadcast(cal), "meeting_date", "left")
           .fillna(0, subset=["attendance_rows", "attended_count", "excused_count", "absent_count", "branch_member_count"]))
    sig_w = Window.partitionBy("org_id", "attendance_signature").orderBy("meeting_date", "meeting_id")
    has_sig = F.col("attendance_signature").isNotNull()
    out = (out
           .withColumn("identical_attendance", has_sig & (F.row_number().over(sig_w) > 1))
           .withColumn("identical_to_meeting_id",
                       F.when(F.col("identical_attendance"), F.first("meeting_id").over(sig_w)))
           .withColumn("identical_attendance_nontrivial",
                       F.col("identical_attendance") & ((F.col("excused_count") + F.col("absent_count")) > 0)
                       & (F.col("meeting_type") != COMMITTEE_MEETING))
           .withColumn("is_non_working_day", ~F.col("is_workday"))
           .withColumn("declared_exceeds_members", F.col("declared_attendance") > F.col("branch_member_count"))
           .withColumn("attendance_rate", F.when(F.col("attendance_rows") > 0,
                                                 F.col("attended_count") / F.col("attendance_rows"))))
    sig = [F.coalesce(F.col(c), F.lit(False)).cast("int")
           for c in ("is_non_working_day", "identical_attendance_nontrivial", "declared_exceeds_members")]
    out = out.withColumn("signal_count", sig[0] + sig[1] + sig[2]).withColumn("is_suspicious", F.col("signal_count") > 0)
    return out.select(
        "meeting_id", "org_id", "meeting_type", "meeting_date", F.trunc("meeting_date", "quarter").alias("quarter_start"),
        "declared_attendance", "attendance_rows", "attended_count", "excused_count", "absent_count", "attendance_rate",
        "branch_member_count", "is_non_working_day", "is_public_holiday", "is_makeup_workday", "identical_attendance",
        "identical_to_meeting_id", "identical_attendance_nontrivial", "declared_exceeds_members", "signal_count",
        "is_suspicious", "attendance_signature", _d(as_of).alias("as_of_date"))


def _type_counts(t: Column) -> list[Column]:
    """Meetings per type (:data:`TYPE_COLUMNS`) and ``other_meetings`` (every other activity type)."""
    cols = [F.sum((t == typ).cast("int")).alias(col) for typ, col in TYPE_COLUMNS.items()]
    return cols + [F.sum((~t.isin(*TYPE_COLUMNS)).cast("int")).alias("other_meetings")]


def sanhui_held(rules: Rules, suffix: str = "") -> Column:
    """三会一课 meetings held, each type capped at its requirement per quarter (``rules.sanhui_required``),
    from the type count columns (:data:`TYPE_COLUMNS` names + ``suffix``)."""
    held = F.lit(0)
    for typ, n in rules.sanhui_required.items():
        if n > 0:
            held = held + F.least(F.col(TYPE_COLUMNS[typ] + suffix), F.lit(n))
    return held.cast("int")


def _sanhui_rate(held: Column, rules: Rules) -> Column:
    """held / required in [0, 1]; NULL when nothing is required."""
    total = rules.sanhui_total
    return (held / F.lit(total)) if total > 0 else F.lit(None).cast("double")


def _branch_grid(orgs: DataFrame, periods: DataFrame, col: str, months: int) -> DataFrame:
    """Branches (党支部) x periods (``col``: first day of a ``months``-long period), from the period
    in which the branch was established."""
    branches = _alive(orgs).where(F.col("org_level") == BRANCH).select(
        "org_id", "org_name", "org_type", "parent_org_id", "established_date")
    return (branches.crossJoin(F.broadcast(periods))
            .where(F.col("established_date").isNull() | (F.col("established_date") < F.add_months(col, months))))


def _periods(meeting_signals: DataFrame, as_of: dt.date, first: dt.date | None, unit: str, col: str) -> DataFrame:
    """One row per period (``unit``: month or quarter) from ``first`` (default: the first period with a
    meeting anywhere) to the period of ``as_of``."""
    d = _d(as_of)
    step = F.expr("interval 1 month") if unit == "month" else F.expr("interval 3 months")
    if first is not None:
        bounds = meeting_signals.sparkSession.range(1).select(F.trunc(F.lit(first).cast("date"), unit).alias("_p0"))
    else:
        bounds = meeting_signals.agg(F.trunc(F.min("meeting_date"), unit).alias("_p0"))
    return bounds.select(F.explode(F.sequence(F.coalesce("_p0", F.trunc(d, unit)), F.trunc(d, unit), step)).alias(col))


def fct_branch_month(orgs: DataFrame, meeting_signals: DataFrame, as_of: dt.date, rules: Rules,
                     first_month: dt.date | None = None) -> DataFrame:
    """One row per branch (org_level 党支部) and month, from ``first_month`` (default: the first month
    with a meeting anywhere) to the month of ``as_of``: organisational life and 三会一课 to date.

    - meetings held in the month by type: ``committee_meetings`` (支委会), ``general_meetings``
      (支部党员大会), ``group_meetings`` (党小组会), ``party_lectures`` (党课), ``theme_days`` (主题党日),
      ``other_meetings``; ``meetings_total``;
    - attendance of the month's meetings: ``attendance_rows`` (people listed), ``attended`` (出席);
    - 三会一课 quarter to date (the quarter's months up to this one): ``sanhui_required`` (per quarter,
      ``[rules] sanhui_required``), ``sanhui_held_qtd`` (each type capped at its requirement),
      ``sanhui_completion_qtd`` = held / required; the quarter's last month carries the quarter's
      completion (equal to ``fct_branch_quarter.sanhui_completion_rate``).

    Columns: org_id, month, quarter_start, month_complete, the counts above, as_of_date.
    """
    d = _d(as_of)
    months = _periods(meeting_signals, as_of, first_month, "month", "month")
    grid = _branch_grid(orgs, months, "month", 1).select("org_id", "month")
    ms = meeting_signals.where(F.col("meeting_date") <= d).withColumn("month", F.trunc("meeting_date", "month"))
    t = F.col("meeting_type")
    per_month = ms.groupBy("org_id", "month").agg(
        F.count("*").alias("meetings_total"), *_type_counts(t),
        F.sum("attendance_rows").alias("attendance_rows"), F.sum("attended_count").alias("attended"))
    keys = ["org_id", "month"]
    counts = list(TYPE_COLUMNS.values()) + ["other_meetings", "meetings_total", "attendance_rows", "attended"]
    out = grid.join(per_month, keys, "left").fillna(0, subset=counts)
    q = Window.partitionBy("org_id", F.trunc("month", "quarter")).orderBy("month").rowsBetween(
        Window.unboundedPreceding, Window.currentRow)
    for col in TYPE_COLUMNS.values():
        out = out.withColumn(col + "_qtd", F.sum(col).over(q))
    held = sanhui_held(rules, "_qtd")
    return out.select(
        "org_id", "month", F.trunc("month", "quarter").alias("quarter_start"),
        (F.last_day("month") <= d).alias("month_complete"),
        *[F.col(c).cast("long").alias(c) for c in counts],
        F.lit(rules.sanhui_total).alias("sanhui_required"), held.alias("sanhui_held_qtd"),
        _sanhui_rate(held, rules).alias("sanhui_completion_qtd"), d.alias("as_of_date"))


def fct_branch_quarter(orgs: DataFrame, meeting_signals: DataFrame, member_history: DataFrame,
                       volunteer: DataFrame, activity: DataFrame, as_of: dt.date, rules: Rules,
                       first_quarter: dt.date | None = None) -> DataFrame:
    """One row per branch (org_level 党支部) and quarter, from ``first_quarter`` (default: the first
    quarter with a meeting anywhere) to the quarter of ``as_of`` (``quarter_complete`` FALSE while
    the quarter is running).

    - ``members_active``: members on the roll (在册) of the branch at any time in the quarter
      (member_status_history), the denominator of the per-member figures;
    - meetings by type: ``committee_meetings`` (支委会), ``general_meetings`` (支部党员大会),
      ``group_meetings`` (党小组会), ``party_lectures`` (党课), ``theme_days`` (主题党日),
      ``other_meetings``; ``meetings_total``;
    - ``activity_types`` (distinct meeting types), ``new_activity_types`` (types the branch records
      for the first time this quarter; in the first quarter of data every type is new);
    - 三会一课: ``sanhui_required`` (per quarter, ``[rules] sanhui_required``: by default 3 支委会 +
      1 支部党员大会 + 1 党课 = 5), ``sanhui_held`` (held, capped at the requirement per type) and
      ``sanhui_completion_rate`` = held / required in [0, 1];
    - ``mean_attendance_rate``: mean over the quarter's meetings of attended / listed;
    - ``volunteer_hours_per_member``, ``app_login_days_per_member``: volunteering and app login days
      of the members while on the branch's roll, per active member;
    - signals from fct_meeting_signals: ``non_working_day_meetings``, ``identical_attendance_meetings``,
      ``identical_attendance_nontrivial_meetings``, ``declared_exceeds_members_meetings``,
      ``suspicious_meetings`` (meetings with any signal) and ``suspicious_signals`` (sum of signals).

    Columns: org_id, org_name, org_type, parent_org_id, quarter_start, quarter_end, quarter_complete,
    members_active, the counts above, as_of_date.
    """
    d = _d(as_of)
    ms = meeting_signals
    quarters = _periods(ms, as_of, first_quarter, "quarter", "quarter_start")
    grid = (_branch_grid(orgs, quarters, "quarter_start", 3)
            .withColumn("quarter_end", F.date_sub(F.add_months("quarter_start", 3), 1))
            .withColumn("_eff_end", F.least("quarter_end", d)))

    roll = (member_history.where(F.col("membership_status") == ON_ROLL)
            .select("member_id", F.col("org_id").alias("_org"), "valid_from", "valid_to"))
    active = (grid.select("org_id", "quarter_start", "_eff_end")
              .join(roll, (F.col("org_id") == F.col("_org")) & (F.col("valid_from") <= F.col("_eff_end"))
                    & (F.col("valid_to").isNull() | (F.col("valid_to") > F.col("quarter_start"))))
              .groupBy("org_id", "quarter_start").agg(F.countDistinct("member_id").alias("members_active")))

    t = F.col("meeting_type")
    first_seen = ms.groupBy("org_id", "meeting_type").agg(F.min("quarter_start").alias("_first_q"))
    mq = (ms.join(first_seen, ["org_id", "meeting_type"])
          .groupBy("org_id", "quarter_start").agg(
              F.count("*").alias("meetings_total"), *_type_counts(t),
              F.countDistinct("meeting_type").alias("activity_types"),
              F.countDistinct(F.when(F.col("_first_q") == F.col("quarter_start"), t)).alias("new_activity_types"),
              F.avg("attendance_rate").alias("mean_attendance_rate"),
              F.sum(F.coalesce(F.col("is_non_working_day"), F.lit(False)).cast("int")).alias("non_working_day_meetings"),
              F.sum(F.col("identical_attendance").cast("int")).alias("identical_attendance_meetings"),
              F.sum(F.col("identical_attendance_nontrivial").cast("int")).alias("identical_attendance_nontrivial_meetings"),
              F.sum(F.coalesce(F.col("declared_exceeds_members"), F.lit(False)).cast("int"))
              .alias("declared_exceeds_members_meetings"),
              F.sum(F.col("is_suspicious").cast("int")).alias("suspicious_meetings"),
              F.sum("signal_count").alias("suspicious_signals")))

    vol = (_alive(volunteer).where(F.col("service_date") <= d).select("member_id", "service_date", "hours")
           .join(roll, "member_id").where(_within(F.col("service_date")))
           .groupBy(F.col("_org").alias("org_id"), F.trunc("service_date", "quarter").alias("quarter_start"))
           .agg(F.sum("hours").alias("volunteer_hours")))
    # a monthly row belongs to the branch whose roll period overlaps the month last
    act = (_alive(activity).where(F.col("activity_month") <= d)
           .select("activity_id", "member_id", "activity_month", "login_days")
           .join(roll, "member_id")
           .where((F.col("valid_from") <= F.last_day("activity_month"))
                  & (F.col("valid_to").isNull() | (F.col("valid_to") > F.col("activity_month")))))
    act = (act.withColumn("_rn", F.row_number().over(Window.partitionBy("activity_id").orderBy(F.col("valid_from").desc())))
           .where("_rn = 1")
           .groupBy(F.col("_org").alias("org_id"), F.trunc("activity_month", "quarter").alias("quarter_start"))
           .agg(F.sum("login_days").alias("app_login_days")))

    keys = ["org_id", "quarter_start"]
    out = (grid.join(active, keys, "left").join(mq, keys, "left").join(vol, keys, "left").join(act, keys, "left"))
    zeros = ["members_active", "meetings_total", *TYPE_COLUMNS.values(), "other_meetings", "activity_types",
             "new_activity_types", "non_working_day_meetings", "identical_attendance_meetings",
             "identical_attendance_nontrivial_meetings", "declared_exceeds_members_meetings", "suspicious_meetings",
             "suspicious_signals", "app_login_days"]
    out = out.fillna(0, subset=zeros).fillna(0.0, subset=["volunteer_hours"])
    held = sanhui_held(rules)
    per_member = lambda c: F.when(F.col("members_active") > 0, F.col(c) / F.col("members_active"))  # noqa: E731
    return out.select(
        "org_id", "org_name", "org_type", "parent_org_id", "quarter_start", "quarter_end",
        (F.col("quarter_end") <= d).alias("quarter_complete"), "members_active",
        "meetings_total", *TYPE_COLUMNS.values(), "other_meetings",
        "activity_types", "new_activity_types",
        F.lit(rules.sanhui_total).alias("sanhui_required"), held.alias("sanhui_held"),
        _sanhui_rate(held, rules).alias("sanhui_completion_rate"), "mean_attendance_rate",
        "volunteer_hours", per_member("volunteer_hours").alias("volunteer_hours_per_member"),
        "app_login_days", per_member("app_login_days").alias("app_login_days_per_member"),
        "non_working_day_meetings", "identical_attendance_meetings", "identical_attendance_nontrivial_meetings",
        "declared_exceeds_members_meetings", "suspicious_meetings", "suspicious_signals", d.alias("as_of_date"))


# ---------------------------------------------------------------------------------------------
# 学习问答
# ---------------------------------------------------------------------------------------------

def fct_learning_daily(links: DataFrame, app_users: DataFrame, answers: DataFrame, member_history: DataFrame,
                       post_history: DataFrame, calendar: DataFrame, as_of: dt.date, rules: Rules,
                       since: dt.date | None = None, from_date: dt.date | None = None,
                       prior: DataFrame | None = None) -> DataFrame:
    """One row per cadre (linked to a member record, see :func:`cadre_member_links`) and working
    day of the 学习问答 obligation: from the app registration (not before ``since``, the day the
    question bank went live, when given) to ``as_of``, on days the member is on the roll (在册).

    ``miss_streak`` counts consecutive missed working days up to and including the day (0 on a day
    with an answer); weekends and public holidays are not rows, 调休 make-up days are;
    ``miss_streak_start`` is the streak's first missed day. The auto-flow reads the rule's verdicts:
    ``is_obligated`` (the rank held that day is at ``[rules] learning_min_level`` or above),
    ``reminder_due`` (obligated and missed), ``escalation_due`` (obligated and ``miss_streak`` reached
    ``[rules] learning_escalate_after``) and ``escalated_on`` (the day it reached it).

    Columns: cadre_id, member_id, work_date, year, is_makeup_workday, answered, answers (sheets
    that day), miss_streak, miss_streak_start, rank (post held that day), is_obligated, reminder_due,
    escalation_due, escalated_on, obligation_start. A row depends only on its day and the days
    before it, never on ``as_of`` (rows end at it), so the table carries no as-of column.

    Incremental (``from_date`` and ``prior``): only the rows with ``work_date >= from_date``, their
    streaks continued from ``prior``, the table's rows before ``from_date`` (:func:`carry_streaks`).
    It equals the full table's rows from ``from_date`` when no input changed before ``from_date``
    (the micro-batch finds ``from_date`` from its batch: :mod:`redcloud.stages.microbatch`).
    """
    d = _d(as_of)
    reg = _alive(app_users).select("member_id", F.to_date("registered_at").alias("reg_date"))
    start = F.greatest(F.col("reg_date"), F.lit(since).cast("date")) if since else F.col("reg_date")
    base = links.select("cadre_id", "member_id").join(reg, "member_id").withColumn("obligation_start", start)
    cal = calendar.where(F.col("is_workday") & (F.col("cal_date") <= d)).select(
        F.col("cal_date").alias("work_date"), "is_makeup_workday")
    if from_date is not None:
        cal = cal.where(F.col("work_date") >= _d(from_date))
    grid = base.join(F.broadcast(cal), F.col("work_date") >= F.col("obligation_start"))
    roll = (member_history.where(F.col("membership_status") == ON_ROLL)
            .select(F.col("member_id").alias("_mid"), "valid_from", "valid_to"))
    grid = (grid.join(roll, (F.col("member_id") == F.col("_mid")) & _within(F.col("work_date")))
            .drop("_mid", "valid_from", "valid_to"))
    ans = (_alive(answers).where(F.col("answer_date") <= d)
           .groupBy("member_id", F.col("answer_date").alias("work_date")).agg(F.count("*").alias("answers")))
    grid = (grid.join(ans, ["member_id", "work_date"], "left").fillna(0, subset=["answers"])
            .withColumn("answered", F.col("answers") > 0))
    posts = post_history.select(F.col("cadre_id").alias("_cid"), "valid_from", "valid_to", "rank")
    grid = (grid.join(posts, (F.col("cadre_id") == F.col("_cid")) & _within(F.col("work_date")), "left")
            .drop("_cid", "valid_from", "valid_to"))
    n = rules.learning_escalate_after
    grid = miss_streaks(grid, ["cadre_id"], "work_date", "answered", start="miss_streak_start",
                        reached=("_reached", n))
    if from_date is not None and prior is not None:
        grid = carry_streaks(grid, prior.where(F.col("work_date") < _d(from_date)), ["cadre_id"], "work_date",
                             "answered", "miss_streak", "miss_streak_start", ("_reached", n))
    obligated = rank_is_obligated(F.col("rank"), rules)
    return grid.select(
        "cadre_id", "member_id", "work_date", F.year("work_date").alias("year"), "is_makeup_workday", "answered",
        "answers", "miss_streak", "miss_streak_start", "rank", obligated.alias("is_obligated"),
        (obligated & ~F.col("answered")).alias("reminder_due"),
        (obligated & (F.col("miss_streak") >= n)).alias("escalation_due"),
        F.when(obligated, F.col("_reached")).alias("escalated_on"), "obligation_start")


# ---------------------------------------------------------------------------------------------
# 驻村 and 帮扶
# ---------------------------------------------------------------------------------------------

def fct_village_work_daily(assignments: DataFrame, records: DataFrame, calendar: DataFrame, as_of: dt.date,
                           rules: Rules, since: dt.date | None = None, from_date: dt.date | None = None,
                           prior: DataFrame | None = None) -> DataFrame:
    """One row per 驻村 assignment and working day of its active window: from ``start_date`` (not
    before ``since``, the day 每日工作记实 went live, when given) to ``end_date`` or ``as_of``.

    ``has_record``: a 每日工作记实 exists for the day; ``photo_count`` (sum), ``signed_in`` (any record
    signed in); ``record_ids`` are the evidence; ``days_without_record`` counts consecutive working
    days without a record up to the day, from ``miss_streak_start``; ``reminder_due``: that count
    reached ``[rules] village_reminder_after``. Records on non-working days are not counted here.

    Columns: assignment_id, cadre_id, village_org_id, role, work_date, is_makeup_workday, has_record,
    record_count, photo_count, signed_in, first_sign_in_at, record_ids, days_without_record,
    miss_streak_start, reminder_due. A row depends only on its day and the days before it (rows end
    at ``as_of``), so the table carries no as-of column.

    Incremental (``from_date`` and ``prior``), as :func:`fct_learning_daily`: only the rows from
    ``from_date`` on, the gaps continued from ``prior`` (:func:`carry_streaks`).
    """
    d = _d(as_of)
    a = _alive(assignments).select("assignment_id", "cadre_id", "village_org_id", "role", "start_date", "end_date")
    lo = F.greatest(F.col("start_date"), F.lit(since).cast("date")) if since else F.col("start_date")
    a = a.withColumn("_lo", lo).withColumn("_hi", F.least(F.coalesce("end_date", d), d))
    cal = calendar.where(F.col("is_workday")).select(F.col("cal_date").alias("work_date"), "is_makeup_workday")
    if from_date is not None:
        cal = cal.where(F.col("work_date") >= _d(from_date))
    grid = a.join(F.broadcast(cal), (F.col("work_date") >= F.col("_lo")) & (F.col("work_date") <= F.col("_hi")))
    rec = (_alive(records).where(F.col("work_date") <= d)
           .groupBy("assignment_id", "work_date").agg(
               F.count("*").alias("record_count"), F.sum("photo_count").alias("photo_count"),
               F.max(F.coalesce(F.col("signed_in"), F.lit(False))).alias("signed_in"),
               F.min("sign_in_at").alias("first_sign_in_at"),
               F.array_sort(F.collect_list("record_id")).alias("record_ids")))
    out = (grid.join(rec, ["assignment_id", "work_date"], "left")
           .fillna(0, subset=["record_count", "photo_count"]).fillna(False, subset=["signed_in"])
           .withColumn("has_record", F.col("record_count") > 0))
    out = miss_streaks(out, ["assignment_id"], "work_date", "has_record", "days_without_record",
                       start="miss_streak_start")
    if from_date is not None and prior is not None:
        out = carry_streaks(out, prior.where(F.col("work_date") < _d(from_date)), ["assignment_id"], "work_date",
                            "has_record", "days_without_record", "miss_streak_start")
    return out.select("assignment_id", "cadre_id", "village_org_id", "role", "work_date", "is_makeup_workday",
                      "has_record", "record_count", "photo_count", "signed_in", "first_sign_in_at",
                      F.coalesce(F.col("record_ids"), F.array().cast("array<bigint>")).alias("record_ids"),
                      "days_without_record", "miss_streak_start",
                      (F.col("days_without_record") >= rules.village_reminder_after).alias("reminder_due"))


def fct_project_lifecycle(projects: DataFrame, as_of: dt.date, rules: Rules) -> DataFrame:
    """The 精准帮扶 project lifecycle: one row per project and state it has been in, up to ``as_of``.

    States (:data:`redcloud.rules.vocab.PROJECT_STATES`) follow each other from the dates alone:
    进行中 from ``start_date``; 督办预警 from ``deadline - [rules] project_warning_days`` (not before the
    start); 已逾期 from the day after the deadline; 逾期注销 (自动注销) from ``deadline + [rules]
    project_expire_after_days``. Completion ends whatever state the project is in: 已完成 from
    ``completed_date``. A state's period is [valid_from, valid_to); the current state (as of
    ``as_of``) has ``valid_to`` NULL, and states not reached by ``as_of`` are not rows.

    The state on any day X <= as_of is the row with valid_from <= X < valid_to (or valid_to NULL):
    the brief, the alerts and the API read it that way, and never re-derive it.

    Columns: project_id, village_org_id, cadre_id, state, state_seq (0-4 in lifecycle order),
    valid_from, valid_to, as_of_date.
    """
    d = _d(as_of)
    p = _alive(projects).where(F.col("start_date") <= d).select(
        "project_id", "village_org_id", "cadre_id", "start_date", "deadline",
        F.when(F.col("completed_date") <= d, F.col("completed_date")).alias("_done"))
    warn = F.greatest(F.date_sub("deadline", rules.project_warning_days), F.col("start_date"))
    overdue = F.greatest(F.date_add("deadline", 1), warn)
    expired = F.greatest(F.date_add("deadline", rules.project_expire_after_days), overdue)
    starts = {IN_PROGRESS: F.col("start_date"), DEADLINE_WARNING: warn, OVERDUE: overdue, EXPIRED: expired}
    order = [IN_PROGRESS, DEADLINE_WARNING, OVERDUE, EXPIRED]
    parts = []
    for i, state in enumerate(order):
        end = starts[order[i + 1]] if i + 1 < len(order) else F.lit(None).cast("date")
        end = F.when(F.col("_done").isNotNull() & (end.isNull() | (F.col("_done") < end)), F.col("_done")).otherwise(end)
        parts.append(p.select("project_id", "village_org_id", "cadre_id", F.lit(state).alias("state"),
                              starts[state].alias("valid_from"), end.alias("valid_to")))
    parts.append(p.where(F.col("_done").isNotNull()).select(
        "project_id", "village_org_id", "cadre_id", F.lit(COMPLETED).alias("state"),
        F.col("_done").alias("valid_from"), F.lit(None).cast("date").alias("valid_to")))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    seq = F.lit(None).cast("int")
    for i, state in enumerate(PROJECT_STATES):
        seq = F.when(F.col("state") == state, F.lit(i)).otherwise(seq)
    return (out.where((F.col("valid_from") <= d) & (F.col("valid_to").isNull() | (F.col("valid_from") < F.col("valid_to"))))
            .withColumn("valid_to", F.when(F.col("valid_to") <= d, F.col("valid_to")))   # open after as_of: current
            .select("project_id", "village_org_id", "cadre_id", "state", seq.alias("state_seq"), "valid_from",
                    "valid_to", d.alias("as_of_date")))


def fct_project_status(projects: DataFrame, lifecycle: DataFrame, as_of: dt.date) -> DataFrame:
    """One row per 帮扶 project started by ``as_of``: its lifecycle state on that date.

    ``status``: the state from :func:`fct_project_lifecycle` (进行中, 督办预警, 已逾期, 已完成, 逾期注销),
    ``state_since`` the day it began; ``deadline_warning`` (督办预警), ``is_overdue`` (已逾期) and
    ``is_closed`` (已完成 or 逾期注销) are that state as flags. ``days_to_deadline`` = deadline - as_of
    (negative once past; NULL when completed); ``overdue_days`` = days past the deadline of a project
    not completed (0 otherwise); ``completed_late_days`` = days a completed project finished after its
    deadline (0 when on time); ``source_status`` is the status the app stored, for comparison.

    Columns: project_id, project_name, village_org_id, cadre_id, category, start_date, deadline,
    completed_date, status, state_since, days_to_deadline, overdue_days, completed_late_days,
    deadline_warning, is_overdue, is_closed, source_status, budget_yuan, as_of_date.
    """
    d = _d(as_of)
    p = _alive(projects).where(F.col("start_date") <= d)
    now = lifecycle.where(F.col("valid_to").isNull()).select("project_id", F.col("state").alias("_state"),
                                                                F.col("valid_from").alias("state_since"))
    p = p.join(now, "project_id")
    done = F.col("completed_date").isNotNull() & (F.col("completed_date") <= d)
    to_dl = F.datediff("deadline", d)
    state = F.col("_state")
    return p.select(
        "project_id", "project_name", "village_org_id", "cadre_id", "category", "start_date", "deadline",
        F.when(done, F.col("completed_date")).alias("completed_date"), state.alias("status"), "state_since",
        F.when(~done, to_dl).alias("days_to_deadline"),
        F.when(~done & (to_dl < 0), -to_dl).otherwise(0).alias("overdue_days"),
        F.when(done, F.greatest(F.lit(0), F.datediff("completed_date", "deadline"))).otherwise(0).alias("completed_late_days"),
        (state == DEADLINE_WARNING).alias("deadline_warning"), (state == OVERDUE).alias("is_overdue"),
        state.isin(COMPLETED, EXPIRED).alias("is_closed"),
        F.col("status").alias("source_status"), "budget_yuan", d.alias("as_of_date"))


# ---------------------------------------------------------------------------------------------
# cadre-year
# ---------------------------------------------------------------------------------------------

def ironcage_cadre_keys(person_links: DataFrame, persons: DataFrame) -> DataFrame:
    """(identity_key, cadre_id): 数据铁笼 identities that identity fusion linked to exactly one person who
    is a cadre (``status = 'linked'``); ambiguous or unlinked records never reach a cadre."""
    pl = person_links.where((F.col("source") == "ironcage") & (F.col("status") == "linked"))
    pc = persons.where(F.col("cadre_id").isNotNull()).select("person_key", F.col("cadre_id").cast("long"))
    return (pl.join(pc, "person_key").select(F.col("source_key").alias("identity_key"), "cadre_id")
            .dropDuplicates(["identity_key"]))


def fct_power_operation(power_operations: DataFrame, complaints: DataFrame, as_of: dt.date) -> DataFrame:
    """One row per 数据铁笼 operation (办件) received up to the end of ``as_of``, classified as of then.

    The one home of the 办件 timeliness rule, read by the 权力运行 mart and the cadre-year fact:
    - ``completed_at``: the 办结 time when it happened by the end of as_of, else NULL;
    - ``is_on_time``: 办结 by the deadline; ``is_overdue``: 办结 after the deadline, or still open with the
      deadline passed by the end of as_of; neither: open and not yet due;
    - ``complaints``: complaints about the operation received by the end of as_of.

    op_id, identity_key, dept_code, dept_name, item_name, handler_name, month (of receipt), received_at,
    deadline_at, completed_at, is_on_time, is_overdue, complaints, as_of_date.
    """
    end = F.lit(as_of + dt.timedelta(days=1)).cast("timestamp")
    done = F.col("completed_at").isNotNull() & (F.col("completed_at") < end)
    per_op = (_alive(complaints).where(F.col("op_id").isNotNull() & (F.col("received_at") < end))
              .groupBy("op_id").agg(F.count(F.lit(1)).alias("complaints")))
    ops = _alive(power_operations).where(F.col("received_at") < end)
    return (ops.join(per_op, "op_id", "left").select(
        "op_id", "identity_key", "dept_code", "dept_name", "item_name", "handler_name",
        F.trunc(F.to_date("received_at"), "MM").alias("month"), "received_at",
        F.col("deadline").alias("deadline_at"),
        F.when(done, F.col("completed_at")).alias("completed_at"),
        (done & (F.col("completed_at") <= F.col("deadline"))).alias("is_on_time"),
        ((done & (F.col("completed_at") > F.col("deadline"))) | (~done & (F.col("deadline") < end))).alias("is_overdue"),
        F.coalesce(F.col("complaints"), F.lit(0)).cast("long").alias("complaints"),
        _d(as_of).alias("as_of_date")))


def ironcage_cadre_year(operations: DataFrame, complaints: DataFrame, duty_records: DataFrame,
                        keys: DataFrame, as_of: dt.date) -> DataFrame:
    """cadre_id x year of the 数据铁笼 records linked to a cadre (by the year received / recorded, up to as_of).

    - ``ironcage_items_handled``: operations received; ``ironcage_overdue_items``: those
      :func:`fct_power_operation` classifies overdue at as_of (``operations`` is that fact);
      ``ironcage_timely_rate``: on time / (on time + overdue), NULL when none is decided yet;
    - ``ironcage_complaints``: complaints about the cadre as handler;
    - 岗位责任工作记实 (四位一体 绩): ``duty_targets``, ``duty_completed`` (summed over the months),
      ``duty_target_completion_rate`` = completed / targets, ``duty_review_score`` (mean monthly 考评得分).
    """
    end = F.lit(as_of + dt.timedelta(days=1)).cast("timestamp")
    k = keys.select("identity_key", "cadre_id")
    ops = operations.join(k, "identity_key").groupBy("cadre_id", F.year("received_at").alias("year")).agg(
        F.count("*").alias("ironcage_items_handled"), F.sum(F.col("is_overdue").cast("long")).alias("ironcage_overdue_items"),
        F.sum(F.col("is_on_time").cast("long")).alias("_ontime"))
    cp = (_alive(complaints).where(F.col("received_at") < end).join(k, "identity_key")
          .groupBy("cadre_id", F.year("received_at").alias("year")).agg(F.count("*").alias("ironcage_complaints")))
    du = (_alive(duty_records).where(F.col("duty_month") <= F.lit(as_of)).join(k, "identity_key")
          .groupBy("cadre_id", F.year("duty_month").alias("year")).agg(
              F.sum("target_count").cast("long").alias("duty_targets"),
              F.sum("completed_count").cast("long").alias("duty_completed"),
              F.avg("review_score").alias("duty_review_score")))
    out = ops.join(cp, ["cadre_id", "year"], "full").join(du, ["cadre_id", "year"], "full")
    decided = F.col("_ontime") + F.col("ironcage_overdue_items")
    return out.select(
        "cadre_id", F.col("year").cast("int").alias("year"), "ironcage_items_handled",
        F.when(decided > 0, F.col("_ontime") / decided).alias("ironcage_timely_rate"), "ironcage_overdue_items",
        "ironcage_complaints", "duty_targets", "duty_completed",
        F.when(F.col("duty_targets") > 0, F.col("duty_completed") / F.col("duty_targets"))
        .alias("duty_target_completion_rate"), "duty_review_score")


def duty_due_dates(calendar: DataFrame, nth_workday: int) -> DataFrame:
    """(month, due_date): a month's 岗位责任工作记实 is due on the ``nth_workday``-th working day of the
    next month (official calendar, 调休 included); months whose due day is past the calendar have none."""
    wd = calendar.where(F.col("is_workday")).select("cal_date")
    w = Window.partitionBy(F.trunc("cal_date", "MM")).orderBy("cal_date")
    return (wd.withColumn("_n", F.row_number().over(w)).where(F.col("_n") == nth_workday)
            .select(F.add_months(F.trunc("cal_date", "MM"), -1).alias("month"), F.col("cal_date").alias("due_date")))


def fct_cadre_duty_month(duty_records: DataFrame, keys: DataFrame, post_history: DataFrame, calendar: DataFrame,
                         as_of: dt.date, rules: Rules) -> DataFrame:
    """四位一体 岗位责任工作记实 by cadre and month: the 年度目标分解 sets each month's target tasks, the
    monthly 记实 records what was completed and the 考评得分.

    Grid: every cadre linked (identity fusion, ``keys`` from :func:`ironcage_cadre_keys`) to a 数据铁笼
    identity with at least one duty record, and every month from the cadre's first record month to
    the month of ``as_of`` in which the cadre held a post (cadre_post_history).

    - ``targets``, ``completed``, ``completion_rate``, ``review_score`` of the month (NULL without a record);
    - ``ytd_targets``, ``ytd_completed``, ``ytd_completion_rate``: the year up to and including the month;
    - ``due_date``: the ``[rules] duty_record_due_workday``-th working day of the next month (official
      calendar); ``record_missing``: no record and the due date has passed (on or before as_of);
      ``workdays_overdue``: working days after the due date up to as_of while missing (0 otherwise);
      ``reminder_due`` = ``record_missing`` (the 自流程化 reminder ``duty_record_reminder``).

    Columns: cadre_id, month, year, unit_org_id (post held at the end of the month or on as_of),
    record_count, targets, completed, completion_rate, review_score, ytd_targets, ytd_completed,
    ytd_completion_rate, due_date, record_missing, workdays_overdue, reminder_due, as_of_date.
    """
    d = _d(as_of)
    k = keys.select("identity_key", "cadre_id")
    rec = (_alive(duty_records).where(F.col("duty_month") <= d).join(k, "identity_key")
           .groupBy("cadre_id", F.trunc("duty_month", "MM").alias("month")).agg(
               F.count("*").alias("record_count"), F.sum("target_count").cast("long").alias("targets"),
               F.sum("completed_count").cast("long").alias("completed"), F.avg("review_score").alias("review_score")))
    first = rec.groupBy("cadre_id").agg(F.min("month").alias("_first"))
    months = first.select("cadre_id", F.explode(F.sequence("_first", F.trunc(d, "MM"), F.expr("interval 1 month")))
                          .alias("month"))
    months = months.withColumn("_asof", F.least(F.last_day("month"), d))
    pos = post_history.select(F.col("cadre_id").alias("_cid"), "valid_from", "valid_to", "unit_org_id",
                              F.col("valid_from").alias("_vf"))
    held = (months.join(pos, (F.col("cadre_id") == F.col("_cid")) & (F.col("_vf") <= F.col("_asof"))
                        & (F.col("valid_to").isNull() | (F.col("valid_to") > F.col("month"))))
            .withColumn("_at_end", _within(F.col("_asof")).cast("int")))
    w_unit = Window.partitionBy("cadre_id", "month").orderBy(F.col("_at_end").desc(), F.col("valid_from").desc())
    grid = (held.withColumn("_rn", F.row_number().over(w_unit)).where("_rn = 1")
            .select("cadre_id", "month", "unit_org_id"))
    out = grid.join(rec, ["cadre_id", "month"], "left").withColumn("year", F.year("month"))
    w_ytd = Window.partitionBy("cadre_id", "year").orderBy("month").rowsBetween(Window.unboundedPreceding, 0)
    out = (out.withColumn("ytd_targets", F.sum(F.coalesce("targets", F.lit(0))).over(w_ytd))
           .withColumn("ytd_completed", F.sum(F.coalesce("completed", F.lit(0))).over(w_ytd)))
    wd_no = workday_numbers(calendar).withColumnRenamed("_n", "_wd_no")
    today_no = wd_no.where(F.col("cal_date") <= d).agg(F.max("_wd_no").alias("_today_no"))
    due = (duty_due_dates(calendar, rules.duty_record_due_workday)
           .join(wd_no.select(F.col("cal_date").alias("due_date"), "_wd_no"), "due_date"))
    out = out.join(F.broadcast(due), "month", "left").crossJoin(F.broadcast(today_no))
    missing = F.col("record_count").isNull() & F.col("due_date").isNotNull() & (F.col("due_date") <= d)
    return out.select(
        "cadre_id", "month", F.col("year").cast("int").alias("year"), "unit_org_id",
        F.coalesce(F.col("record_count"), F.lit(0)).cast("long").alias("record_count"),
        "targets", "completed",
        F.when(F.col("targets") > 0, F.col("completed") / F.col("targets")).alias("completion_rate"),
        "review_score", F.col("ytd_targets").cast("long").alias("ytd_targets"),
        F.col("ytd_completed").cast("long").alias("ytd_completed"),
        F.when(F.col("ytd_targets") > 0, F.col("ytd_completed") / F.col("ytd_targets")).alias("ytd_completion_rate"),
        "due_date", missing.alias("record_missing"),
        F.when(missing, F.col("_today_no") - F.col("_wd_no")).otherwise(F.lit(0)).cast("int").alias("workdays_overdue"),
        missing.alias("reminder_due"), d.alias("as_of_date"))


def fct_cadre_year(cadres: DataFrame, links: DataFrame, learning_daily: DataFrame, attendance: DataFrame,
                   meetings: DataFrame, assessments: DataFrame, discipline: DataFrame, post_history: DataFrame,
                   village_daily: DataFrame, projects: DataFrame, as_of: dt.date, first_year: int,
                   ironcage: DataFrame | None = None, ironcage_since: int | None = None) -> DataFrame:
    """One row per cadre and year from ``first_year`` to the year of ``as_of`` in which the cadre
    held a post (cadre_post_history) or was assessed: inputs of the cadre evaluation model.

    - 学习问答 (from fct_learning_daily): ``learning_days_required`` = working days between
      max(Jan 1, registration, go-live) and min(Dec 31, as_of) while on the roll,
      ``learning_days_answered``, ``learning_answer_rate``, ``learning_longest_miss_streak`` (within
      the year); NULL when the cadre has no member link or no app account;
    - organisational life via the cadre's member record: ``meetings_expected``, ``meetings_attended``,
      ``meeting_attendance_rate``;
    - 驻村: ``village_workdays`` / ``village_record_days``; 帮扶: ``projects_due`` (deadline in the
      year, up to as_of), ``projects_completed_on_time``;
    - ``discipline_count``: disciplinary actions dated in the year;
    - counts are 0 when nothing happened and NULL for a year before the source's first record
      (e.g. meetings before the app recorded any), so a model never reads "no data" as "none";
    - ``assessment_grade``: the annual grade (优秀/称职/基本称职/不称职; the label, NULL while pending);
    - 数据铁笼 inputs (``ironcage``, from :func:`ironcage_cadre_year`; records reach a cadre only through
      identity fusion): ``ironcage_items_handled``, ``ironcage_timely_rate``, ``ironcage_overdue_items``,
      ``ironcage_complaints``, and 岗位责任工作记实 ``duty_targets``, ``duty_completed``,
      ``duty_target_completion_rate``, ``duty_review_score``; counts are 0 from ``ironcage_since`` (the
      year of the first export) on, NULL before it and when no 数据铁笼 data is given; rates NULL
      when nothing was due.

    Columns: cadre_id, year, member_id, link_method, rank, position, unit_org_id (post held at the
    end of the year or on as_of), the inputs above, year_complete, as_of_date.
    """
    d = _d(as_of)
    years = list(range(first_year, as_of.year + 1))
    yr = cadres.sparkSession.createDataFrame([(y,) for y in years], "year int").withColumn(
        "_y0", F.make_date("year", F.lit(1), F.lit(1))).withColumn("_y1", F.make_date("year", F.lit(12), F.lit(31)))
    c = _alive(cadres).select("cadre_id")
    ph = post_history.select("cadre_id", "valid_from", "valid_to")
    held = (ph.crossJoin(F.broadcast(yr))
            .where((F.col("valid_from") <= F.col("_y1")) & (F.col("valid_to").isNull() | (F.col("valid_to") > F.col("_y0"))))
            .select("cadre_id", "year"))
    grade_w = Window.partitionBy("cadre_id", "assess_year").orderBy(F.col("updated_at").desc(), F.col("assessment_id").desc())
    grades = (_alive(assessments).withColumn("_rn", F.row_number().over(grade_w)).where("_rn = 1")
              .select("cadre_id", F.col("assess_year").cast("int").alias("year"), F.col("grade").alias("assessment_grade")))
    keys = (held.unionByName(grades.select("cadre_id", "year")).distinct()
            .where((F.col("year") >= first_year) & (F.col("year") <= as_of.year))
            .join(c, "cadre_id", "left_semi"))
    keys = keys.join(F.broadcast(yr), "year").withColumn("_asof", F.least("_y1", d))

    pos = post_history.select(F.col("cadre_id").alias("_cid"), "valid_from", "valid_to", "rank", "position", "unit_org_id")
    keys = (keys.join(pos, (F.col("cadre_id") == F.col("_cid")) & _within(F.col("_asof")), "left")
            .drop("_cid", "valid_from", "valid_to"))

    ld = learning_daily.select("cadre_id", "year", "work_date", "answered")
    ld = miss_streaks(ld, ["cadre_id", "year"], "work_date", "answered", "_streak")
    learn = ld.groupBy("cadre_id", "year").agg(
        F.count("*").alias("learning_days_required"), F.sum(F.col("answered").cast("int")).alias("learning_days_answered"),
        F.max("_streak").alias("learning_longest_miss_streak"))

    mt = _alive(meetings).where(F.col("meeting_date") <= d).select("meeting_id", F.year("meeting_date").alias("year"))
    att = (_alive(attendance).join(links.select("member_id", "cadre_id"), "member_id").join(mt, "meeting_id")
           .groupBy("cadre_id", "year").agg(
               F.count("*").alias("meetings_expected"),
               F.sum((F.col("status") == PRESENT).cast("int")).alias("meetings_attended")))
    disc = (_alive(discipline).where(F.col("action_date") <= d)
            .groupBy("cadre_id", F.year("action_date").alias("year")).agg(F.count("*").alias("discipline_count")))
    vil = village_daily.groupBy("cadre_id", F.year("work_date").alias("year")).agg(
        F.count("*").alias("village_workdays"), F.sum(F.col("has_record").cast("int")).alias("village_record_days"))
    proj = (_alive(projects).where(F.col("deadline") <= d)
            .groupBy("cadre_id", F.year("deadline").alias("year")).agg(
                F.count("*").alias("projects_due"),
                F.sum((F.col("completed_date").isNotNull() & (F.col("completed_date") <= F.col("deadline"))).cast("int"))
                .alias("projects_completed_on_time")))

    # a source covers the years from its earliest record: before that "0 meetings" would be a lie
    fy = F.lit(first_year)
    coverage = (_alive(meetings).agg(F.coalesce(F.year(F.min("meeting_date")), fy).alias("_cov_meet"))
                .crossJoin(_alive(discipline).agg(F.coalesce(F.year(F.min("action_date")), fy).alias("_cov_disc")))
                .crossJoin(_alive(projects).agg(F.coalesce(F.year(F.min("deadline")), fy).alias("_cov_proj"))))

    k = ["cadre_id", "year"]
    out = (keys.join(links.select("cadre_id", "member_id", "link_method"), "cadre_id", "left")
           .join(learn, k, "left").join(att, k, "left").join(disc, k, "left").join(vil, k, "left")
           .join(proj, k, "left").join(grades, k, "left").crossJoin(F.broadcast(coverage)))
    linked = F.col("member_id").isNotNull()
    yr_in = lambda cov: F.col("year") >= F.col(cov)  # noqa: E731
    zero_if = lambda c, cond: F.when(cond, F.coalesce(F.col(c), F.lit(0)))  # noqa: E731
    out = (out
           .withColumn("meetings_expected", zero_if("meetings_expected", linked & yr_in("_cov_meet")))
           .withColumn("meetings_attended", zero_if("meetings_attended", linked & yr_in("_cov_meet")))
           .withColumn("discipline_count", zero_if("discipline_count", yr_in("_cov_disc")))
           .withColumn("projects_due", zero_if("projects_due", yr_in("_cov_proj")))
           .withColumn("projects_completed_on_time", zero_if("projects_completed_on_time", yr_in("_cov_proj"))))
    null = lambda t: F.lit(None).cast(t)  # noqa: E731
    ic_cols = {"ironcage_items_handled": "long", "ironcage_timely_rate": "double", "ironcage_overdue_items": "long",
               "ironcage_complaints": "long", "duty_targets": "long", "duty_completed": "long",
               "duty_target_completion_rate": "double", "duty_review_score": "double"}
    if ironcage is None:
        for c, t in ic_cols.items():
            out = out.withColumn(c, null(t))
    else:
        out = out.join(ironcage.select(*k, *ic_cols), k, "left")
        since = F.col("year") >= F.lit(ironcage_since if ironcage_since is not None else first_year)
        for c in ("ironcage_items_handled", "ironcage_overdue_items", "ironcage_complaints"):
            out = out.withColumn(c, zero_if(c, since))
    return out.select(
        "cadre_id", "year", "member_id", "link_method", "rank", "position", "unit_org_id",
        "learning_days_required", "learning_days_answered",
        F.when(F.col("learning_days_required") > 0, F.col("learning_days_answered") / F.col("learning_days_required"))
        .alias("learning_answer_rate"), "learning_longest_miss_streak",
        "meetings_expected", "meetings_attended",
        F.when(F.col("meetings_expected") > 0, F.col("meetings_attended") / F.col("meetings_expected"))
        .alias("meeting_attendance_rate"),
        "village_workdays", "village_record_days", "projects_due", "projects_completed_on_time", "discipline_count",
        "assessment_grade",
        *[F.col(c).cast(t).alias(c) for c, t in ic_cols.items()],
        (F.col("_y1") <= d).alias("year_complete"), d.alias("as_of_date"))
