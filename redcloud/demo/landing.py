"""Demo: drop the synthetic city's 数据铁笼 exports into the landing folder, as the export job would.

The landing folder is loaded by the bronze stage, each file exactly once by content hash
(:mod:`redcloud.stages.bronze_ironcage`).
"""

from __future__ import annotations

import shutil
from pathlib import Path


def drop_exports(city: Path, landing: Path) -> int:
    """Copy the city's export files into the landing folder (as the export job would). Returns new files."""
    landing.mkdir(parents=True, exist_ok=True)
    n = 0
    for src in sorted((city / "ironcage").iterdir()):
        dst = landing / src.name
        if dst.exists() and dst.stat().st_size == src.stat().st_size:
            continue
        tmp = dst.with_name(dst.name + ".part")
        shutil.copyfile(src, tmp)
        tmp.rename(dst)
        n += 1
    return n
