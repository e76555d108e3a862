"""Building blocks for silver: validation rules, pseudonyms, masking, latest versions.

Everything here is built from Spark SQL functions (no Python UDFs), so it runs at JVM speed and
on Spark Connect.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = ["1", "0", "X", "9", "8", "7", "6", "5", "4", "3", "2"]


@dataclass(frozen=True)
class Rule:
    """A named condition every good row satisfies; ``check`` is SQL that is TRUE for good rows.

    A NULL result counts as a failure, so a rule on a nullable column must say what NULL means.
    """

    name: str
    check: str
    message: str


@dataclass(frozen=True)
class Ref:
    """A foreign key that must resolve: ``column`` in this entity -> ``key`` of bronze table ``target``."""

    column: str
    target: str
    key: str
    nullable: bool = True


@dataclass
class EntitySpec:
    """How one silver entity is built from one bronze table."""

    name: str
    source: str
    key: str
    columns: list[str]                      # SQL select expressions over the bronze row
    rules: list[Rule] = field(default_factory=list)
    refs: list[Ref] = field(default_factory=list)
    pii: dict[str, str] = field(default_factory=dict)   # column -> "id_number" | "phone"
    dedupe_on: str | None = None             # a natural key: a second key with the same value is a duplicate
    version_col: str = "updated_at"
    description: str = ""


# ---------------------------------------------------------------------------------------------
# identity numbers, pseudonyms, masks
# ---------------------------------------------------------------------------------------------

def id_check_ok(col: str) -> Column:
    """TRUE when ``col`` is an 18-character 身份证号 whose ISO 7064 MOD 11-2 check character is right."""
    c = F.upper(F.col(col))
    total = sum(F.substring(c, i + 1, 1).cast("int") * w for i, w in enumerate(ID_WEIGHTS))
    expected = F.element_at(F.array(*[F.lit(x) for x in ID_CHECK]), (total % 11 + 1).cast("int"))
    return (F.length(c) == 18) & c.rlike(r"^[0-9]{17}[0-9X]$") & (F.substring(c, 18, 1) == expected)


def id_birth_date(col: str) -> Column:
    return F.to_date(F.substring(F.col(col), 7, 8), "yyyyMMdd")


def hmac_sha256(value: Column, key: bytes) -> Column:
    """HMAC-SHA256(key, value) as hex, from Spark's built-in sha2 (RFC 2104, block size 64)."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    inner = F.sha2(F.concat(F.lit(ipad), value.cast("binary")), 256)
    return F.when(value.isNull(), F.lit(None)).otherwise(F.sha2(F.concat(F.lit(opad), F.unhex(inner)), 256))


def mask(value: Column, kind: str) -> Column:
    """Display forms: 520102********1234 for an ID number, 138****5678 for a phone number."""
    if kind == "id_number":
        return F.when(value.isNull(), None).otherwise(
            F.concat(F.substring(value, 1, 6), F.lit("********"), F.substring(value, -4, 4)))
    return F.when(value.isNull(), None).otherwise(
        F.concat(F.substring(value, 1, 3), F.lit("****"), F.substring(value, -4, 4)))


def pseudonymise(df: DataFrame, pii: dict[str, str], key: bytes) -> DataFrame:
    """Replace each PII column by ``<col>_pseudonym`` (keyed HMAC) and ``<col>_masked``; drop the plain value."""
    for col, kind in pii.items():
        v = F.upper(F.trim(F.col(col))) if kind == "id_number" else F.trim(F.col(col))
        df = df.withColumn(f"{col}_pseudonym", hmac_sha256(v, key)).withColumn(f"{col}_masked", mask(v, kind))
        df = df.drop(col)
    return df


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------

def with_errors(df: DataFrame, rules: list[Rule], refs: dict[str, DataFrame] | None = None,
                ref_specs: list[Ref] | None = None) -> DataFrame:
    """Add ``_errors``: array of "rule: message" for every rule the row breaks (empty when clean)."""
    checks = [F.when(F.coalesce(F.expr(r.check), F.lit(False)), None).otherwise(F.lit(f"{r.name}: {r.message}"))
              for r in rules]
    for i, ref in enumerate(ref_specs or []):
        keys = refs[ref.target].select(F.col(ref.key).alias(f"_ref{i}")).distinct().withColumn(f"_hit{i}", F.lit(True))
        df = df.join(F.broadcast(keys), df[ref.column] == keys[f"_ref{i}"], "left").drop(f"_ref{i}")
        ok = F.col(f"_hit{i}").isNotNull() | (F.col(ref.column).isNull() if ref.nullable else F.lit(False))
        checks.append(F.when(ok, None).otherwise(
            F.concat(F.lit(f"orphan_reference: {ref.column}="), F.coalesce(F.col(ref.column).cast("string"), F.lit("NULL")),
                     F.lit(f" not found in {ref.target}"))))
    errors = F.filter(F.array(*checks), lambda x: x.isNotNull()) if checks else F.array().cast("array<string>")
    out = df.withColumn("_errors", errors)
    return out.drop(*[c for c in out.columns if c.startswith("_hit")])


# the columns every quarantine table shares (silver quarantine/<entity> and bronze
# quarantine/ironcage__rejects), so an analyst reads them the same way: where the row came from
# (source file, URL or source table; line of the export), its key, the rule it broke and the
# offending value(s)
QUARANTINE_SHARED = ("source", "line", "record_key", "rule", "value")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def rule_columns(rule: Rule, columns: list[str]) -> list[str]:
    """The columns a rule's check reads (identifiers of its SQL that are columns of the row)."""
    return list(dict.fromkeys(w for w in _IDENT.findall(rule.check) if w in columns))


def offending_value(rules: list[Rule], row_columns: list[str], pii: dict[str, str], available: list[str]):
    """Column: the values the row's first broken rule read, as ``col=value, ...`` (personal data in its
    masked form); for reference and duplicate errors the message already names the value."""
    first = F.element_at(F.col("_errors"), 1)
    value = F.regexp_extract(first, r"^[a-z_]+: (.*)$", 1)   # orphan_reference / duplicate_record / other
    for r in rules:
        parts = []
        for c in rule_columns(r, row_columns):
            shown = f"{c}_masked" if c in pii else c
            if shown in available:
                parts.append(F.concat(F.lit(f"{c}="), F.coalesce(F.col(shown).cast("string"), F.lit("NULL"))))
        if parts:
            value = F.when(first == F.lit(f"{r.name}: {r.message}"), F.concat_ws(", ", *parts)).otherwise(value)
    return value


def quarantine_rows(checked: DataFrame, entity: str, key: str, data_cols: list[str], meta: list[str],
                    source, line, rules: list[Rule], row_columns: list[str], pii: dict[str, str]) -> DataFrame:
    """The quarantine rows of a checked batch: entity, the shared columns, every reason, the record as
    JSON (pseudonymised), and ``meta``."""
    bad = checked.where(F.size("_errors") > 0)
    return bad.select(
        F.lit(entity).alias("entity"),
        source.alias("source"),
        line.cast("long").alias("line"),
        F.col(key).cast("string").alias("record_key"),
        F.regexp_extract(F.element_at(F.col("_errors"), 1), r"^([a-z_]+)", 1).alias("rule"),
        offending_value(rules, row_columns, pii, bad.columns).alias("value"),
        F.col("_errors").alias("reasons"),
        F.to_json(F.struct(*[F.col(c) for c in data_cols])).alias("record"),
        *meta,
    )


def flag_duplicates(df: DataFrame, key: str, natural: str, existing: DataFrame | None = None) -> DataFrame:
    """Flag rows whose natural key (e.g. the 身份证号 pseudonym) already belongs to another key.

    The lowest key of a natural key is the original; others get a ``duplicate_record`` error.
    ``existing`` (key, natural) pairs already in silver take precedence.
    """
    cands = df.where(F.col(natural).isNotNull()).select(key, natural)
    if existing is not None:
        cands = cands.unionByName(existing.select(key, natural))
    owner = cands.groupBy(natural).agg(F.min(key).alias("_owner"))
    out = df.join(owner, on=natural, how="left")
    dup = F.col("_owner").isNotNull() & (F.col("_owner") != F.col(key))
    return out.withColumn("_errors", F.when(dup, F.array_union(F.col("_errors"), F.array(
        F.concat(F.lit(f"duplicate_record: same {natural} as {key}="), F.col("_owner").cast("string"))))).otherwise(
        F.col("_errors"))).drop("_owner")


def latest_versions(df: DataFrame, key: str, order_cols: list[str]) -> DataFrame:
    """One row per key: the last by ``order_cols`` (descending)."""
    w = Window.partitionBy(key).orderBy(*[F.col(c).desc_nulls_last() for c in order_cols])
    return df.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")
