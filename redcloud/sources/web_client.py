"""A polite HTTP client for the web reference data (penalties, enforcement lists, news pages).

Politeness and robustness, in the order a request meets them:

- ``robots.txt`` is fetched once per host and respected: a disallowed URL raises
  :class:`RobotsDisallowed` and is never requested. An unreachable ``robots.txt`` (5xx or network
  errors after the retries) means "disallow everything" (RFC 9309); a missing one (4xx) allows all.
- a rate limiter keeps at least ``min_interval`` seconds between the starts of two requests;
- every request has a connect and a read timeout;
- 5xx/429/408 answers, timeouts and connection errors are retried with exponential backoff
  (``backoff_base * 2**(n-1)``, capped), or after the server's ``Retry-After`` when it sends one;
  when the attempts are used up :class:`RetriesExhausted` says which URL, how often and why;
- conditional requests: a :class:`ValidatorStore` keeps ``ETag``/``Last-Modified`` per URL (a JSON
  file chosen by the caller); the client sends ``If-None-Match``/``If-Modified-Since`` and a 304
  answer means "unchanged since the stored version" (the record's body is ``None``).

The store also remembers the pagination links of list pages (the JSON ``next`` link, the news
list's ``rel="next"`` and article links), so a list page that answers 304 can still be followed.

News articles are rarely edited once published, and at one request per ``min_interval`` re-asking
every known article each day is most of a crawl (2,199 articles, 112 s, on the 300k
city). With ``article_recheck_days = n`` and the crawl's ``today``, an article the store already has
validators for is asked again on one day in ``n`` (a fixed day per URL, so the load is spread evenly
and a rerun of a date asks the same); new articles and every list page are asked on every crawl.
An edit to an old article therefore arrives within ``n`` days; ``n = 1`` asks every article daily.

Every fetch returns a :class:`FetchResult`: url, status, fetched_at (UTC), etag, last_modified, body.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import re
import threading
import time
import urllib.robotparser
import zlib
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests

USER_AGENT = "redcloud-crawler/1.0 (+https://redcloud.local/crawler)"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class WebFetchError(RuntimeError):
    """A URL could not be fetched (the message says which and why)."""

    def __init__(self, message: str, url: str, status: int | None = None):
        super().__init__(message)
        self.url = url
        self.status = status


class RobotsDisallowed(WebFetchError):
    """robots.txt forbids the URL; it was not requested."""


class RetriesExhausted(WebFetchError):
    """Every attempt failed with a retryable error (5xx, timeout, connection error)."""

    def __init__(self, message: str, url: str, attempts: int, last_error: str, status: int | None = None):
        super().__init__(message, url, status)
        self.attempts = attempts
        self.last_error = last_error


@dataclass(frozen=True)
class FetchResult:
    """One fetched URL (after retries): the final answer and when it arrived."""

    url: str
    status: int
    fetched_at: dt.datetime  # timezone-aware, UTC
    etag: str | None
    last_modified: str | None
    body: str | None  # None for 304 (unchanged)
    attempts: int = 1
    kind: str = "page"  # page | list | article (set by the pagination helpers)

    @property
    def unchanged(self) -> bool:
        return self.status == 304

    @property
    def retries(self) -> int:
        return self.attempts - 1

    def json(self):
        if self.body is None:
            raise ValueError(f"{self.url}: no body (status {self.status})")
        return json.loads(self.body)


class ValidatorStore:
    """``ETag``/``Last-Modified`` (and list-page links) per absolute URL, persisted as JSON."""

    def __init__(self, entries: dict[str, dict] | None = None, path: str | os.PathLike | None = None):
        self.entries: dict[str, dict] = {k: dict(v) for k, v in (entries or {}).items()}
        self.path = Path(path) if path else None

    @classmethod
    def load(cls, path: str | os.PathLike | None, save_to: str | os.PathLike | None = None) -> "ValidatorStore":
        """Read ``path`` (missing file: empty store); :meth:`save` writes to ``save_to`` (default ``path``)."""
        entries = {}
        if path and Path(path).exists():
            entries = json.loads(Path(path).read_text(encoding="utf-8")).get("validators", {})
        return cls(entries, save_to if save_to is not None else path)

    def get(self, url: str) -> dict:
        return self.entries.get(url, {})

    def update(self, url: str, etag: str | None, last_modified: str | None) -> None:
        if not etag and not last_modified:
            return
        e = self.entries.setdefault(url, {})
        e["etag"], e["last_modified"] = etag, last_modified

    def set_links(self, url: str, next_url: str | None, links: list[str] | None = None) -> None:
        e = self.entries.setdefault(url, {})
        e["next"] = next_url
        if links is not None:
            e["links"] = list(links)

    def links(self, url: str) -> tuple[bool, str | None, list[str]]:
        """(known, next link, item links) remembered for a list page."""
        e = self.get(url)
        return ("next" in e), e.get("next"), list(e.get("links", []))

    def save(self, path: str | os.PathLike | None = None) -> Path:
        target = Path(path) if path else self.path
        if target is None:
            raise ValueError("ValidatorStore.save: no path given")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        doc = {"version": 1, "validators": dict(sorted(self.entries.items()))}
        tmp.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, target)  # atomic: a crash never leaves half a state file
        return target


class RateLimiter:
    """At least ``min_interval`` seconds between the starts of successive requests."""

    def __init__(self, min_interval: float, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.min_interval = max(0.0, min_interval)
        self._sleep, self._clock = sleep, clock
        self._last: float | None = None
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self._clock()
            if self._last is not None and self.min_interval > 0:
                gap = self._last + self.min_interval - now
                if gap > 0:
                    self._sleep(gap)
                    now = self._clock()
            self._last = now


class _NewsListParser(HTMLParser):
    """Collects ``<a rel="next">`` and the article links of a news list page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.next_href: str | None = None
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag != "a":
            return
        a = dict(attrs)
        href = a.get("href")
        if not href:
            return
        if "next" in (a.get("rel") or "").lower().split():
            self.next_href = self.next_href or href
        else:
            self.hrefs.append(href)


_ARTICLE_PATH = re.compile(r"^/news/(?!index\.html$)[^/?#]+\.html$")


def parse_news_list(html_text: str, page_url: str) -> tuple[str | None, list[str]]:
    """(absolute next-page URL or None, absolute article URLs in page order)."""
    p = _NewsListParser()
    p.feed(html_text)
    p.close()
    nxt = urljoin(page_url, p.next_href) if p.next_href else None
    seen, articles = set(), []
    for href in p.hrefs:
        u = urljoin(page_url, href)
        if _ARTICLE_PATH.match(urlsplit(u).path) and u not in seen:
            seen.add(u)
            articles.append(u)
    return nxt, articles


def _retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); None if absent/bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return max(0.0, (when - dt.datetime.now(dt.timezone.utc)).total_seconds())


class WebClient:
    """requests.Session with timeouts, retries, rate limiting, robots.txt and conditional requests.

    ``validators``: a :class:`ValidatorStore`, or the path of its JSON file (loaded now, written by
    :meth:`save_validators`), or None (no conditional requests are remembered across clients).
    """

    def __init__(self, base_url: str, *, validators: ValidatorStore | str | os.PathLike | None = None,
                 connect_timeout: float = 3.05, read_timeout: float = 10.0, max_attempts: int = 4,
                 backoff_base: float = 0.5, backoff_max: float = 30.0, min_interval: float = 0.05,
                 user_agent: str = USER_AGENT, session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, article_recheck_days: int = 1,
                 today: dt.date | None = None):
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if article_recheck_days < 1:
            raise ValueError("article_recheck_days must be >= 1")
        self.base_url = base_url.rstrip("/") + "/"
        if isinstance(validators, ValidatorStore):
            self.validators = validators
        elif validators is not None:
            self.validators = ValidatorStore.load(validators)
        else:
            self.validators = ValidatorStore()
        self.timeout = (connect_timeout, read_timeout)
        self.max_attempts = max_attempts
        self.backoff_base, self.backoff_max = backoff_base, backoff_max
        self.user_agent = user_agent
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self._sleep = sleep
        self.limiter = RateLimiter(min_interval, sleep=sleep)
        self._robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.requests_sent = 0
        self.retries = 0
        self.skipped_by_robots: list[str] = []
        self.article_recheck_days, self.today = article_recheck_days, today
        self.not_rechecked: list[str] = []   # known articles not due today (see the module docstring)

    # -- plumbing ------------------------------------------------------------------------------

    def url(self, path_or_url: str) -> str:
        return urljoin(self.base_url, path_or_url)

    def close(self) -> None:
        self.session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def save_validators(self, path: str | os.PathLike | None = None) -> Path:
        return self.validators.save(path)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(retry_after, self.backoff_max)
        return min(self.backoff_base * (2 ** (attempt - 1)), self.backoff_max)

    def _send(self, url: str, headers: dict) -> tuple[requests.Response, int]:
        """GET with retries; returns the final non-retryable response and the attempts used."""
        last_error, last_status = "", None
        for attempt in range(1, self.max_attempts + 1):
            self.limiter.wait()
            self.requests_sent += 1
            retry_after = None
            try:
                resp = self.session.get(url, headers=headers, timeout=self.timeout, allow_redirects=True)
            except requests.Timeout as exc:
                kind = "连接超时" if isinstance(exc, requests.ConnectTimeout) else "读取超时"
                last_error, last_status = f"{kind} (timeout={self.timeout}): {exc.__class__.__name__}", None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                last_error, last_status = f"连接错误: {exc.__class__.__name__}: {exc}", None
            else:
                if resp.status_code not in RETRY_STATUSES:
                    return resp, attempt
                last_error, last_status = f"HTTP {resp.status_code}", resp.status_code
                retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
                resp.close()
            if attempt < self.max_attempts:
                self.retries += 1
                self._sleep(self._backoff(attempt, retry_after))
        raise RetriesExhausted(
            f"抓取失败：GET {url} 共尝试 {self.max_attempts} 次均失败，最后一次错误：{last_error}",
            url, self.max_attempts, last_error, last_status)

    def _robots_for(self, url: str) -> urllib.robotparser.RobotFileParser:
        parts = urlsplit(url)
        host = f"{parts.scheme}://{parts.netloc}"
        rp = self._robots.get(host)
        if rp is not None:
            return rp
        rp = urllib.robotparser.RobotFileParser(host + "/robots.txt")
        try:
            resp, _ = self._send(host + "/robots.txt", {})
        except WebFetchError:
            rp.disallow_all = True  # unreachable robots.txt: assume complete disallow (RFC 9309)
        else:
            if resp.status_code == 200:
                rp.parse(resp.text.splitlines())
            elif resp.status_code in (401, 403):
                rp.disallow_all = True
            else:  # 404 and other 4xx: no rules
                rp.allow_all = True
        self._robots[host] = rp
        return rp

    def allowed(self, url: str) -> bool:
        return self._robots_for(self.url(url)).can_fetch(self.user_agent, self.url(url))

    # -- fetching ------------------------------------------------------------------------------

    def fetch(self, path_or_url: str, *, conditional: bool = True, kind: str = "page") -> FetchResult:
        """GET one URL. 200 -> body; 304 -> body None (unchanged). Other statuses raise WebFetchError."""
        url = self.url(path_or_url)
        if not self.allowed(url):
            raise RobotsDisallowed(f"robots.txt 禁止抓取 {url}，未发送请求", url)
        headers = {}
        known = self.validators.get(url) if conditional else {}
        if known.get("etag"):
            headers["If-None-Match"] = known["etag"]
        if known.get("last_modified"):
            headers["If-Modified-Since"] = known["last_modified"]
        resp, attempts = self._send(url, headers)
        fetched_at = dt.datetime.now(dt.timezone.utc)
        status = resp.status_code
        etag = resp.headers.get("ETag") or (known.get("etag") if status == 304 else None)
        last_modified = resp.headers.get("Last-Modified") or (known.get("last_modified") if status == 304 else None)
        if status == 304:
            if not headers:
                raise WebFetchError(f"抓取异常：{url} 在非条件请求下返回 304", url, status)
            body = None
        elif 200 <= status < 300:
            resp.encoding = resp.encoding or "utf-8"
            if resp.encoding.lower() == "iso-8859-1" and "charset" not in resp.headers.get("Content-Type", ""):
                resp.encoding = "utf-8"
            body = resp.text
        else:
            resp.close()
            raise WebFetchError(f"抓取失败：GET {url} 返回 HTTP {status}", url, status)
        self.validators.update(url, etag, last_modified)
        return FetchResult(url, status, fetched_at, etag, last_modified, body, attempts, kind)

    def _fetch_list_page(self, url: str) -> FetchResult:
        """A list page; on 304 without remembered links, fetch it again unconditionally."""
        r = self.fetch(url, kind="list")
        if r.unchanged and not self.validators.links(r.url)[0]:
            r = self.fetch(url, conditional=False, kind="list")
        return r

    def iter_json_pages(self, path: str, page_size: int | None = None, max_pages: int = 10_000) -> Iterator[FetchResult]:
        """Every page of a paginated JSON API, following the ``next`` link (304 pages included)."""
        url: str | None = self.url(f"{path}?page=1&page_size={page_size}" if page_size else path)
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= max_pages:
                raise WebFetchError(f"分页异常：{path} 的 next 链接出现循环或超过 {max_pages} 页（{url}）", url)
            seen.add(url)
            r = self._fetch_list_page(url)
            if r.unchanged:
                _, nxt, _ = self.validators.links(r.url)
            else:
                try:
                    doc = r.json()
                except ValueError as exc:
                    raise WebFetchError(f"解析失败：{r.url} 不是有效的 JSON（{exc}）", r.url, r.status) from exc
                nxt = self.url(doc["next"]) if doc.get("next") else None
                self.validators.set_links(r.url, nxt)
            yield r
            url = nxt

    def iter_news(self, path: str = "/news/", page_size: int | None = None,
                  max_pages: int = 10_000) -> Iterator[FetchResult]:
        """News list pages (kind ``list``, following rel="next") each followed by its articles (kind ``article``)."""
        url: str | None = self.url(f"{path}?page=1&page_size={page_size}" if page_size else path)
        seen: set[str] = set()
        while url:
            if url in seen or len(seen) >= max_pages:
                raise WebFetchError(f"分页异常：新闻列表的下一页链接出现循环或超过 {max_pages} 页（{url}）", url)
            seen.add(url)
            r = self._fetch_list_page(url)
            if r.unchanged:
                _, nxt, articles = self.validators.links(r.url)
            else:
                nxt, articles = parse_news_list(r.body or "", r.url)
                self.validators.set_links(r.url, nxt, articles)
            yield r
            for a in articles:
                if not self.allowed(a):  # robots.txt wins over a list page's links
                    self.skipped_by_robots.append(a)
                    continue
                if not self.article_due(a):
                    self.not_rechecked.append(a)
                    continue
                yield self.fetch(a, kind="article")
            url = nxt

    def article_due(self, url: str) -> bool:
        """Whether the crawl asks for this article today: always when the store has no validators for
        it (new) or ``article_recheck_days`` is 1; otherwise on the URL's day of the cycle."""
        n = self.article_recheck_days
        known = self.validators.get(url)
        if n == 1 or self.today is None or not (known.get("etag") or known.get("last_modified")):
            return True
        return zlib.crc32(urlsplit(url).path.encode("utf-8")) % n == self.today.toordinal() % n


__all__ = ["FetchResult", "RateLimiter", "RetriesExhausted", "RobotsDisallowed", "ValidatorStore", "WebClient",
           "WebFetchError", "parse_news_list", "USER_AGENT"]
