"""Hand-built silver and gold tables for the quality-gate tests: one planted failure of each kind."""

from __future__ import annotations

import datetime as dt
import hashlib

D = dt.date(2025, 12, 31)
PLAIN_ID = "520102199003078515"


def _hex(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


def _silver_meta(i: int, deleted: bool = False) -> dict:
    return dict(updated_at=dt.datetime(2025, 12, 30, 9, 0, i % 60), _batch_id="org.x@2025-12-31", _logical_date=D,
                _row_hash=_hex(f"row{i}"), is_deleted=deleted, deleted_on=D if deleted else None)


SILVER_META_DDL = ("updated_at timestamp, _batch_id string, _logical_date date, _row_hash string, "
                   "is_deleted boolean, deleted_on date")

MEMBER_DDL = ("member_id long, member_name string, gender string, ethnicity string, birth_date date, education string, "
              "occupation string, join_date date, full_member_date date, party_status string, "
              "membership_status string, is_mobile boolean, org_id long, id_number_pseudonym string, "
              "id_number_masked string, phone_pseudonym string, phone_masked string, " + SILVER_META_DDL)


def _member(i: int, member_id: int, deleted: bool = False, **over) -> dict:
    row = dict(member_id=member_id, member_name=f"张{i}", gender="男", ethnicity="汉族", birth_date=dt.date(1980, 1, i),
               education="大学本科", occupation="专业技术人员", join_date=dt.date(2005, 7, 1),
               full_member_date=dt.date(2006, 7, 1), party_status="正式党员", membership_status="在册", is_mobile=False,
               org_id=3, id_number_pseudonym=_hex(f"id{i}"), id_number_masked=f"520102********{1000 + i}",
               phone_pseudonym=_hex(f"ph{i}"), phone_masked=f"139****{1000 + i}", **_silver_meta(i, deleted))
    row.update(over)
    return row


def _members(spark):
    rows = [
        _member(1, 1),
        _member(2, 2, occupation=f"身份证{PLAIN_ID}"),            # a plain 身份证号 inside a free-text column
        _member(3, 3), _member(4, 3),                              # duplicate key, both current
        _member(5, 4), _member(6, 4, deleted=True, id_number_pseudonym=_hex("id5")),  # duplicate, one deleted: fine
        _member(7, 5, gender="未知"),                               # unknown enum value
        _member(8, 6, party_status="预备党员", full_member_date=None),
    ]
    return spark.createDataFrame(rows, MEMBER_DDL)


def _organizations(spark):
    ddl = ("org_id long, org_code string, org_name string, parent_org_id long, org_level string, org_type string, "
           "region_code string, established_date date, " + SILVER_META_DDL)
    rows = [dict(org_id=1, org_code="GY0000001", org_name="中共贵阳市委员会", parent_org_id=None, org_level="市委",
                 org_type="党委", region_code="520100", established_date=dt.date(1950, 1, 1), **_silver_meta(1)),
            dict(org_id=2, org_code="GY0000002", org_name="中共贵阳市南明区委员会", parent_org_id=1, org_level="区县委",
                 org_type="党委", region_code="520102", established_date=dt.date(1955, 1, 1), **_silver_meta(2)),
            dict(org_id=3, org_code="GY0000003", org_name="南明区某社区党支部委员会", parent_org_id=2, org_level="党支部",
                 org_type="社区", region_code="520102", established_date=dt.date(2001, 1, 1), **_silver_meta(3))]
    return spark.createDataFrame(rows, ddl)


def _fct_member_month(spark):
    ddl = ("member_id long, month date, org_id long, login_days long, learning_days long, learning_points long, "
           "articles_read long, amount_due double, amount_paid double, dues_on_time boolean, dues_days_late int, "
           "volunteer_records long, volunteer_hours double, meetings_expected long, meetings_attended long, "
           "meetings_excused long, attendance_rate double")

    def row(mid, month, attended=1, expected=2, rate=None):
        return dict(member_id=mid, month=month, org_id=3, login_days=10, learning_days=5, learning_points=40,
                    articles_read=8, amount_due=20.0, amount_paid=20.0, dues_on_time=True, dues_days_late=0,
                    volunteer_records=1, volunteer_hours=2.0, meetings_expected=expected, meetings_attended=attended,
                    meetings_excused=0, attendance_rate=attended / expected if rate is None else rate)

    rows = [row(1, dt.date(2025, 11, 1)), row(1, dt.date(2025, 12, 1)), row(6, dt.date(2025, 12, 1), 2, 2),
            row(7, dt.date(2025, 11, 1), 1, 2, rate=1.5)]  # out-of-range rate
    return spark.createDataFrame(rows, ddl)


def planted_ctx(spark, settings, base):
    """A run context on a lake under ``base`` holding the planted silver members and organisations
    and the gold member-month fact."""
    from helpers import make_ctx, settings_for

    from redcloud.lake import DeltaDataSet

    ctx = make_ctx(settings_for(base, settings), D, spark)
    for layer, name, df in (("silver", "members", _members(spark)),
                            ("silver", "organizations", _organizations(spark)),
                            ("gold", "fct_member_month", _fct_member_month(spark))):
        ctx.lake.write(spark, DeltaDataSet(name, layer, df))
    return ctx
