"""HTML -> PDF (and PNG screenshots) with the system's headless Chromium, driven by playwright."""

from __future__ import annotations

import contextlib
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


@contextlib.contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


def html_to_pdf(html: Path, pdf: Path, footer: str) -> int:
    """Print ``html`` to an A4 PDF (written aside, then renamed); returns the byte size."""
    tmp = pdf.with_suffix(".pdf.tmp")
    with browser() as b:
        page = b.new_page()
        page.goto(html.resolve().as_uri(), wait_until="load")
        page.emulate_media(media="print")
        page.pdf(path=str(tmp), format="A4", print_background=True, display_header_footer=True,
                 header_template="<span></span>",
                 footer_template=('<div style="width:100%;font-size:7px;color:#888;text-align:center;'
                                  'font-family:\'Noto Sans CJK SC\'">' + footer +
                                  ' · 第 <span class="pageNumber"></span> / <span class="totalPages"></span> 页</div>'),
                 margin={"top": "14mm", "bottom": "14mm", "left": "14mm", "right": "14mm"})
    tmp.replace(pdf)
    return pdf.stat().st_size
