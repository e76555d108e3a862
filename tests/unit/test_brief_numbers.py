"""The brief's query registry and week arithmetic (no snapshot needed)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from redcloud.brief import numbers as N

# ---- fast: week arithmetic and the registry ----

@pytest.mark.parametrize("day,week", [
    ("2025-12-31", "2025-W52"),   # Wednesday: the week Mon 12-22..Sun 12-28
    ("2025-12-28", "2025-W52"),   # a Sunday ends its own week
    ("2025-12-29", "2025-W52"),   # Monday: the week just ended
    ("2026-01-04", "2026-W01"),   # ISO year differs from the calendar year
    ("2021-01-05", "2020-W53"),   # a 53-week ISO year
])
def test_week_ended_by(day, week):
    w = N.Week.ended_by(dt.date.fromisoformat(day))
    assert w.label == week
    assert w.start.isoweekday() == 1 and w.end.isoweekday() == 7
    assert w.end <= dt.date.fromisoformat(day) < w.end + dt.timedelta(days=7)


def test_week_parse_and_previous():
    w = N.Week.parse("2026-W01")
    assert (w.start, w.end) == (dt.date(2025, 12, 29), dt.date(2026, 1, 4))
    assert w.previous().label == "2025-W52"
    with pytest.raises(ValueError):
        N.Week.parse("2025-W54")
    with pytest.raises(ValueError):
        N.Week.parse("last week")


def test_registry_is_consistent():
    everything = list(N.QUERIES) + [q for q, _ in N.OPTIONAL]
    names = [q.name for q in everything]
    assert len(names) == len(set(names))
    for q in everything:
        for t in q.tables:  # every footnoted table is really read by the query, and vice versa
            assert re.search(rf"\b{t}\b", q.sql), (q.name, t)
        # no rule is spelled in the brief's SQL: states and statuses come in as parameters
        assert not re.search(r"'(已逾期|进行中|督办预警|逾期注销|已完成|在册|预备党员|党支部)'", q.sql), q.name
        assert set(N.params_for(q.sql, N.values_for(N.Week.parse("2025-W52"), dt.date(2025, 12, 31), 5))) == \
            set(re.findall(r"\$([a-z_]+)", q.sql)), q.name
        assert q.kind in ("scalar", "rows") and q.fmt in ("int", "pct", "float")
        if q.kind == "rows":
            assert q.columns, q.name
    for q, cols in N.OPTIONAL:
        assert all(re.search(rf"\b{c}\b", q.sql) for c in cols), q.name


def test_change_formatting():
    q = N.by_name("learning_answer_rate")
    assert N.format_value(q, 0.8997) == "90.0%"
    assert N.format_change(q, 0.90, 0.95) == ("-5.0 个百分点", "bad")
    q = N.by_name("projects_overdue")
    assert N.format_change(q, 3, 5) == ("-2", "good")
    assert N.format_change(q, 5, 5) == ("持平", "flat")
    assert N.format_value(q, None) == "无数据"
