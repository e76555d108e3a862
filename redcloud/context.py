"""The run context every stage receives: logical date, run id, settings, rules, lake, Spark, progress.

A stage is a function ``run(ctx) -> dict`` (see :mod:`redcloud.stages.registry`). It reads the
configuration from ``ctx.settings`` and the business rules from ``ctx.rules``, reads and writes the
lake through ``ctx.lake``, and reports what it did through ``ctx.progress``; it never reaches for
process-wide settings. Tests build a context on a small lake with :meth:`RunContext.create`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

from redcloud.config import Settings
from redcloud.lake import Lake
from redcloud.progress import Progress
from redcloud.rules import Rules

T, R = TypeVar("T"), TypeVar("R")


def new_run_id(day: dt.date) -> str:
    return f"manual__{day.isoformat()}__{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}"


@dataclass
class RunContext:
    day: dt.date                 # the logical (business) date of the run
    run_id: str                  # stamped on what the run publishes (Airflow passes its own)
    settings: Settings
    progress: Progress = field(default_factory=Progress.quiet)
    gold_tables: frozenset[str] | None = None   # rebuild only these gold tables (None: all of them)
    _spark: Any = field(default=None, repr=False)

    @classmethod
    def create(cls, day: dt.date | str, settings: Settings, run_id: str | None = None,
               progress: Progress | None = None, spark=None,
               gold_tables: Iterable[str] | None = None) -> "RunContext":
        day = dt.date.fromisoformat(day) if isinstance(day, str) else day
        return cls(day=day, run_id=run_id or new_run_id(day), settings=settings,
                   progress=progress or Progress.quiet(), _spark=spark,
                   gold_tables=frozenset(gold_tables) if gold_tables else None)

    @property
    def rules(self) -> Rules:
        return self.settings.rules

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.settings.paths.lake_root)

    @property
    def spark(self):
        """The Spark session (created on first use, so stages that do not need it never start a JVM)."""
        if self._spark is None:
            from redcloud.spark import get_spark

            self._spark = get_spark(self.settings)
        return self._spark

    def map_tables(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(item) for item in items]`` with ``[spark] table_threads`` tables written side by side.

        A small table's write is mostly driver-side waiting (planning, the Delta commit), so two
        at a time keep both cores busy; results come back in the order of ``items`` and the first
        error is raised once the others have finished."""
        items = list(items)
        threads = max(1, min(self.settings.spark.table_threads, len(items)))
        if threads == 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(threads, thread_name_prefix="redcloud-table") as pool:
            return list(pool.map(fn, items))

    def with_settings(self, settings: Settings) -> "RunContext":
        """The same run on other settings (e.g. another lake): a new context, the Spark session kept."""
        return RunContext(self.day, self.run_id, settings, self.progress, self._spark)
