"""``python -m redcloud.brief [--week 2025-W50 | --date 2025-12-31] [--no-pdf]``: generate one brief
from the current published snapshot, without Spark, and print its index entry as JSON."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from redcloud import brief


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m redcloud.brief", description="每周决策参考")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--week", help="ISO week, e.g. 2025-W50")
    g.add_argument("--date", type=dt.date.fromisoformat, help="the ISO week ended on or before this date")
    ap.add_argument("--no-pdf", action="store_true", help="HTML only")
    a = ap.parse_args(argv)
    from redcloud.config import get_settings

    r = brief.generate(get_settings(), a.week, a.date, pdf=False if a.no_pdf else None)
    json.dump(r, sys.stdout, ensure_ascii=False, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
