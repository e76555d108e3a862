"""Bronze ingest of the web reference data: penalties, enforcement lists and news pages.

One run for a logical date crawls the three datasets with :class:`~redcloud.sources.web_client.WebClient`
and writes, each as the date's partition (``replaceWhere``, so reruns replace what the date wrote):

- ``bronze/web__raw_pages``: every page requested (list pages, API pages and articles) with url,
  status, fetched_at, etag, last_modified, body (null for 304) and dataset;
- ``bronze/web__penalties``, ``bronze/web__enforcement``, ``bronze/web__news``: the parsed records,
  every field a string, plus ``_url`` and ``_fetched_at`` (provenance) and, for the JSON APIs,
  ``_extra`` (JSON of any field the schema does not know yet, so nothing is lost).

All tables carry the standard bronze load metadata. ``_row_hash`` covers the data columns only (not
``_url``/``_fetched_at``), so it is stable across reruns and useful for change detection.

Conditional requests and rerun idempotency: the client sends the ETag/Last-Modified validators from
the previous logical date, and a page that answers 304 contributes a raw-page row with a null body
and no records. The validators a date starts from are frozen at its first run
(``state_dir/validators-<date>.base.json``, copied from the latest earlier date's
``validators-<date>.json``), so rerunning a date sends the same conditional requests and gives the
same bronze content (apart from the wall-clock ``_loaded_at``/``_fetched_at``/``fetched_at``).
Delete a date's ``.base.json`` to make its next run start from the latest earlier state again.
A news article the state already knows is asked again on one day in ``[sources]
web_article_recheck_days`` (its fixed day of the cycle, so a rerun asks the same; new articles and
list pages on every run): the politeness interval per request made re-asking every article each day
most of the daily bronze stage at 300k members. The news row of the result counts the articles
left for another day (``articles_not_rechecked``).
The crawl completes before anything is written: a page that fails after the retries fails the run
and leaves bronze and the validator state as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

from redcloud.context import RunContext
from redcloud.lake import DeltaDataSet
from redcloud.sources.web_client import FetchResult, ValidatorStore, WebClient, WebFetchError
from redcloud.stages import reconciliation

DATASETS = ("penalties", "enforcement", "news")
RAW_TABLE = "web__raw_pages"
PAGE_SIZE = 100
FIELDS: dict[str, list[str]] = {
    "penalties": ["notice_id", "title", "party_name", "party_id_masked", "region", "reason", "amount_yuan",
                  "authority", "decision_date"],
    "enforcement": ["case_no", "name", "id_masked", "court", "obligation", "amount_yuan", "publish_date"],
    "news": ["news_id", "title", "published_date", "body"],
}
JSON_APIS = {"penalties": "/api/penalties", "enforcement": "/api/enforcement"}
RAW_COLUMNS = ["url", "status", "fetched_at", "etag", "last_modified", "body", "dataset"]
RAW_DATA_COLUMNS = ["url", "status", "etag", "last_modified", "body", "dataset"]  # hashed (not fetched_at)
_STATE_FILE = re.compile(r"^validators-(\d{4}-\d{2}-\d{2})\.json$")


# -- schemas ---------------------------------------------------------------------------------------

def data_columns(dataset: str) -> list[str]:
    return FIELDS[dataset] + (["_extra"] if dataset in JSON_APIS else [])


def record_schema(dataset: str):
    from pyspark.sql.types import StringType, StructField, StructType, TimestampType

    return StructType([StructField(c, StringType()) for c in data_columns(dataset)]
                      + [StructField("_url", StringType()), StructField("_fetched_at", TimestampType())])


def raw_schema():
    from pyspark.sql.types import IntegerType, StringType, StructField, StructType, TimestampType

    return StructType([StructField("url", StringType()), StructField("status", IntegerType()),
                       StructField("fetched_at", TimestampType()), StructField("etag", StringType()),
                       StructField("last_modified", StringType()), StructField("body", StringType()),
                       StructField("dataset", StringType())])


# -- parsing (pure Python) -------------------------------------------------------------------------

def _as_text(v) -> str | None:
    if v is None or isinstance(v, str):
        return v
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def parse_json_page(dataset: str, page: FetchResult) -> list[tuple]:
    """Records of one JSON API page as tuples in :func:`record_schema` order (numbers kept verbatim)."""
    try:
        doc = json.loads(page.body, parse_float=str, parse_int=str, parse_constant=str)
    except ValueError as exc:
        raise WebFetchError(f"解析失败：{page.url} 不是有效的 JSON（{exc}）", page.url, page.status) from exc
    items = doc.get("items") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise WebFetchError(f"解析失败：{page.url} 缺少 items 列表", page.url, page.status)
    fields = FIELDS[dataset]
    rows = []
    for item in items:
        if not isinstance(item, dict):
            item = {"_value": item}
        extra = {k: v for k, v in item.items() if k not in fields}
        rows.append(tuple(_as_text(item.get(f)) for f in fields)
                    + (json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None,
                       page.url, page.fetched_at))
    return rows


class _ArticleParser(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: dict[str, list[str]] = {"title": [], "h1": [], "time": [], "p": []}
        self._p: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "p":
            self._p = []

    def handle_endtag(self, tag):
        if tag == "p" and self._p is not None:
            self.text["p"].append("".join(self._p).strip())
            self._p = None
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass

    def handle_data(self, data):
        if self._p is not None:
            self._p.append(data)
        elif self.stack and self.stack[-1] in ("title", "h1", "time"):
            self.text[self.stack[-1]].append(data)


def parse_article(page: FetchResult) -> tuple:
    """One news article page -> a tuple in :func:`record_schema` ("news") order."""
    p = _ArticleParser()
    p.feed(page.body or "")
    p.close()

    def first(*keys):
        for k in keys:
            t = "".join(p.text[k]).strip()
            if t:
                return t
        return None

    name = urlsplit(page.url).path.rsplit("/", 1)[-1]
    news_id = name[:-len(".html")] if name.endswith(".html") else name
    body = "\n".join(t for t in p.text["p"] if t) or None
    return (news_id, first("h1", "title"), first("time"), body, page.url, page.fetched_at)


# -- validator state per logical date -------------------------------------------------------------

def state_paths(state_dir: Path, day: dt.date) -> tuple[Path, Path]:
    """(the state this date starts from, the state this date leaves for later dates)."""
    return state_dir / f"validators-{day.isoformat()}.base.json", state_dir / f"validators-{day.isoformat()}.json"


def base_state(state_dir: Path, day: dt.date) -> ValidatorStore:
    """Validators as they were before ``day``'s first run (frozen on that first run)."""
    base, _ = state_paths(state_dir, day)
    if base.exists():
        return ValidatorStore.load(base)
    earlier = []
    if state_dir.exists():
        for f in state_dir.iterdir():
            m = _STATE_FILE.match(f.name)
            if m and dt.date.fromisoformat(m.group(1)) < day:
                earlier.append((m.group(1), f))
    store = ValidatorStore.load(max(earlier)[1]) if earlier else ValidatorStore()
    store.save(base)
    return store


# -- the stage ------------------------------------------------------------------------------------

def crawl(client: WebClient, page_size: int = PAGE_SIZE) -> dict[str, list[FetchResult]]:
    """Every page of the three datasets (in crawl order)."""
    pages = {ds: list(client.iter_json_pages(path, page_size=page_size)) for ds, path in JSON_APIS.items()}
    pages["news"] = list(client.iter_news(page_size=page_size))
    return pages


def run(ctx: RunContext, base_url: str | None = None, state_dir: str | None = None, *,
        page_size: int = PAGE_SIZE, client_options: dict | None = None) -> dict:
    """Crawl penalties, enforcement and news for the logical date into bronze.

    Returns ``tables``: one dict per dataset: ``source``, ``table``, ``pages_fetched`` (every page
    requested, 304s included), ``pages_unchanged`` (the 304s), ``records`` (parsed rows written for
    the date) and ``retries`` (extra attempts after 5xx/timeouts). ``client_options`` go to
    :class:`WebClient` (timeouts, attempts, backoff, rate limit).
    """
    from pyspark.sql import functions as F

    from spark_jobs import bronze as B

    spark, lake, day, s = ctx.spark, ctx.lake, ctx.day, ctx.settings
    t0 = time.perf_counter()
    base_url = base_url or s.sources.web_base_url
    state = Path(state_dir or (Path(s.paths.run_dir) / "web_state"))
    store = base_state(state, day)
    loaded_at = dt.datetime.now().replace(microsecond=0)

    options = {"article_recheck_days": s.sources.web_article_recheck_days, "today": day, **(client_options or {})}
    with WebClient(base_url, validators=store, **options) as client:
        pages = crawl(client, page_size)
        not_rechecked = len(client.not_rechecked)

    raw_parts, out = [], []
    for ds in DATASETS:
        if ds == "news":
            rows = [parse_article(p) for p in pages[ds] if p.kind == "article" and not p.unchanged]
        else:
            rows = [r for p in pages[ds] if not p.unchanged for r in parse_json_page(ds, p)]
        source = f"web.{ds}"
        cols = data_columns(ds)
        df = B.with_load_metadata(spark.createDataFrame(rows, record_schema(ds)), source=source,
                                  logical_date=day, loaded_at=loaded_at)
        df = df.withColumn("_row_hash", B.row_hash(cols))  # data columns only: stable across reruns
        lake.write(spark, DeltaDataSet(f"web__{ds}", "bronze", df, mode="replace_partition",
                                       partition_col="_logical_date", partition_value=day,
                                       description=f"web reference data: {ds} (parsed, all strings)"))
        raw_rows = [(p.url, p.status, p.fetched_at, p.etag, p.last_modified, p.body, ds) for p in pages[ds]]
        raw = B.with_load_metadata(spark.createDataFrame(raw_rows, raw_schema()), source=source,
                                   logical_date=day, loaded_at=loaded_at)
        raw_parts.append(raw.withColumn("_row_hash", B.row_hash(RAW_DATA_COLUMNS)))
        out.append(dict(source=source, table=f"bronze/web__{ds}", rows=len(rows), pages_fetched=len(pages[ds]),
                        pages_unchanged=sum(p.unchanged for p in pages[ds]), records=len(rows),
                        retries=sum(p.retries for p in pages[ds])))
        if ds == "news":   # known articles not due for their recheck today (not requested)
            out[-1]["articles_not_rechecked"] = not_rechecked
        ctx.progress.table(out[-1]["table"], len(rows), None,
                           f"pages {len(pages[ds])} (unchanged {out[-1]['pages_unchanged']}), "
                           f"retries {out[-1]['retries']}"
                           + (f", articles not due for a recheck {not_rechecked}" if ds == "news" else ""))

    raw_all = raw_parts[0]
    for part in raw_parts[1:]:
        raw_all = raw_all.unionByName(part)
    lake.write(spark, DeltaDataSet(RAW_TABLE, "bronze", raw_all, mode="replace_partition",
                                   partition_col="_logical_date", partition_value=day,
                                   description="web reference data: every page requested, raw"))
    store.save(state_paths(state, day)[1])  # the state later dates start from
    reconciliation.record_bronze(ctx, [dict(bronze_table=r["table"].split("/", 1)[1], source_kind="web",
                                            source=r["source"], source_rows=r["records"], rejected_rows=0,
                                            bronze_rows=lake.read(spark, "bronze", r["table"].split("/", 1)[1])
                                            .where(F.col("_logical_date") == F.lit(day)).count())
                                       for r in out])
    return {"tables": out, "seconds": round(time.perf_counter() - t0, 1)}
