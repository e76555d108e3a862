"""Progress of the main job: per stage and per table, with rows and elapsed time.

In a terminal it is a live bar (stages done / to do, the current step and its elapsed time) with one
line per table printed above it; anywhere else (a pipe, a log file, an Airflow task log) it is plain
lines, each prefixed with the time elapsed since the run started, without escape codes. Stages report through ``ctx.progress``; a context made for a
test or a library call gets :meth:`Progress.quiet`, which only logs at DEBUG.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from typing import IO

log = logging.getLogger("redcloud.progress")


class Progress:
    def __init__(self, stream: IO[str] | None = None, *, enabled: bool = True, live: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = enabled and (self.stream.isatty() if live is None else live)
        self._bar = None
        self._task = None
        self._stages: list[str] = []      # nested: a composite stage and its running part
        self._t0 = time.perf_counter()

    @classmethod
    def quiet(cls) -> "Progress":
        return cls(enabled=False)

    @classmethod
    def console(cls) -> "Progress":
        """Live bar on a terminal's stderr, plain lines otherwise."""
        return cls(sys.stderr)

    # -- output -----------------------------------------------------------------------------------
    def _line(self, text: str) -> None:
        log.debug(text)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            secs = int(time.perf_counter() - self._t0)
            print(f"[{secs // 3600:02d}:{secs // 60 % 60:02d}:{secs % 60:02d}] {text}", file=self.stream, flush=True)

    def _status(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    # -- the job ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def job(self, title: str, stages: list[str]):
        """The whole run: a bar over ``stages`` in a terminal."""
        t0 = time.perf_counter()
        self._line(f"{title}: {' → '.join(stages)}")
        if self.live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=Console(file=self.stream), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(title, total=len(stages))
        try:
            yield self
        finally:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None
            self._line(f"{title}: finished in {time.perf_counter() - t0:.0f} s")

    @property
    def _stage(self) -> str:
        return self._stages[-1] if self._stages else ""

    @contextlib.contextmanager
    def stage(self, name: str, title: str = ""):
        """One stage (or a part of one): a start line, an end line with its elapsed time (or the failure)."""
        t0 = time.perf_counter()
        self._stages.append(name)
        self._line(f"▶ {name}{f' · {title}' if title else ''}")
        self._status(f"{name} …")
        ok = False
        try:
            yield self
            ok = True
        finally:
            secs = time.perf_counter() - t0
            self._stages.pop()
            self._line(f"{'✔' if ok else '✘'} {name} {'done' if ok else 'FAILED'} in {secs:.1f} s")
            if self._bar is not None and ok and not self._stages:   # the job's bar counts top-level stages
                self._bar.advance(self._task)

    @contextlib.contextmanager
    def step(self, what: str):
        """A step inside a stage (shown live in a terminal; a line when it takes a while)."""
        t0 = time.perf_counter()
        self._status(f"{self._stage} · {what}")
        yield self
        secs = time.perf_counter() - t0
        if secs >= 5:
            self._line(f"  {what} ({secs:.1f} s)")

    def table(self, table: str, rows: int | None = None, seconds: float | None = None, note: str = "") -> None:
        """A table written: name, rows after the write, seconds."""
        parts = [f"  {table:<40s}"]
        if rows is not None:
            parts.append(f"rows {rows:>10,}")
        if seconds is not None:
            parts.append(f"{seconds:6.1f} s")
        if note:
            parts.append(note)
        self._line("  ".join(parts))
        self._status(f"{self._stage} · {table}")

    def note(self, text: str) -> None:
        self._line(f"  {text}")
