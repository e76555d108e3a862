"""Each model's analyst notebook runs top to bottom (nbclient) against the scores the models stage wrote."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_one_notebook_per_model():
    assert {p.stem for p in NOTEBOOKS} == {"cadre_evaluation", "branch_innovation", "member_vitality",
                                           "integrity_portrait"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_executes(path, city_lake, monkeypatch):
    # the kernel is a child process: it finds the test lake and MLflow store through the environment
    monkeypatch.setenv("REDCLOUD_PATHS__LAKE_ROOT", str(city_lake.root))
    monkeypatch.setenv("REDCLOUD_MLFLOW__TRACKING_URI", city_lake.settings.mlflow.tracking_uri)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    assert "版本" in text  # the model name and version read from the scores
