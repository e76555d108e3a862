"""ops/runs: each stage's last state per date; a stage left running or failed blocks publishing."""

from __future__ import annotations

import pytest
from helpers import D1, D2

from redcloud import runs
from redcloud.lake import Lake


def test_latest_state_per_stage_and_the_publish_check(tmp_path):
    lake = Lake(tmp_path / "lake")
    runs.check_complete(lake, D2, ["silver"])                  # nothing known yet: nothing to refuse
    runs.record(lake, D2, "bronze", "r1", runs.RUNNING)
    runs.record(lake, D2, "bronze", "r1", runs.SUCCEEDED, 3.0)
    runs.record(lake, D2, "silver", "r1", runs.RUNNING)        # ... and the process died here
    runs.record(lake, D1, "silver", "r0", runs.SUCCEEDED, 2.0)
    last = runs.latest(lake, D2)
    assert {k: v["state"] for k, v in last.items()} == {"bronze": "succeeded", "silver": "running"}
    assert [r["stage"] for r in runs.incomplete(lake, D2, ["bronze", "silver", "gold"])] == ["silver"]
    with pytest.raises(runs.IncompleteLayer, match=r"silver: running since .* \(run r1, pid \d+"):
        runs.check_complete(lake, D2, ["bronze", "silver"])
    runs.check_complete(lake, D1, ["bronze", "silver"])        # the other date is complete
    runs.record(lake, D2, "silver", "r2", runs.FAILED, 1.0, "GateFailed: 质量闸门未通过")
    with pytest.raises(runs.IncompleteLayer, match="GateFailed"):
        runs.check_complete(lake, D2, ["silver"])
    runs.record(lake, D2, "silver", "r3", runs.RUNNING)
    runs.record(lake, D2, "silver", "r3", runs.SUCCEEDED, 4.0)  # the rerun completes the layer
    runs.check_complete(lake, D2, ["bronze", "silver"])
    assert len(lake.pandas("ops", "runs")) == 7                 # append-only: the history of every run
