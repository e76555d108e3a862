"""Silver entities from the external sources: 数据铁笼 exports and web reference data (pure transforms).

The bronze tables of these sources hold every field as a raw string, one row per exported/fetched
record, with provenance (``_file``/``_line`` for exports, ``_url``/``_fetched_at`` for the web). They
differ from the organisation databases in two ways, which is why :func:`build_external` sits next to
:func:`spark_jobs.silver.build_entity` rather than reusing it:

- **Versions, not rows.** A 数据铁笼 operation is exported when it is received and exported again when
  it is completed; the web is re-crawled every day. Every accepted row is a *version* of its key; the
  latest version wins in silver (``_version``: the logical date, then the row's position in the batch,
  e.g. export file name then line; the silver merge never lets an older version overwrite a newer
  one). An *exact* copy (same key, same ``_row_hash`` of the data columns) is not a version: it is
  quarantined as ``duplicate_record`` (within the batch, the first copy by position is kept; across
  batches, a copy of a version already accepted on an earlier date).
- **Typed from strings.** Timestamps and dates are parsed with ``try_to_timestamp``/``try_to_date``
  (several layouts), numbers with ``try_cast``; a value that does not parse fails a rule (the raw
  string is kept, as ``_raw_<col>``, in the quarantine record only).

Reconciliation per batch: bronze rows = accepted versions + quarantined rows. Accepted versions that
a later version of the same batch supersedes count as silver rows (they were applied, in order); for
power operations every accepted version is also kept in ``silver/power_operation_versions`` (the
status history: 在办 -> 办结).

Personal data: the 身份证号 of handlers/cadres in the exports is replaced by ``<col>_pseudonym``
(the same keyed HMAC as members', so it joins to ``silver.members.id_number_pseudonym``) and
``<col>_masked``; the plain value never reaches silver. IDs on the web are published masked
(``520102********1234``) and stay as they are (a full 18-digit number there is masked the same
way). Free text (titles, news bodies, unknown JSON fields) has any embedded 身份证号 or mobile
number masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from spark_jobs.silver.common import (
    EntitySpec,
    Ref,
    Rule,
    id_check_ok,
    pseudonymise,
    quarantine_rows,
    with_errors,
)

META = ["_batch_id", "_logical_date", "_row_hash"]
RAW_PREFIX = "_raw_"          # validation-only columns: in the quarantine record, not in silver
PO_STATUSES = "('办结','超时办结','在办','超时未办')"
DONE_STATUSES = "('办结','超时办结')"
COMPLAINT_STATUSES = "('已办结','处理中')"

# 18-digit 身份证号 / mobile numbers inside free text (bounded, so hex digests do not match)
ID_IN_TEXT = r"(?<![0-9A-Za-z])([0-9]{6})[0-9]{8}([0-9]{3}[0-9Xx])(?![0-9A-Za-z])"
PHONE_IN_TEXT = r"(?<![0-9A-Za-z])(1[3-9][0-9])[0-9]{4}([0-9]{4})(?![0-9A-Za-z])"


@dataclass
class ExternalSpec(EntitySpec):
    """How one silver entity is built from a bronze table of versioned, all-string records."""

    order: list[str] = field(default_factory=list)    # provenance columns: position in a batch (later wins)
    keep: list[str] = field(default_factory=list)     # provenance columns carried into silver
    scrub: list[str] = field(default_factory=list)    # free-text columns: embedded IDs/phones masked
    duplicates_across_batches: bool = True            # a copy of an earlier date's version is a duplicate
    history: str | None = None                        # silver table keeping every accepted version
    identity: tuple[str, str, str | None] | None = None  # (dept, name, id column) -> identity_key
    version_col: str = "_version"


@dataclass
class ExternalBatch:
    checked: DataFrame     # every bronze row with ``_errors`` (pseudonymised); the others derive from it
    good: DataFrame        # latest accepted version per key (to merge into silver)
    versions: DataFrame    # every accepted row of the batch (bronze = versions + bad)
    bad: DataFrame         # quarantine rows: entity, source, line, record_key, rule, value, reasons, record, META


# ---------------------------------------------------------------------------------------------
# SQL snippets for typing raw strings
# ---------------------------------------------------------------------------------------------

def ts(col: str) -> str:
    """SQL: the raw string ``col`` as a timestamp (NULL when it does not parse)."""
    c = f"trim({col})"
    return (f"coalesce(try_to_timestamp({c}), try_to_timestamp({c}, 'yyyy/M/d H:mm:ss'), "
            f"try_to_timestamp({c}, 'yyyy/M/d H:mm'), try_to_timestamp({c}, 'yyyyMMddHHmmss'))")


def date(col: str) -> str:
    """SQL: the raw string ``col`` as a date (NULL when it does not parse)."""
    c = f"trim({col})"
    return (f"coalesce(try_to_date({c}), try_to_date({c}, 'yyyy/M/d'), try_to_date({c}, 'yyyy年M月d日'), "
            f"try_to_date({c}, 'yyyyMMdd'))")


def number(col: str, sql_type: str) -> str:
    return f"try_cast(trim({col}) as {sql_type})"


def id_number(col: str) -> str:
    """SQL: a 身份证号 normalised like members' (trimmed, upper case; empty -> NULL)."""
    return f"nullif(upper(trim({col})), '')"


def masked_id(col: str) -> str:
    """SQL: a published (masked) ID kept as it is; a full 18-digit number is masked like members'."""
    c = f"upper(trim({col}))"
    return (f"case when {c} rlike '^[0-9]{{17}}[0-9X]$' "
            f"then concat(substring({c}, 1, 6), '********', substring({c}, -4, 4)) else nullif({c}, '') end")


def scrub_text(col: str) -> Column:
    """``col`` with embedded 身份证号 and mobile numbers masked (520102********1234, 138****5678)."""
    c = F.regexp_replace(F.col(col), ID_IN_TEXT, "$1********$2")
    return F.regexp_replace(c, PHONE_IN_TEXT, "$1****$2")


def identity_key(dept: str, name: str, pseudonym: str | None) -> Column:
    """The source-side identity of a person in 数据铁笼 records: ``<dept_code>|<name>|<pseudonym[:16] or ->``.

    Equal for every record of the same handler/cadre in a department (with or without an ID shown);
    ``silver/person_links`` maps it (source ``ironcage``) to a ``person_key``.
    """
    pid = F.substring(F.col(pseudonym), 1, 16) if pseudonym else F.lit(None).cast("string")
    return F.concat_ws("|", F.coalesce(F.col(dept), F.lit("")), F.coalesce(F.col(name), F.lit("")),
                       F.coalesce(pid, F.lit("-")))


def _sortable(df: DataFrame, col: str) -> Column:
    """A string that sorts like ``col`` (numbers zero-padded, timestamps with microseconds)."""
    t = df.schema[col].dataType.simpleString()
    if t in ("int", "bigint", "smallint"):
        return F.lpad(F.col(col).cast("string"), 15, "0")
    if t == "timestamp":
        return F.date_format(F.col(col), "yyyy-MM-dd HH:mm:ss.SSSSSS")
    if t == "date":
        return F.date_format(F.col(col), "yyyy-MM-dd")
    return F.col(col).cast("string")


def version_column(df: DataFrame, order: list[str]) -> Column:
    """``_version``: logical date, then the position columns, then the row hash (a total order)."""
    parts = [_sortable(df, "_logical_date")] + [_sortable(df, c) for c in order] + [F.col("_row_hash")]
    return F.concat_ws("|", *[F.coalesce(p, F.lit("")) for p in parts])


# ---------------------------------------------------------------------------------------------
# duplicates and versions
# ---------------------------------------------------------------------------------------------

def flag_exact_duplicates(df: DataFrame, key: str, prior: DataFrame | None = None) -> DataFrame:
    """Add a ``duplicate_record`` error to exact copies (same ``key`` and ``_row_hash``).

    Within the batch the first copy by ``_version`` is kept; ``prior`` (``key``, ``_row_hash``,
    ``_version`` of versions accepted on earlier dates) makes any copy of those a duplicate.
    """
    w = Window.partitionBy(key, "_row_hash").orderBy("_version")
    out = df.withColumn("_dup_rn", F.row_number().over(w)).withColumn("_dup_first", F.first("_version").over(w))
    dup = F.col("_dup_rn") > 1
    if prior is not None:
        seen = (prior.groupBy(key, "_row_hash").agg(F.min("_version").alias("_dup_prior")))
        out = out.join(seen, on=[key, "_row_hash"], how="left")
    else:
        out = out.withColumn("_dup_prior", F.lit(None).cast("string"))
    msg = F.when(F.col("_dup_prior").isNotNull(),
                 F.concat(F.lit(f"duplicate_record: same {key} and content as the version loaded at "),
                          F.col("_dup_prior")))
    msg = msg.when(dup, F.concat(F.lit(f"duplicate_record: same {key} and content as the row at "),
                                 F.col("_dup_first")))
    out = out.withColumn("_errors", F.when(msg.isNotNull(), F.array_union(F.col("_errors"), F.array(msg)))
                         .otherwise(F.col("_errors")))
    return out.drop("_dup_rn", "_dup_first", "_dup_prior")


def latest_per_key(versions: DataFrame, key: str) -> DataFrame:
    """The latest version of each key (highest ``_version``)."""
    w = Window.partitionBy(key).orderBy(F.col("_version").desc())
    return versions.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def build_external(bronze_batch: DataFrame, spec: ExternalSpec, refs: dict[str, DataFrame], key: bytes,
                   prior: DataFrame | None = None) -> ExternalBatch:
    """Split one bronze batch into accepted versions (latest per key for silver) and quarantine rows.

    ``refs`` maps a bronze table name to its key universe (reference checks); ``prior`` holds
    (key, ``_row_hash``, ``_version``) of versions accepted on earlier dates (duplicate check).
    """
    ups = bronze_batch.where(F.col("_op") == "U")
    rows = ups.select(*[F.expr(c) for c in spec.columns], *[F.col(c) for c in spec.keep], *META)
    rows = rows.withColumn("_version", version_column(rows, spec.order))
    helpers = []
    for col, kind in spec.pii.items():
        if kind == "id_number":
            rows = rows.withColumn(f"{col}_ok", id_check_ok(col))
            helpers.append(f"{col}_ok")
    checked = with_errors(rows, spec.rules, refs, spec.refs).drop(*helpers)
    checked = flag_exact_duplicates(checked, spec.key, prior if spec.duplicates_across_batches else None)
    checked = pseudonymise(checked, spec.pii, key)
    for c in spec.scrub:
        checked = checked.withColumn(c, scrub_text(c))
    if spec.identity:
        dept, name, idc = spec.identity
        checked = checked.withColumn("identity_key", identity_key(dept, name, f"{idc}_pseudonym" if idc else None))
    data_cols = [c for c in checked.columns if c not in META + ["_errors"]]
    silver_cols = [c for c in data_cols if not c.startswith(RAW_PREFIX)]
    versions = checked.where(F.size("_errors") == 0).select(*silver_cols, *META)
    good = (latest_per_key(versions, spec.key)
            .withColumn("is_deleted", F.lit(False)).withColumn("deleted_on", F.lit(None).cast("date")))
    source = F.col("_file") if "_file" in checked.columns else (
        F.col("_url") if "_url" in checked.columns else F.lit(spec.source.replace("__", ".", 1)))
    line = F.col("_line") if "_line" in checked.columns else F.lit(None)
    bad = quarantine_rows(checked, spec.name, spec.key, data_cols, META, source, line, spec.rules,
                          rows.columns, spec.pii)
    return ExternalBatch(checked, good, versions, bad)


# ---------------------------------------------------------------------------------------------
# the entities
# ---------------------------------------------------------------------------------------------

IRONCAGE_KEEP = ["_file", "_line", "_file_sha256", "_encoding"]
IRONCAGE_ORDER = ["_file", "_line"]
WEB_ORDER = ["_fetched_at", "_url"]


def _raw(*cols: str) -> list[str]:
    return [f"{c} as {RAW_PREFIX}{c}" for c in cols]


def _id_rule(col: str, label: str) -> Rule:
    return Rule("invalid_id_check_digit", f"{col} is null or {col}_ok", f"{label} format or check digit is wrong")


POWER_OPERATIONS = ExternalSpec(
    "power_operations", "ironcage__power_operations", "op_id",
    ["trim(op_id) as op_id", "trim(dept_code) as dept_code", "trim(dept_name) as dept_name",
     "trim(item_name) as item_name", "trim(handler_name) as handler_name",
     f"{id_number('handler_id_number')} as handler_id_number",
     f"{ts('received_at')} as received_at", f"{ts('deadline')} as deadline",
     f"{ts('completed_at')} as completed_at", "trim(status) as status",
     *_raw("received_at", "deadline", "completed_at")],
    rules=[Rule("missing_value", "op_id is not null", "事项编号 missing"),
           Rule("invalid_timestamp", "received_at is not null", "受理时间 missing or not a timestamp"),
           Rule("invalid_timestamp", "deadline is not null", "办理时限 missing or not a timestamp"),
           Rule("invalid_timestamp", f"{RAW_PREFIX}completed_at is null or completed_at is not null",
                "办结时间 is not a timestamp"),
           Rule("impossible_date", "deadline is null or received_at is null or to_date(deadline) >= to_date(received_at)",
                "办理时限 before the day of 受理"),
           Rule("impossible_date", "completed_at is null or received_at is null or completed_at >= received_at",
                "办结 before 受理"),
           Rule("invalid_value", f"status in {PO_STATUSES}", "unknown 办理状态"),
           Rule("conflicting_values", f"status is null or (status in {DONE_STATUSES}) = (completed_at is not null)",
                "办理状态 disagrees with 办结时间"),
           _id_rule("handler_id_number", "经办人身份证号")],
    pii={"handler_id_number": "id_number"},
    order=IRONCAGE_ORDER, keep=IRONCAGE_KEEP, history="power_operation_versions",
    identity=("dept_code", "handler_name", "handler_id_number"),
    description="One row per 数据铁笼 power operation (事项): its latest exported state.",
)

DUTY_RECORDS = ExternalSpec(
    "duty_records", "ironcage__duty_records", "record_id",
    ["trim(record_id) as record_id", "trim(dept_code) as dept_code", "trim(cadre_name) as cadre_name",
     f"{id_number('cadre_id_number')} as cadre_id_number",
     f"cast({ts('duty_month')} as date) as duty_month",
     f"{number('target_count', 'int')} as target_count", f"{number('completed_count', 'int')} as completed_count",
     f"{number('review_score', 'double')} as review_score",
     *_raw("duty_month", "target_count", "completed_count", "review_score")],
    rules=[Rule("missing_value", "record_id is not null", "记实编号 missing"),
           Rule("invalid_date", "duty_month is not null", "记实月份 missing or not a date"),
           Rule("invalid_value", "target_count is not null and completed_count is not null",
                "任务数 missing or not an integer"),
           Rule("invalid_value", "target_count is null or completed_count is null or "
                                 "(target_count >= 0 and completed_count between 0 and target_count)",
                "完成任务数 out of range"),
           Rule("invalid_value", f"{RAW_PREFIX}review_score is null or review_score between 0 and 100",
                "考评得分 not a number in 0-100"),
           _id_rule("cadre_id_number", "身份证号")],
    pii={"cadre_id_number": "id_number"},
    order=IRONCAGE_ORDER, keep=IRONCAGE_KEEP,
    identity=("dept_code", "cadre_name", "cadre_id_number"),
    description="One row per cadre and month of 岗位责任工作记实 (targets, completions, review score).",
)

COMPLAINTS = ExternalSpec(
    "complaints", "ironcage__complaints", "complaint_id",
    ["trim(complaint_id) as complaint_id", "trim(op_id) as op_id", "trim(dept_code) as dept_code",
     "trim(handler_name) as handler_name", f"{ts('received_at')} as received_at", "trim(category) as category",
     "trim(status) as status", *_raw("received_at")],
    rules=[Rule("missing_value", "complaint_id is not null", "投诉编号 missing"),
           Rule("invalid_timestamp", "received_at is not null", "投诉时间 missing or not a timestamp"),
           Rule("invalid_value", f"status in {COMPLAINT_STATUSES}", "unknown 处理状态")],
    refs=[Ref("op_id", "ironcage__power_operations", "op_id", nullable=True)],
    order=IRONCAGE_ORDER, keep=IRONCAGE_KEEP,
    identity=("dept_code", "handler_name", None),
    description="One row per complaint about a power operation (投诉), with the operation it concerns.",
)

WEB_KEEP = ["_url", "_fetched_at"]

PENALTIES = ExternalSpec(
    "penalties", "web__penalties", "notice_id",
    ["trim(notice_id) as notice_id", "trim(title) as title", "trim(party_name) as party_name",
     f"{masked_id('party_id_masked')} as party_id_masked", "trim(region) as region", "trim(reason) as reason",
     f"{number('amount_yuan', 'decimal(18,2)')} as amount_yuan", "trim(authority) as authority",
     f"{date('decision_date')} as decision_date", "_extra", *_raw("amount_yuan", "decision_date")],
    rules=[Rule("missing_value", "notice_id is not null", "notice_id missing"),
           Rule("invalid_date", "decision_date is not null", "decision_date missing or not a date"),
           Rule("invalid_value", f"{RAW_PREFIX}amount_yuan is null or amount_yuan >= 0",
                "amount_yuan not a non-negative number")],
    order=WEB_ORDER, keep=WEB_KEEP, scrub=["title", "reason", "_extra"], duplicates_across_batches=False,
    description="One row per administrative penalty notice (行政处罚) published on the web.",
)

ENFORCEMENT = ExternalSpec(
    "enforcement", "web__enforcement", "case_no",
    ["trim(case_no) as case_no", "trim(name) as name", f"{masked_id('id_masked')} as id_masked",
     "trim(court) as court", "trim(obligation) as obligation",
     f"{number('amount_yuan', 'decimal(18,2)')} as amount_yuan", f"{date('publish_date')} as publish_date",
     "_extra", *_raw("amount_yuan", "publish_date")],
    rules=[Rule("missing_value", "case_no is not null", "case_no missing"),
           Rule("invalid_date", "publish_date is not null", "publish_date missing or not a date"),
           Rule("invalid_value", f"{RAW_PREFIX}amount_yuan is null or amount_yuan >= 0",
                "amount_yuan not a non-negative number")],
    order=WEB_ORDER, keep=WEB_KEEP, scrub=["obligation", "_extra"], duplicates_across_batches=False,
    description="One row per enforcement-list case (失信被执行人) published on the web.",
)

NEWS = ExternalSpec(
    "news", "web__news", "news_id",
    ["trim(news_id) as news_id", "trim(title) as title", f"{date('published_date')} as published_date",
     "body", *_raw("published_date")],
    rules=[Rule("missing_value", "news_id is not null", "news_id missing"),
           Rule("invalid_date", "published_date is not null", "published_date missing or not a date")],
    order=WEB_ORDER, keep=WEB_KEEP, scrub=["title", "body"], duplicates_across_batches=False,
    description="One row per news article (title, date, body text).",
)

ENTITIES: list[ExternalSpec] = [POWER_OPERATIONS, DUTY_RECORDS, COMPLAINTS, PENALTIES, ENFORCEMENT, NEWS]
BY_NAME = {e.name: e for e in ENTITIES}
