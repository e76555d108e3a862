"""Progress of the main job: plain lines without escape codes in a log, a live bar in a terminal."""

from __future__ import annotations

import io
import re

import pytest

from redcloud.progress import Progress

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _job(p: Progress) -> None:
    with p.job("main job 2025-12-31", ["bronze", "silver"]):
        with p.stage("bronze", "采集入湖"):
            with p.stage("bronze_orgdb", "组织数据库采集"):
                p.table("bronze/org__members", 1506, 14.8, "source 1,506")
        with pytest.raises(RuntimeError), p.stage("silver", "清洗整合"):
            raise RuntimeError("boom")


def test_a_log_gets_plain_timed_lines_per_stage_and_table():
    out = io.StringIO()
    _job(Progress(out))
    text = out.getvalue()
    assert not ANSI.search(text)
    lines = text.splitlines()
    assert all(re.match(r"^\[\d\d:\d\d:\d\d\] ", ln) for ln in lines), lines
    assert any("▶ bronze · 采集入湖" in ln for ln in lines)
    assert any("bronze/org__members" in ln and "1,506" in ln and "14.8 s" in ln for ln in lines)
    assert any(re.search(r"✔ bronze_orgdb done in [\d.]+ s", ln) for ln in lines)
    assert any(re.search(r"✔ bronze done in [\d.]+ s", ln) for ln in lines)   # the outer stage keeps its own clock
    assert any("✘ silver FAILED" in ln for ln in lines)


def test_a_terminal_gets_a_live_bar_and_quiet_gets_nothing():
    out = io.StringIO()
    _job(Progress(out, live=True))
    assert "bronze/org__members" in out.getvalue()
    quiet = io.StringIO()
    _job(Progress(quiet, enabled=False))
    assert quiet.getvalue() == ""
