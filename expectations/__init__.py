"""Quality suites as data: for each lake layer and table, a list of Great Expectations 1.x expectations.

``expectations/silver.py`` and ``expectations/gold.py`` each define ``SUITES: dict[str, TableSuite]``
(table name -> suite). :mod:`redcloud.quality` validates a table against its suite and stops the
publish when any expectation fails.

A suite holds the table's key (used to name failing rows) and its declared expectations. On top of
those, :meth:`TableSuite.build` adds one "no plain 身份证号/phone number" expectation for *every*
string column the table actually has (except the keyed-hash columns), so a new string column is
scanned without anyone remembering to add it.

Every expectation carries ``meta={"check": ...}``, a short stable name (``key_unique``,
``in_set``, ``no_plain_pii``...), and within one table the pair (expectation type, column) is
unique: it is the row key of ``ops/quality_results``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # never phone home from a pipeline run

import great_expectations as gx
from great_expectations.expectations.row_conditions import Column

from redcloud.rules import vocab

E = gx.expectations

# --- patterns -------------------------------------------------------------------------------------
# Explicit [0-9] instead of \d so Python (pandas engine) and Java (Spark engine) regexes agree.
PSEUDONYM_RE = r"^[0-9a-f]{64}$"                       # HMAC-SHA256 hex
MASKED_ID_RE = r"^[0-9]{6}\*{8}[0-9X]{4}$"             # 520102********1234
MASKED_PHONE_RE = r"^1[0-9]{2}\*{4}[0-9]{4}$"          # 138****5678
# An 18-character 身份证号 or an 11-digit mobile number standing alone (not inside a longer run of
# letters/digits, so hex digests and long codes do not count). Chinese text around it does count:
# "身份证520102199003078515" is a leak.
PLAIN_ID_RE = r"[0-9]{17}[0-9Xx]"
PLAIN_PHONE_RE = r"1[3-9][0-9]{9}"
PLAIN_PII_RE = rf"(?<![0-9A-Za-z])(?:{PLAIN_ID_RE}|{PLAIN_PHONE_RE})(?![0-9A-Za-z])"

# columns holding keyed hashes: never scanned for plain PII (their format check is stronger)
HASH_SUFFIXES = ("_pseudonym",)
HASH_COLUMNS = ("_row_hash",)

# --- known value sets: the business vocabulary (redcloud.rules.vocab), never spelled here -------------
GENDERS = list(vocab.GENDERS)
PARTY_STATUSES = list(vocab.PARTY_STATUSES)
MEMBERSHIP_STATUSES = list(vocab.MEMBERSHIP_STATUSES)
ORG_LEVELS = list(vocab.ORG_LEVELS)
ORG_TYPES = list(vocab.ORG_TYPES)
EDUCATION = list(vocab.EDUCATION)
# the 56 officially recognised ethnic groups, plus 其他 (foreign-born / not identified)
ETHNICITIES = [
    "汉族", "蒙古族", "回族", "藏族", "维吾尔族", "苗族", "彝族", "壮族", "布依族", "朝鲜族", "满族", "侗族", "瑶族",
    "白族", "土家族", "哈尼族", "哈萨克族", "傣族", "黎族", "傈僳族", "佤族", "畲族", "高山族", "拉祜族", "水族",
    "东乡族", "纳西族", "景颇族", "柯尔克孜族", "土族", "达斡尔族", "仫佬族", "羌族", "布朗族", "撒拉族", "毛南族",
    "仡佬族", "锡伯族", "阿昌族", "普米族", "塔吉克族", "怒族", "乌孜别克族", "俄罗斯族", "鄂温克族", "德昂族",
    "保安族", "裕固族", "京族", "塔塔尔族", "独龙族", "鄂伦春族", "赫哲族", "门巴族", "珞巴族", "基诺族", "其他",
]
CHANGE_TYPES = list(vocab.CHANGE_TYPES)
RANKS = list(vocab.RANKS)
POST_RANKS = list(vocab.POST_RANKS)
GRADES = list(vocab.GRADES)
DISCIPLINE_ACTIONS = list(vocab.DISCIPLINE_ACTIONS)
VILLAGE_ROLES = list(vocab.VILLAGE_ROLES)
MEETING_TYPES = list(vocab.MEETING_TYPES)   # a new activity type must be added to the vocabulary
ATTENDANCE_STATUSES = list(vocab.ATTENDANCE_STATUSES)
SOURCE_PROJECT_STATUSES = list(vocab.SOURCE_PROJECT_STATUSES)
PROJECT_STATES = list(vocab.PROJECT_STATES)
AGE_BANDS = [label for _, label in vocab.AGE_BANDS]
PARTY_YEARS_BANDS = [label for _, label in vocab.PARTY_YEARS_BANDS]

# rows still current in silver (soft-deleted rows keep their key but no longer count)
ALIVE = Column("is_deleted") == False  # noqa: E712  (a GX Condition, not a Python comparison)


# --- expectation builders -------------------------------------------------------------------------
def _m(check: str, **extra) -> dict:
    return {"check": check, **extra}


def not_null(*cols: str, row_condition=None, check: str = "not_null") -> list:
    kw = {"row_condition": row_condition} if row_condition is not None else {}
    return [E.ExpectColumnValuesToNotBeNull(column=c, meta=_m(check), **kw) for c in cols]


def key_unique(col: str, alive_only: bool = True) -> list:
    kw = {"row_condition": ALIVE} if alive_only else {}
    return [E.ExpectColumnValuesToNotBeNull(column=col, meta=_m("key_not_null")),
            E.ExpectColumnValuesToBeUnique(column=col, meta=_m("key_unique"), **kw)]


def unique(col: str, alive_only: bool = True, check: str = "unique") -> list:
    kw = {"row_condition": ALIVE} if alive_only else {}
    return [E.ExpectColumnValuesToBeUnique(column=col, meta=_m(check), **kw)]


def compound_unique(cols: list[str], alive_only: bool = True, check: str = "compound_unique") -> list:
    kw = {"row_condition": ALIVE} if alive_only else {}
    return [E.ExpectCompoundColumnsToBeUnique(column_list=list(cols), meta=_m(check), **kw)]


def in_set(col: str, values: list, check: str = "in_set") -> list:
    return [E.ExpectColumnValuesToBeInSet(column=col, value_set=list(values), meta=_m(check))]


def between(col: str, lo=None, hi=None, strict_min: bool = False, check: str = "range") -> list:
    return [E.ExpectColumnValuesToBeBetween(column=col, min_value=lo, max_value=hi, strict_min=strict_min,
                                            meta=_m(check))]


def a_at_least_b(a: str, b: str, check: str = "ordered_pair") -> list:
    """``a >= b`` on every row where both are present (e.g. deadline >= start_date)."""
    return [E.ExpectColumnPairValuesAToBeGreaterThanB(column_A=a, column_B=b, or_equal=True,
                                                      ignore_row_if="either_value_is_missing", meta=_m(check))]


def matches(col: str, regex: str, check: str) -> list:
    return [E.ExpectColumnValuesToMatchRegex(column=col, regex=regex, meta=_m(check))]


def pseudonym(*cols: str) -> list:
    return [e for c in cols for e in matches(c, PSEUDONYM_RE, "pseudonym_format")]


def masked_id(*cols: str) -> list:
    return [e for c in cols for e in matches(c, MASKED_ID_RE, "masked_id_format")]


def masked_phone(*cols: str) -> list:
    return [e for c in cols for e in matches(c, MASKED_PHONE_RE, "masked_phone_format")]


def no_plain_pii(col: str) -> list:
    return [E.ExpectColumnValuesToNotMatchRegex(column=col, regex=PLAIN_PII_RE, meta=_m("no_plain_pii"))]


def min_rows(n: int = 1) -> list:
    return [E.ExpectTableRowCountToBeBetween(min_value=n, meta=_m("not_empty"))]


def is_hash_column(name: str) -> bool:
    return name in HASH_COLUMNS or name.endswith(HASH_SUFFIXES)


def column_label(kwargs: dict) -> str:
    """The column(s) an expectation is about ("" for table-level expectations)."""
    if kwargs.get("column"):
        return kwargs["column"]
    if kwargs.get("column_list"):
        return ",".join(kwargs["column_list"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']},{kwargs['column_B']}"
    return ""


@dataclass
class TableSuite:
    """The expectations one table must meet before it is published."""

    layer: str
    table: str
    key: list[str]
    expectations: list = field(default_factory=list)   # GX Expectation objects (templates; copied per run)
    pii_scan: bool = True                                # add no_plain_pii on every non-hash string column
    description: str = ""

    def build(self, string_columns: list[str]) -> list:
        """Fresh expectation objects for one validation run.

        ``string_columns`` are the table's actual string columns: each (but hash columns) gets a
        ``no_plain_pii`` expectation.
        """
        out = [e.copy(deep=True, update={"id": None}) for e in self.expectations]
        if self.pii_scan:
            out += [e for c in string_columns if not is_hash_column(c) for e in no_plain_pii(c)]
        seen = set()
        for e in out:
            ident = (e.expectation_type, column_label(e.configuration.kwargs))
            if ident in seen:
                raise ValueError(f"{self.layer}/{self.table}: two expectations {ident}; "
                                 "(type, column) must be unique within a suite (it keys ops/quality_results)")
            seen.add(ident)
        return out


# Tables that so far only have the baseline suite: not empty, and no plain 身份证号/phone number in
# any string column. Give one a specific suite in silver.py/gold.py and it leaves this list.
BASELINE_TABLES: dict[str, list[str]] = {
    "silver": ["power_operations", "power_operation_versions", "duty_records", "complaints", "penalties",
               "enforcement", "news", "person_links", "persons", "organization_history",
               "member_status_history", "cadre_post_history"],
    "gold": ["fct_meeting_signals", "fct_branch_month", "fct_branch_quarter", "fct_learning_daily",
             "fct_village_work_daily"],
}


def baseline_suite(layer: str, table: str) -> TableSuite:
    return TableSuite(layer, table, [], [*min_rows(1)], description="baseline: not empty, no plain PII")


def suites(layer: str) -> dict[str, TableSuite]:
    """Every suite of a layer: table name -> :class:`TableSuite`."""
    if layer == "silver":
        from expectations.silver import SUITES
    elif layer == "gold":
        from expectations.gold import SUITES
    else:
        raise KeyError(f"no quality suites for layer {layer!r} (have: silver, gold)")
    extra = {t: baseline_suite(layer, t) for t in BASELINE_TABLES.get(layer, []) if t not in SUITES}
    return {**SUITES, **extra}


def suite_for(layer: str, table: str) -> TableSuite:
    found = suites(layer)
    if table not in found:
        raise KeyError(f"no quality suite for {layer}/{table}; add one in expectations/{layer}.py")
    return found[table]
