"""The test city's lake and the helpers around it (the fixtures are in ``tests/integration/conftest.py``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from helpers import D2, free_port, make_ctx, settings_for

from redcloud.config import Settings

ROOT = Path(__file__).resolve().parents[1]
TEST_SCALE = 1500
TEST_SEED = 4242
PLANTED_PLAIN_ID = "520102198001011237"  # a full 身份证号 wrongly published in a web notice


def web_records(city: Path) -> dict[str, list[dict]]:
    """The city's web data, plus two planted problems: a notice repeated on the next page (an exact
    duplicate, as when pagination shifts during a crawl) and a notice showing a full 身份证号."""
    data = {ds: json.loads((city / "web" / f"{ds}.json").read_text(encoding="utf-8"))
            for ds in ("penalties", "enforcement", "news")}
    pen = data["penalties"]
    if pen:
        leak = dict(pen[0], notice_id="CF9999999", party_id_masked=PLANTED_PLAIN_ID)
        data["penalties"] = pen + [pen[-1], leak]
    return data


@dataclass
class WebServer:
    url: str
    data_dir: Path
    proc: subprocess.Popen


def start_web_server(data_dir: Path, log: Path, *args: str) -> WebServer:
    """The demo's web reference server on a free loopback port, serving ``data_dir``."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "redcloud.demo.web_server", "--data-dir", str(data_dir),
                             "--port", str(port), "--seed", str(TEST_SEED), *args],
                            cwd=ROOT, stdout=open(log, "wb"), stderr=subprocess.STDOUT)
    from redcloud.services import procs

    procs.wait_for_port("127.0.0.1", port, 30, "test web server", log)
    return WebServer(f"http://127.0.0.1:{port}", data_dir, proc)


@dataclass
class CityLake:
    """The main job's lake for the test city."""

    base: Path
    settings: Settings
    summary: dict          # what run_main returned for D2
    silver_d1: dict        # what the D1 silver stage returned
    bronze_d1: dict
    city: Path
    day = D2

    @property
    def root(self) -> Path:
        return Path(self.settings.paths.lake_root)

    def ctx(self, spark=None, day=D2, run_id: str | None = None):
        return make_ctx(self.settings, day, spark, run_id)


def copy_lake(city_lake: CityLake, dest: Path, **sections) -> Settings:
    """A private copy of the city lake (lake, serving snapshots, briefs, web state) under ``dest``;
    returns settings pointing there (plus any other section changes, e.g. ``rules={...}``). MLflow
    stays the city lake's (read the champions; a test that trains gives its own ``mlflow=``)."""
    for part in ("lake", "landing", "run/serving", "run/briefs", "run/web_state"):
        src = city_lake.base / part
        if src.exists():
            shutil.copytree(src, dest / part, symlinks=True)
    mlflow = sections.pop("mlflow", None) or {"tracking_uri": city_lake.settings.mlflow.tracking_uri,
                                              "artifact_root": city_lake.settings.mlflow.artifact_root}
    return settings_for(dest, city_lake.settings, mlflow=mlflow, **sections)
