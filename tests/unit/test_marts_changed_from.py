"""Which snapshot dates an incremental mart must recompute (redcloud.marts.first_changed), on real
Spark + Delta: a closed validity period changes the snapshots from its end on, not from its start; a
member's changed attribute reaches back to the member's first roll period; a plain date column
gives the earliest changed row's date. Which marts are updated from their last build instead of
recounted (changed_from's bases), and when a mart's rows stop matching the versions it recorded (a
backfill)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from redcloud.lake import DeltaDataSet, Lake
from redcloud.marts import (
    FROM_START,
    INCREMENTAL_INPUTS,
    Interval,
    Via,
    changed_from,
    first_changed,
    record_input_versions,
    seen_inputs,
)

D = dt.date
HISTORY = "member_id long, org_id long, party_status string, is_on_roll boolean, valid_from date, valid_to date"
MEMBERS = "member_id long, gender string, education string, org_id long"
HISTORY_COLS = ["member_id", "org_id", "party_status", "is_on_roll", "valid_from", "valid_to"]


@pytest.fixture(params=["files", "versions"])
def lake(request, tmp_path, monkeypatch):
    """A lake whose changes are compared file by file in DuckDB (the data files two versions do not
    share), or, as for a partitioned or vacuumed table, version against version in Spark: every
    case must give the same answer both ways."""
    lake = Lake(tmp_path / "lake")
    if request.param == "versions":
        monkeypatch.setattr(lake, "change_files", lambda *a, **k: None)
    return lake


def _write(spark, lake, name, rows, schema) -> int:
    lake.write(spark, DeltaDataSet(name, "silver", spark.createDataFrame(rows, schema), mode="overwrite"))
    return lake.version("silver", name)


def _history(spark, lake, rows) -> int:
    return _write(spark, lake, "member_status_history", rows, HISTORY)


def _first(spark, lake, table, spec, cols, seen, now, seen_versions=None):
    return first_changed(spark, lake, "silver", table, spec, cols, seen, now, seen_versions)


BASE = [(1, 10, "正式党员", True, D(2010, 5, 1), None),
        (2, 10, "预备党员", True, D(2024, 3, 1), None)]


def test_the_composition_mart_reads_the_history_by_period_and_members_through_it():
    spec = {table: date for _, table, date, _ in INCREMENTAL_INPUTS["mart_member_composition"]}
    assert isinstance(spec["member_status_history"], Interval)
    assert isinstance(spec["members"], Via) and spec["members"].table == "member_status_history"


def test_closing_an_open_period_changes_the_snapshots_from_its_end(spark, lake):
    v0 = _history(spark, lake, BASE)
    # member 1 transfers on 2025-12-20: the open period closes, a new one opens
    v1 = _history(spark, lake, [(1, 10, "正式党员", True, D(2010, 5, 1), D(2025, 12, 20)),
                                (1, 11, "正式党员", True, D(2025, 12, 20), None), BASE[1]])
    spec = Interval("valid_from", "valid_to")
    assert _first(spark, lake, "member_status_history", spec, HISTORY_COLS, v0, v1) == D(2025, 12, 20)
    # the plain date column would have gone back to the period's start
    assert _first(spark, lake, "member_status_history", "valid_from", HISTORY_COLS, v0, v1) == D(2010, 5, 1)
    assert _first(spark, lake, "member_status_history", spec, HISTORY_COLS, v1, v1) is None


def test_a_changed_period_attribute_or_a_removed_period_reaches_its_start(spark, lake):
    v0 = _history(spark, lake, BASE)
    # member 2's period is corrected to another organisation: every snapshot of it changes
    v1 = _history(spark, lake, [BASE[0], (2, 12, "预备党员", True, D(2024, 3, 1), None)])
    spec = Interval("valid_from", "valid_to")
    assert _first(spark, lake, "member_status_history", spec, HISTORY_COLS, v0, v1) == D(2024, 3, 1)
    v2 = _history(spark, lake, [BASE[0]])   # member 2 deleted
    assert _first(spark, lake, "member_status_history", spec, HISTORY_COLS, v1, v2) == D(2024, 3, 1)
    # a column the mart does not read changes nothing
    v3 = _write(spark, lake, "member_status_history", [(*BASE[0], True)],
                HISTORY + ", is_current boolean")
    v4 = _write(spark, lake, "member_status_history", [(*BASE[0], False)],
                HISTORY + ", is_current boolean")
    assert _first(spark, lake, "member_status_history", spec, HISTORY_COLS, v3, v4) is None


def test_a_member_attribute_reaches_back_to_the_members_first_period(spark, lake):
    h = _history(spark, lake, [*BASE, (1, 10, "正式党员", False, D(2008, 1, 1), D(2010, 5, 1))])
    via = Via("silver", "member_status_history", "member_id", "valid_from")
    cols = ["member_id", "gender", "education"]
    m0 = _write(spark, lake, "members", [(1, "男", "大学", 10), (2, "女", "高中", 10)], MEMBERS)
    m1 = _write(spark, lake, "members", [(1, "男", "大学", 11), (2, "女", "大学", 10)], MEMBERS)
    assert _first(spark, lake, "members", via, cols, m0, m1) == D(2024, 3, 1)   # org_id is not read
    m2 = _write(spark, lake, "members", [(1, "男", "研究生", 11), (2, "女", "大学", 10)], MEMBERS)
    assert _first(spark, lake, "members", via, cols, m1, m2, {"silver/member_status_history": h}) == D(2008, 1, 1)
    # a new member with no status history is on no roll: nothing to recompute
    m3 = _write(spark, lake, "members", [(1, "男", "研究生", 11), (2, "女", "大学", 10), (3, "女", "大学", 10)],
                MEMBERS)
    assert _first(spark, lake, "members", via, cols, m2, m3) is None
    # no version seen before: everything
    assert _first(spark, lake, "members", via, cols, None, m3) == FROM_START


def test_a_plain_date_column_gives_the_earliest_changed_row(spark, lake):
    schema = "record_id long, work_date date, hours double"
    v0 = _write(spark, lake, "work", [(1, D(2025, 10, 3), 2.0), (2, D(2025, 11, 4), 3.0)], schema)
    v1 = _write(spark, lake, "work", [(2, D(2025, 11, 4), 3.0), (3, D(2025, 12, 30), 1.0)], schema)
    assert _first(spark, lake, "work", "work_date", None, v0, v1) == D(2025, 10, 3)
    assert _first(spark, lake, "work", None, None, v0, v1) == FROM_START
    # only the rows of the kept keys are compared (e.g. the members linked to a cadre)
    keep = pa.table({"record_id": pa.array([2, 3], pa.int64())})
    assert first_changed(spark, lake, "silver", "work", "work_date", None, v0, v1, keep=keep) == D(2025, 12, 30)
    keep = pa.table({"record_id": pa.array([2], pa.int64())})
    assert first_changed(spark, lake, "silver", "work", "work_date", None, v0, v1, keep=keep) is None


def test_a_year_column_and_a_timestamp_count_from_their_day(spark, lake):
    schema = "cadre_id long, year int, registered_at timestamp"
    v0 = _write(spark, lake, "years", [(1, 2023, dt.datetime(2024, 1, 1, 7, 30)),
                                       (2, 2024, dt.datetime(2024, 6, 1, 9, 0))], schema)
    v1 = _write(spark, lake, "years", [(1, 2023, dt.datetime(2024, 1, 1, 7, 30)),
                                       (2, 2025, dt.datetime(2024, 6, 1, 9, 0))], schema)
    assert _first(spark, lake, "years", "year", None, v0, v1) == D(2024, 1, 1)
    # 16:30 UTC on 1 March is 00:30 on 2 March in the session's time zone (Asia/Shanghai)
    v2 = _write(spark, lake, "years", [(1, 2023, dt.datetime(2024, 1, 1, 7, 30)),
                                       (2, 2025, dt.datetime(2024, 3, 1, 16, 30, tzinfo=dt.timezone.utc))], schema)
    assert _first(spark, lake, "years", "registered_at", None, v1, v2) == D(2024, 3, 2)


COMPOSITION = "mart_member_composition"
ROLL = ("member_id long, gender string, ethnicity string, education string, occupation string, birth_date date, "
        "join_date date, is_deleted boolean")


def _roll(spark, lake, education):
    return _write(spark, lake, "members", [(1, "男", "汉族", education, "工人", D(1980, 1, 1), D(2010, 5, 1), False),
                                           (2, "女", "汉族", "高中", "农民", D(1990, 1, 1), D(2024, 3, 1), False)], ROLL)


def _state(spark, lake, day):
    """Enough of a lake for the composition mart's inputs, the mart itself, and a run context."""
    from types import SimpleNamespace

    _history(spark, lake, BASE)
    _roll(spark, lake, "大学")
    lake.write(spark, DeltaDataSet("dim_organization", "gold", spark.createDataFrame(
        [(10, "第一支部")], "org_id long, org_name string"), mode="overwrite"))
    lake.write(spark, DeltaDataSet(COMPOSITION, "marts", spark.createDataFrame(
        [(D(2025, 9, 30), 10, 2), (day, 10, 2)], "as_of_date date, org_id long, members long"), mode="overwrite"))
    return SimpleNamespace(spark=spark, lake=lake, day=day)


def _record(ctx, day, full_refresh=False, built=(COMPOSITION,)):
    _, versions, _ = changed_from(ctx, compare=False)
    record_input_versions(ctx.lake, versions, day, list(built), full_refresh)
    return seen_inputs(ctx.lake)[COMPOSITION]


def test_a_mart_is_updated_from_its_last_build_only_when_members_alone_changed(spark, lake):
    ctx = _state(spark, lake, D(2026, 1, 1))
    first = _record(ctx, ctx.day)
    assert first.consistent and first.through == ctx.day
    assert first.versions["marts/" + COMPOSITION] == lake.version("marts", COMPOSITION)
    assert changed_from(ctx)[2] == {}    # nothing changed: only the logical date's snapshot

    _roll(spark, lake, "研究生")
    changed, _, bases = changed_from(ctx)
    assert changed[COMPOSITION] == "2010-05-01"
    assert bases == {COMPOSITION: {"marts/" + COMPOSITION: first.versions["marts/" + COMPOSITION],
                                   "silver/members": first.versions["silver/members"],
                                   "silver/member_status_history": first.versions["silver/member_status_history"]}}

    # the organisation tree changed too: recount
    lake.write(spark, DeltaDataSet("dim_organization", "gold", spark.createDataFrame(
        [(10, "第一党支部")], "org_id long, org_name string"), mode="overwrite"))
    assert changed_from(ctx)[2] == {}


def test_a_backfill_stops_updates_until_a_full_refresh(spark, lake):
    ctx = _state(spark, lake, D(2026, 1, 1))
    _record(ctx, ctx.day)
    back = _record(ctx, D(2025, 11, 30))   # the later snapshots keep the rows of the earlier versions
    assert not back.consistent and back.through == D(2026, 1, 1) and back.logical_date == D(2025, 11, 30)
    _roll(spark, lake, "研究生")
    assert COMPOSITION in changed_from(ctx)[0] and changed_from(ctx)[2] == {}
    assert not _record(ctx, D(2026, 1, 2)).consistent
    assert _record(ctx, D(2026, 1, 2), full_refresh=True).consistent
    # a run that did not build the mart keeps its record
    kept = _record(ctx, D(2026, 1, 3), built=())
    assert kept.logical_date == D(2026, 1, 2) and kept.consistent


VITALITY = "mart_vitality_by_unit"


def test_two_marts_reading_one_table_differently_get_their_own_dates(spark, lake):
    """The composition mart reads members' attributes through their roll periods, the vitality mart
    their organisation through their scored months: a transfer changes only the latter, from the
    member's first scored month (one comparison per table *and* date spec, not per table)."""
    from types import SimpleNamespace

    day = D(2026, 1, 1)
    ctx = SimpleNamespace(spark=spark, lake=lake, day=day)
    _history(spark, lake, BASE)
    members = ROLL + ", org_id long"
    _write(spark, lake, "members", [(1, "男", "汉族", "大学", "工人", D(1980, 1, 1), D(2010, 5, 1), False, 10),
                                    (2, "女", "汉族", "高中", "农民", D(1990, 1, 1), D(2024, 3, 1), False, 10)], members)
    lake.write(spark, DeltaDataSet("dim_organization", "gold", spark.createDataFrame(
        [(10, "第一支部"), (11, "第二支部")], "org_id long, org_name string"), mode="overwrite"))
    lake.write(spark, DeltaDataSet("score_member_vitality", "gold", spark.createDataFrame(
        [(1, D(2025, 6, 1), 55.0), (1, D(2025, 7, 1), 60.0), (2, D(2025, 7, 1), 70.0)],
        "member_id long, month date, vitality_index double"), mode="overwrite"))
    for mart in (COMPOSITION, VITALITY):
        lake.write(spark, DeltaDataSet(mart, "marts", spark.createDataFrame([(day, 10)], "as_of_date date, org_id long"),
                                       mode="overwrite"))
    def changed():   # the other incremental marts read tables this lake does not have, or never recorded
        return {m: d for m, d in changed_from(ctx)[0].items() if m in (COMPOSITION, VITALITY)}

    _, versions, _ = changed_from(ctx, compare=False)
    record_input_versions(lake, versions, day, [COMPOSITION, VITALITY])
    assert changed() == {}

    # member 1 moves to branch 11: no attribute the composition reads from members changed
    _write(spark, lake, "members", [(1, "男", "汉族", "大学", "工人", D(1980, 1, 1), D(2010, 5, 1), False, 11),
                                    (2, "女", "汉族", "高中", "农民", D(1990, 1, 1), D(2024, 3, 1), False, 10)], members)
    assert changed() == {VITALITY: "2025-06-01"}
    record_input_versions(lake, changed_from(ctx, compare=False)[1], day, [VITALITY])
    assert changed() == {}
    # a rescore writes every row again with its own scored_at: only member 2's moved July index counts
    lake.write(spark, DeltaDataSet("score_member_vitality", "gold", spark.createDataFrame(
        [(1, D(2025, 6, 1), 55.0, "2026-01-02"), (1, D(2025, 7, 1), 60.0, "2026-01-02"),
         (2, D(2025, 7, 1), 71.0, "2026-01-02")],
        "member_id long, month date, vitality_index double, scored_at string"), mode="overwrite"))
    assert changed() == {VITALITY: "2025-07-01"}
