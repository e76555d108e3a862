"""Lake core on real Spark + Delta: idempotent writes, an independent reader, restore, keyed pseudonyms."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pyarrow as pa
import pytest
from pyspark.sql import functions as F

from redcloud.lake import DeltaDataSet, Lake
from spark_jobs.silver.common import hmac_sha256, id_check_ok, mask


def _rows(df):
    return sorted(tuple(r) for r in df.collect())


@pytest.fixture()
def lake(tmp_path):
    return Lake(tmp_path / "lake")


def test_spark_writes_delta_that_delta_rs_reads_back(spark, lake):
    from deltalake import DeltaTable

    df = spark.createDataFrame(
        [(1, "中共贵阳市南明区委员会", dt.date(2025, 1, 2), 3.5), (2, "青岩镇党委", dt.date(2025, 1, 3), None)],
        "org_id long, org_name string, day date, score double")
    ds = DeltaDataSet("roundtrip", "gold", df, mode="overwrite")
    lake.write(spark, ds)
    t = DeltaTable(lake.path("gold", "roundtrip"))
    arrow = t.to_pyarrow_table()
    assert arrow.num_rows == 2
    assert arrow.schema.field("org_id").type == pa.int64()
    assert arrow.schema.field("org_name").type in (pa.string(), pa.large_string(), pa.string_view())
    assert arrow.schema.field("day").type == pa.date32()
    assert sorted(arrow.column("org_name").to_pylist()) == sorted(["中共贵阳市南明区委员会", "青岩镇党委"])
    assert t.version() == lake.version("gold", "roundtrip") and lake.count("gold", "roundtrip") == 2
    assert lake.tables("gold") == ["roundtrip"] and lake.exists("gold", "roundtrip")
    assert lake.pandas("gold", "roundtrip", ["day"], filters=[("org_id", "=", 2)]).day.tolist() == [dt.date(2025, 1, 3)]


def test_replace_partition_rewrites_only_its_date(spark, lake):
    d1, d2 = dt.date(2025, 3, 1), dt.date(2025, 3, 2)
    mk = lambda day, vals: spark.createDataFrame([(v, day) for v in vals], "v long, _logical_date date")  # noqa: E731
    for day, vals in ((d1, [1, 2, 3]), (d2, [10, 20])):
        lake.write(spark, DeltaDataSet("rp", "bronze", mk(day, vals), mode="replace_partition",
                                       partition_col="_logical_date", partition_value=day))
    before = _rows(lake.read(spark, "bronze", "rp"))
    # rerun of d1 with the same rows: identical table
    lake.write(spark, DeltaDataSet("rp", "bronze", mk(d1, [1, 2, 3]), mode="replace_partition",
                                   partition_col="_logical_date", partition_value=d1))
    assert _rows(lake.read(spark, "bronze", "rp")) == before
    # backfill of d1 with different rows: d2 untouched
    lake.write(spark, DeltaDataSet("rp", "bronze", mk(d1, [7]), mode="replace_partition",
                                   partition_col="_logical_date", partition_value=d1))
    after = lake.read(spark, "bronze", "rp")
    assert _rows(after.where(F.col("_logical_date") == d2)) == [(10, d2), (20, d2)]
    assert _rows(after.where(F.col("_logical_date") == d1)) == [(7, d1)]


def test_merge_by_key_is_idempotent(spark, lake):
    a = spark.createDataFrame([(1, "a"), (2, "b")], "k long, v string")
    lake.write(spark, DeltaDataSet("mg", "silver", a, mode="merge", keys=["k"]))
    lake.write(spark, DeltaDataSet("mg", "silver", a, mode="merge", keys=["k"]))
    assert _rows(lake.read(spark, "silver", "mg")) == [(1, "a"), (2, "b")]
    b = spark.createDataFrame([(2, "B"), (3, "c")], "k long, v string")
    lake.write(spark, DeltaDataSet("mg", "silver", b, mode="merge", keys=["k"]))
    assert _rows(lake.read(spark, "silver", "mg")) == [(1, "a"), (2, "B"), (3, "c")]


def test_spark_hmac_equals_python_hmac_and_masks(spark):
    key = b"test-key-\x00\xff" * 3
    values = ["520102199001011234", "13812345678", "汉字也可以"]
    df = spark.createDataFrame([(v,) for v in values] + [(None,)], "v string")
    got = df.select("v", hmac_sha256(F.col("v"), key).alias("h")).collect()
    for row in got:
        if row.v is None:
            assert row.h is None
        else:
            assert row.h == hmac.new(key, row.v.encode(), hashlib.sha256).hexdigest()
    m = spark.createDataFrame([("520102199001011234", "13812345678")], "i string, p string").select(
        mask(F.col("i"), "id_number").alias("i"), mask(F.col("p"), "phone").alias("p")).first()
    assert m.i == "520102********1234" and m.p == "138****5678"


def test_id_check_digit_rule(spark):
    good = "11010519491231002X"  # the standard's worked example
    df = spark.createDataFrame([(good,), ("110105194912310021",), ("11010519491231002",), ("1101051949123100XX",)],
                               "id_number string")
    assert [r.ok for r in df.select(id_check_ok("id_number").alias("ok")).collect()] == [True, False, False, False]


def test_restore_puts_a_table_back_and_removes_a_new_one(spark, lake):
    a = spark.createDataFrame([(1, "a")], "k long, v string")
    lake.write(spark, DeltaDataSet("t", "gold", a))
    v0 = lake.version("gold", "t")
    lake.write(spark, DeltaDataSet("t", "gold", spark.createDataFrame([(9, "bad")], "k long, v string")))
    lake.write(spark, DeltaDataSet("new", "gold", a))
    lake.restore(spark, "gold", "t", v0)
    lake.restore(spark, "gold", "new", None)
    assert _rows(lake.read(spark, "gold", "t")) == [(1, "a")]
    assert not lake.exists("gold", "new") and lake.tables("gold") == ["t"]
    lake.restore(spark, "gold", "t", lake.version("gold", "t"))   # already there: no new version
    assert lake.version("gold", "t") == v0 + 2


def test_arrow_writes_merge_by_key(lake):
    import pyarrow as pa

    t = pa.table({"k": ["a", "b"], "v": [1, 2]})
    assert lake.merge_arrow("gold", "m", t, "k") == 2
    assert lake.merge_arrow("gold", "m", pa.table({"k": ["b", "c"], "v": [20, 3]}), "k", insert_only=True) == 1
    assert lake.merge_arrow("gold", "m", pa.table({"k": ["a"], "v": [10]}), "k") == 0
    assert sorted(lake.pandas("gold", "m").itertuples(index=False, name=None)) == [("a", 10), ("b", 2), ("c", 3)]


def test_arrow_filters_on_a_boolean_column_find_the_rows(spark, lake):
    """Spark writes no min/max statistics for booleans and delta-rs skips files without them: a
    ``("flag", "=", True)`` filter must still return the flagged rows (alerts read ``reminder_due`` so)."""
    df = spark.createDataFrame([(i, i % 3 == 0, dt.date(2025, 12, 30 + i % 2)) for i in range(12)],
                               "id long, due boolean, day date")
    lake.write(spark, DeltaDataSet("flags", "gold", df, mode="overwrite"))
    got = lake.pandas("gold", "flags", ["id"], filters=[("due", "=", True)])
    assert sorted(got.id) == [0, 3, 6, 9] and list(got.columns) == ["id"]
    got = lake.pandas("gold", "flags", ["id"], filters=[("day", "=", dt.date(2025, 12, 31)), ("due", "=", False)])
    assert sorted(got.id) == [1, 5, 7, 11]
    with pytest.raises(ValueError, match="boolean column 'due'"):
        lake.pandas("gold", "flags", filters=[("due", ">", False)])
