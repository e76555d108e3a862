"""Quarantine rows say where a bad row came from, which rule it broke and the offending value, in
the same columns for every source (silver quarantine/<entity> and bronze quarantine/ironcage__rejects)."""

from __future__ import annotations

import datetime as dt

from helpers import D2

from redcloud.sources import ironcage as IC
from spark_jobs.silver.common import QUARANTINE_SHARED
from spark_jobs.silver.external import BY_NAME, build_external

KEY = b"k" * 32


def _duty_batch(spark, rows: list[dict]):
    cols = IC.columns("duty_records")
    data = [{c: r.get(c) for c in cols} | {"_file": "duty_records_花溪区审计局_20251231.csv", "_line": i + 2,
                                            "_file_sha256": "x", "_encoding": "gbk", "_batch_id": "b",
                                            "_logical_date": D2, "_row_hash": f"h{i}", "_op": "U",
                                            "_loaded_at": dt.datetime(2026, 1, 1)}
            for i, r in enumerate(rows)]
    schema = (", ".join(f"{c} string" for c in cols) + ", _file string, _line long, _file_sha256 string, "
              "_encoding string, _batch_id string, _logical_date date, _row_hash string, _op string, "
              "_loaded_at timestamp")
    return spark.createDataFrame(data, schema)


def test_silver_quarantine_names_file_line_rule_and_value(spark):
    good = dict(record_id="JS1", dept_code="D1", cadre_name="龚淼鑫", duty_month="2025-12-01", target_count="10",
                completed_count="9", review_score="95.5")
    too_many = good | {"record_id": "JS2", "completed_count": "12"}
    bad_id = good | {"record_id": "JS3", "cadre_id_number": "520102199003078516"}   # wrong check digit
    batch = _duty_batch(spark, [good, too_many, bad_id])
    eb = build_external(batch, BY_NAME["duty_records"], {}, KEY, None)
    q = {r.record_key: r for r in eb.bad.collect()}
    assert set(QUARANTINE_SHARED) <= set(eb.bad.columns)
    assert set(q) == {"JS2", "JS3"}
    assert (q["JS2"].source, q["JS2"].line, q["JS2"].rule) == ("duty_records_花溪区审计局_20251231.csv", 3, "invalid_value")
    assert q["JS2"].value == "target_count=10, completed_count=12"
    assert (q["JS3"].line, q["JS3"].rule) == (4, "invalid_id_check_digit")
    # personal data appears masked, never in plain text
    assert "520102199003078516" not in q["JS3"].value and q["JS3"].value.startswith("cadre_id_number=")
