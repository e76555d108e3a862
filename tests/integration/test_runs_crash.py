"""A silver run killed between entities leaves a visibly incomplete layer, and the rerun completes it.

Two small lakes get the same bronze tables from the city lake (organisations, members, their status
changes, cadres and posts). On lake B the silver stage runs in a separate process that is killed
(SIGKILL, as the OOM killer or a lost machine would) right after its first entity's commit: ops/runs
still says ``running``, some silver tables are missing, and publish refuses to build a snapshot.
Rerunning silver completes the layer; it is then identical to lake A's uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import D1, make_ctx, settings_for

from redcloud import pipeline, runs

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BRONZE = ("org__organizations", "org__members", "org__member_status_changes", "cadre__cadres", "cadre__cadre_posts")
SILVER_RUN = r"""
import sys
from redcloud import pipeline
from redcloud.config import get_settings
from redcloud.context import RunContext
pipeline.run_stage(RunContext.create(sys.argv[1], get_settings(), run_id="to_be_killed"), "silver")
print("FINISHED")
"""


def _small_lake(city_lake, base: Path):
    settings = settings_for(base, city_lake.settings)
    for name in BRONZE:
        shutil.copytree(city_lake.root / "bronze" / name, Path(settings.paths.lake_root) / "bronze" / name)
    return settings


def _content(spark, lake, layer: str, name: str) -> list[str]:
    df = lake.read(spark, layer, name)
    cols = sorted(c for c in df.columns if c != "_loaded_at")
    return sorted(repr(tuple(r)) for r in df.select(*cols).collect())


def test_killed_silver_is_visible_blocks_publish_and_the_rerun_completes_it(city_lake, spark, tmp_path):
    a = make_ctx(_small_lake(city_lake, tmp_path / "a"), D1, spark, "uninterrupted")
    b = make_ctx(_small_lake(city_lake, tmp_path / "b"), D1, spark, "rerun")
    first = Path(b.lake.path("silver", "organizations")) / "_delta_log" / f"{0:020d}.json"
    env = {**os.environ, "REDCLOUD_PATHS__RUN_DIR": b.settings.paths.run_dir,
           "REDCLOUD_PATHS__LAKE_ROOT": b.settings.paths.lake_root,
           "REDCLOUD_SPARK__TABLE_THREADS": "1"}    # one entity after another: the kill falls between two
    proc = subprocess.Popen([sys.executable, "-c", SILVER_RUN, D1.isoformat()], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not first.exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "silver never committed its first entity"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    out, _ = proc.communicate(timeout=60)
    assert "FINISHED" not in out

    # the half-built layer is visible ...
    assert runs.latest(b.lake, D1)["silver"]["state"] == runs.RUNNING
    built = b.lake.tables("silver")
    assert "organizations" in built and "persons" not in built and "cadre_post_history" not in built, built
    # ... and nothing is published past it
    with pytest.raises(runs.IncompleteLayer, match="silver: running"):
        pipeline.run_stage(b, "publish")
    assert not (Path(b.settings.serving.duckdb_dir) / "current.duckdb").exists()

    # the rerun completes it, identical to a run that was never interrupted
    pipeline.run_stage(b, "silver")
    pipeline.run_stage(a, "silver")
    assert runs.latest(b.lake, D1)["silver"]["state"] == runs.SUCCEEDED
    runs.check_complete(b.lake, D1, ["silver"])
    tables = a.lake.tables("silver")
    assert b.lake.tables("silver") == tables and {"members", "persons", "member_status_history"} <= set(tables)
    for layer in ("silver", "quarantine"):
        for name in a.lake.tables(layer):
            assert _content(spark, b.lake, layer, name) == _content(spark, a.lake, layer, name), f"{layer}/{name}"
