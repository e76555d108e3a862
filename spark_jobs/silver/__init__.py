"""Silver: typed, validated, deduplicated, pseudonymised entities (pure transforms)."""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from spark_jobs.silver.common import (
    EntitySpec,
    flag_duplicates,
    hmac_sha256,
    id_birth_date,
    id_check_ok,
    pseudonymise,
    quarantine_rows,
    with_errors,
)

META = ["_batch_id", "_logical_date", "_row_hash"]


@dataclass
class SilverBatch:
    good: DataFrame        # silver rows (pseudonymised), to merge by key
    bad: DataFrame         # quarantine rows: entity, source, line, record_key, rule, value, reasons, record, META
    deleted: DataFrame     # keys deleted in the source in this batch


def build_entity(bronze_batch: DataFrame, spec: EntitySpec, refs: dict[str, DataFrame], key: bytes,
                 existing: DataFrame | None = None) -> SilverBatch:
    """Split one bronze batch of an entity into silver rows, quarantine rows and deletions.

    ``refs`` maps a bronze table name to its rows (the key universe for reference checks);
    ``existing`` is the entity's current silver table (for duplicates across batches).
    """
    ups = bronze_batch.where(F.col("_op") == "U")
    rows = ups.select(*[F.expr(c) for c in spec.columns], *META)
    if "id_number" in rows.columns:
        rows = rows.withColumn("id_check_ok", id_check_ok("id_number")).withColumn("id_birth", id_birth_date("id_number"))
    row_columns = rows.columns
    checked = with_errors(rows, spec.rules, refs, spec.refs)
    checked = checked.drop("id_check_ok", "id_birth")
    if spec.dedupe_on:
        nat = f"{spec.dedupe_on}_pseudonym"
        checked = checked.withColumn(nat, hmac_sha256(F.upper(F.trim(F.col(spec.dedupe_on))), key))
        prior = existing.select(spec.key, nat) if existing is not None and nat in existing.columns else None
        checked = flag_duplicates(checked, spec.key, nat, prior).drop(nat)
    checked = pseudonymise(checked, spec.pii, key)
    data_cols = [c for c in checked.columns if c not in META + ["_errors"]]
    good = checked.where(F.size("_errors") == 0).select(*data_cols, *META)
    good = good.withColumn("is_deleted", F.lit(False)).withColumn("deleted_on", F.lit(None).cast("date"))
    bad = quarantine_rows(checked, spec.name, spec.key, data_cols, META, F.lit(spec.source.replace("__", ".", 1)),
                          F.lit(None), spec.rules, row_columns, spec.pii)
    deleted = bronze_batch.where(F.col("_op") == "D").select(spec.key, "_logical_date")
    return SilverBatch(good, bad, deleted)
