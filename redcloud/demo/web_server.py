"""A real local HTTP server for the web reference data (penalties, enforcement lists, news pages).

Behaves like the public sites the platform crawls: paginated JSON APIs and HTML news pages,
``ETag``/``Last-Modified`` with conditional requests (304), a ``robots.txt`` that disallows
``/private/``, and occasional 503s and slow answers. Faults are deterministic: whether the n-th
request for a URL fails depends only on the URL, n and the seed. A fault plan (JSON: URL -> list of
statuses for successive requests) forces exact behaviour for tests. ``/_stats`` reports how many
times each URL was requested and answered with which status.

Run: ``python -m redcloud.demo.web_server --data-dir DIR --port 18080``
"""

from __future__ import annotations

import argparse
import email.utils
import hashlib
import html
import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DATASETS = ("penalties", "enforcement", "news")
ROBOTS = "User-agent: *\nDisallow: /private/\n"


class WebData:
    """Loads the city's web/*.json lazily and reloads when the files change."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self._cache: dict[str, tuple[float, list[dict]]] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> list[dict]:
        path = self.data_dir / f"{name}.json"
        if not path.exists():
            return []
        mtime = path.stat().st_mtime
        with self._lock:
            hit = self._cache.get(name)
            if hit and hit[0] == mtime:
                return hit[1]
            rows = json.loads(path.read_text(encoding="utf-8"))
            self._cache[name] = (mtime, rows)
            return rows

    def last_modified(self) -> float:
        stamps = [(self.data_dir / f"{n}.json").stat().st_mtime for n in DATASETS if (self.data_dir / f"{n}.json").exists()]
        return max(stamps) if stamps else 0.0


class Faults:
    def __init__(self, seed: int, fault_rate: float, slow_rate: float, slow_seconds: float, plan: dict | None):
        self.seed, self.fault_rate, self.slow_rate, self.slow_seconds = seed, fault_rate, slow_rate, slow_seconds
        self.plan = plan or {}
        self.counts: dict[str, int] = defaultdict(int)
        self.stats: dict[str, list[int]] = defaultdict(list)
        self.lock = threading.Lock()

    def _u(self, url: str, n: int, salt: str) -> float:
        h = hashlib.sha256(f"{self.seed}|{salt}|{url}|{n}".encode()).digest()
        return int.from_bytes(h[:8], "big") / 2**64

    def decide(self, url: str) -> tuple[int | None, float]:
        """(forced status or None, delay seconds) for the next request of url."""
        with self.lock:
            n = self.counts[url]
            self.counts[url] += 1
        if url in self.plan:
            seq = self.plan[url]
            return (seq[n] if n < len(seq) else None), 0.0
        if url.startswith(("/robots.txt", "/_stats")):
            return None, 0.0
        # at most two failures in a row for one URL, so a client with retries always gets through
        if n < 2 and self._u(url, n, "fail") < self.fault_rate:
            return 503, 0.0
        delay = self.slow_seconds if self._u(url, n, "slow") < self.slow_rate else 0.0
        return None, delay

    def record(self, url: str, status: int) -> None:
        with self.lock:
            self.stats[url].append(status)


def make_handler(data: WebData, faults: Faults):
    class Handler(BaseHTTPRequestHandler):
        server_version = "redcloud-web/1"
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *args):  # quiet; /_stats has the numbers
            pass

        def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            faults.record(self.path, status)

        def do_HEAD(self):
            self.do_GET()

        def do_GET(self):
            url = self.path
            parts = urlsplit(url)
            if parts.path == "/_stats":
                with faults.lock:
                    body = json.dumps(dict(faults.stats)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            forced, delay = faults.decide(url)
            if delay:
                time.sleep(delay)
            if forced and forced >= 400:
                self._send(forced, json.dumps({"error": "服务暂时不可用"}, ensure_ascii=False).encode(),
                           "application/json; charset=utf-8", {"Retry-After": "0"})
                return
            if parts.path == "/robots.txt":
                self._send(200, ROBOTS.encode(), "text/plain; charset=utf-8")
                return
            body, ctype = self._render(parts.path, parse_qs(parts.query))
            if body is None:
                self._send(404, "未找到".encode(), "text/plain; charset=utf-8")
                return
            etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
            lm = data.last_modified()
            headers = {"ETag": etag, "Last-Modified": email.utils.formatdate(lm, usegmt=True),
                       "Cache-Control": "no-cache"}
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            not_modified = inm == etag if inm else False
            if not inm and ims:
                try:
                    not_modified = email.utils.parsedate_to_datetime(ims).timestamp() >= int(lm)
                except (TypeError, ValueError):
                    not_modified = False
            if not_modified:
                self._send(304, b"", ctype, headers)
                return
            self._send(200, body, ctype, headers)

        def _render(self, path: str, q: dict) -> tuple[bytes | None, str]:
            page = max(1, int(q.get("page", ["1"])[0] or 1))
            size = min(200, max(1, int(q.get("page_size", ["50"])[0] or 50)))
            if path in ("/api/penalties", "/api/enforcement"):
                rows = data.get(path.rsplit("/", 1)[1])
                items = rows[(page - 1) * size: page * size]
                more = page * size < len(rows)
                doc = dict(items=items, page=page, page_size=size, total=len(rows),
                           next=f"{path}?page={page + 1}&page_size={size}" if more else None)
                return json.dumps(doc, ensure_ascii=False).encode(), "application/json; charset=utf-8"
            if path in ("/news/", "/news/index.html"):
                rows = data.get("news")
                items = rows[(page - 1) * size: page * size]
                links = "\n".join(f'<li><a href="/news/{r["news_id"]}.html">{html.escape(r["title"])}</a>'
                                  f' <span class="date">{r["published_date"]}</span></li>' for r in items)
                nxt = (f'<a rel="next" href="/news/?page={page + 1}&amp;page_size={size}">下一页</a>'
                       if page * size < len(rows) else "")
                return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>新闻列表 第{page}页</title>'
                        f"</head><body><ul>{links}</ul>{nxt}</body></html>").encode(), "text/html; charset=utf-8"
            if path.startswith("/news/") and path.endswith(".html"):
                nid = path[len("/news/"):-len(".html")]
                for r in data.get("news"):
                    if r["news_id"] == nid:
                        return (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
                                f'<title>{html.escape(r["title"])}</title></head><body><article>'
                                f'<h1>{html.escape(r["title"])}</h1><time>{r["published_date"]}</time>'
                                f'<p>{html.escape(r["body"])}</p></article></body></html>').encode(), "text/html; charset=utf-8"
                return None, ""
            if path.startswith("/private/"):
                return "内部资料，禁止抓取".encode(), "text/plain; charset=utf-8"
            return None, ""

    return Handler


def serve(data_dir: Path, host: str, port: int, seed: int = 0, fault_rate: float = 0.05, slow_rate: float = 0.05,
          slow_seconds: float = 1.5, plan: dict | None = None) -> ThreadingHTTPServer:
    faults = Faults(seed, fault_rate, slow_rate, slow_seconds, plan)
    httpd = ThreadingHTTPServer((host, port), make_handler(WebData(data_dir), faults))
    httpd.daemon_threads = True
    return httpd


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=18080)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fault-rate", type=float, default=0.05)
    ap.add_argument("--slow-rate", type=float, default=0.05)
    ap.add_argument("--slow-seconds", type=float, default=1.5)
    ap.add_argument("--fault-plan", type=Path)
    a = ap.parse_args(argv)
    plan = json.loads(a.fault_plan.read_text()) if a.fault_plan else None
    httpd = serve(a.data_dir, a.host, a.port, a.seed, a.fault_rate, a.slow_rate, a.slow_seconds, plan)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
