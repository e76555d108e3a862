"""Headless Chromium (the system's /usr/bin/chromium, driven by Playwright) for checks and screenshots.

Never runs ``playwright install``: it launches the Chromium the machine image provides.

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1600, "height": 1200}, locale="zh-CN")
        page.goto(url)
        screenshot(page, ".run/artifacts/x.png")
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str:
    env = os.environ.get("REDCLOUD_CHROMIUM")
    for p in ([env] if env else []) + list(CHROMIUM_CANDIDATES):
        if p and Path(p).exists():
            return p
    found = shutil.which("chromium")
    if found:
        return found
    raise RuntimeError("Chromium not found: install the Debian package 'chromium' (or set REDCLOUD_CHROMIUM)")


@contextlib.contextmanager
def chromium(headless: bool = True):
    """A Playwright Browser on the system Chromium; closed (and Playwright stopped) on exit."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=ARGS, headless=headless)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        pw.stop()


def screenshot(page, path: str | Path, full_page: bool = True) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(p), full_page=full_page)
    return p
