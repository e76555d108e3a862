"""The 数据铁笼 landing folder: export files are dropped here and loaded exactly once (by content hash)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
