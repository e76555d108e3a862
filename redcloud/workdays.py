"""China's official working-day calendar, with make-up workdays (调休).

Backed by ``chinesecalendar``; a date outside the years it knows raises
:class:`CalendarUnknownError` instead of guessing a weekday-only approximation.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import chinese_calendar
import numpy as np


class CalendarUnknownError(ValueError):
    """The official calendar for this date's year is not known."""


def _check(day: dt.date) -> None:
    lo, hi = min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year
    if not lo <= day.year <= hi:
        raise CalendarUnknownError(
            f"{day.isoformat()}: 官方工作日历仅覆盖 {lo}-{hi} 年 (official calendar known for {lo}-{hi} only)"
        )


def last_known_day() -> dt.date:
    """The last day of the last year the official calendar knows."""
    return dt.date(max(chinese_calendar.holidays).year, 12, 31)


def is_workday(day: dt.date) -> bool:
    _check(day)
    return chinese_calendar.is_workday(day)


def is_holiday(day: dt.date) -> bool:
    """A public holiday (法定节假日 or its bridging rest days), not an ordinary weekend."""
    _check(day)
    return day in chinese_calendar.holidays


@lru_cache(maxsize=64)
def workdays_between(start: dt.date, end: dt.date) -> tuple[dt.date, ...]:
    """All working days in [start, end], in order."""
    out = []
    day = start
    while day <= end:
        if is_workday(day):
            out.append(day)
        day += dt.timedelta(days=1)
    return tuple(out)


def workday_mask(start: dt.date, end: dt.date) -> tuple[np.ndarray, np.ndarray]:
    """(dates as datetime64[D], bool mask of working days) for every day in [start, end]."""
    days = np.arange(np.datetime64(start), np.datetime64(end) + 1, dtype="datetime64[D]")
    mask = np.array([is_workday(d.astype(dt.date)) for d in days])
    return days, mask


def holiday_mask(days: np.ndarray) -> np.ndarray:
    return np.array([is_holiday(d.astype(dt.date)) for d in days])
