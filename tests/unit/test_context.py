"""The run context: tables side by side keep their order and their errors."""

from __future__ import annotations

import threading
import time

import pytest
from helpers import D2, make_ctx


def test_map_tables_runs_side_by_side_in_order(settings):
    ctx = make_ctx(settings.replace(spark={"table_threads": 2}), D2)
    seen = set()

    def work(i: int) -> int:
        seen.add(threading.current_thread().name)
        time.sleep(0.05 * (3 - i % 3))       # later items finish first
        return i * 10

    assert ctx.map_tables(work, range(6)) == [0, 10, 20, 30, 40, 50]
    assert len(seen) == 2


def test_map_tables_raises_the_error_and_one_thread_runs_in_line(settings):
    ctx = make_ctx(settings.replace(spark={"table_threads": 2}), D2)

    def work(i: int) -> int:
        if i == 2:
            raise ValueError("table 2 broke")
        return i

    with pytest.raises(ValueError, match="table 2 broke"):
        ctx.map_tables(work, range(4))
    serial = make_ctx(settings.replace(spark={"table_threads": 1}), D2)
    assert serial.map_tables(lambda i: threading.current_thread().name, range(2)) == ["MainThread"] * 2
