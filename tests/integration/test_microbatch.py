"""The 15-minute micro-batch end to end: real PostgreSQL (a copy of the test city's app database),
a copy of the city lake, the SMTP sink. On the 调休 Sunday 2026-01-04 (a working day) cadres answer
during the day, one answer of the day before arrives late and another is deleted at the source, and
some 驻村 cadres record their day's work:

- a morning micro-batch brings them through bronze, silver and gold, and sends nothing (before
  ``[alerts] same_day_reminder_hour``);
- the 16:00 micro-batch sends the day's 学习问答 reminders to exactly the obligated cadres who have
  not answered yet, by e-mail, the same day; running it again sends nothing new;
- the 驻村 records are in ``fct_village_work_daily`` from the morning batch, and the 16:00 batch
  reminds exactly the assignments whose gap reached ``[rules] village_reminder_after``;
- the incremental ``fct_learning_daily`` and ``fct_village_work_daily`` equal the full rebuild of the
  same lake, row for row;
- the day's batches reconcile: source = bronze, bronze = silver + quarantine.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import D1, D2, free_port, make_ctx
from lakes import copy_lake

from redcloud import workdays
from redcloud.lake import Lake
from redcloud.services import postgres, spark_connect

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

D3 = dt.date(2026, 1, 4)   # 调休: the Sunday after New Year 2026 is a working day
DB = "rc_test_mb_app"
COLS = ["cadre_id", "member_id", "work_date", "answered", "answers", "miss_streak", "miss_streak_start", "is_obligated",
        "reminder_due", "escalation_due", "escalated_on"]


def _answer(member_id: int, day: dt.date, at: dt.datetime) -> None:
    postgres.execute(DB, "insert into learning_answers (answer_id, member_id, answer_date, answered_at, questions, correct, score, "
                     "updated_at) select max(answer_id) + 1, %s, %s, %s, 5, 4, 80, %s from learning_answers",
                     member_id, day, at, at)


def _record(row, day: dt.date, at: dt.datetime) -> None:
    """A 每日工作记实 of the assignment ``row`` (a gold row) on ``day``."""
    postgres.execute(DB, "insert into village_work_records (record_id, assignment_id, cadre_id, village_org_id, work_date, "
                     "content, photo_count, signed_in, sign_in_at, updated_at) select max(record_id) + 1, %s, %s, %s, %s, "
                     "'走访农户', 2, true, %s, %s from village_work_records",
                     int(row.assignment_id), int(row.cadre_id), int(row.village_org_id), day, at, at)


def _mails_to(folder: Path) -> dict[str, str]:
    """Message id -> recipient of every mail in the sink."""
    out = {}
    for f in folder.glob("*.eml*"):
        m = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
        out[m["Message-ID"].strip("<>").split("@")[0]] = str(m["To"])
    return out


@pytest.fixture(scope="module")
def mb(city_lake, tmp_path_factory):
    """Settings on a copy of the city lake whose app source is a private copy of the app database."""
    postgres.copy_database("rc_test_app", DB)
    url = city_lake.settings.sources.app_url.replace("rc_test_app", DB)
    yield copy_lake(city_lake, tmp_path_factory.mktemp("microbatch"), sources={"app_url": url})
    postgres.drop_database(DB)


def test_micro_batches_bring_the_day_in_and_remind_the_same_day(mb, spark, smtp_sink):
    from redcloud.stages import gold, microbatch

    assert workdays.is_workday(D3) and D3.weekday() == 6
    lake = Lake(mb.paths.lake_root)
    ctx = make_ctx(mb, D3, spark, "test__microbatch")
    before = lake.pandas("gold", "fct_learning_daily", COLS, filters=[("work_date", ">=", D1)])
    d2 = before[(before.work_date == D2) & before.is_obligated].sort_values("cadre_id")
    silent = d2[~d2.answered]
    single = d2[d2.answers == 1]
    assert len(silent) >= 5 and len(single) >= 1, (len(silent), len(single))
    early = [int(m) for m in silent.member_id[:3]]          # answer on D3 in the morning
    later = int(silent.member_id.iloc[3])                    # answers on D3 after lunch
    late_d2 = int(silent.member_id.iloc[4])                  # D2's answer reaches the app server on D3
    gone = int(single.member_id.iloc[0])                     # D2's only answer deleted at the source on D3
    for m in early:
        _answer(m, D3, dt.datetime.combine(D3, dt.time(9, 30)))
    _answer(late_d2, D2, dt.datetime.combine(D3, dt.time(8, 45)))
    postgres.execute(DB, "delete from learning_answers where member_id = %s and answer_date = %s", gone, D2)
    vd2 = lake.pandas("gold", "fct_village_work_daily", filters=[("work_date", "=", D2)]).sort_values("assignment_id")
    assert len(vd2) >= 4 and vd2.reminder_due.any(), (len(vd2), vd2.reminder_due.sum())
    writers = pd.concat([vd2[vd2.reminder_due][:1], vd2[~vd2.reminder_due][:2]])   # one whose gap reached the rule
    for row in writers.itertuples():
        _record(row, D3, dt.datetime.combine(D3, dt.time(8, 50)))
    recording = [int(a) for a in writers.assignment_id]

    # the morning batch: bronze -> silver -> gold, nothing sent
    outbox0 = lake.pandas("ops", "alert_outbox", ["message_id"]) if lake.exists("ops", "alert_outbox") else None
    r1 = microbatch.run(ctx, dt.datetime.combine(D3, dt.time(11)))
    assert r1["alerts"] is None
    assert r1["gold"]["fct_learning_daily"]["from_date"] == D2.isoformat()
    assert {D2.isoformat(), D3.isoformat()} <= set(r1["touched_dates"]["learning_answers"])
    assert r1["touched_dates"]["village_work_records"] == [D3.isoformat()]
    # the day after the table's last day (D2): the 元旦 holidays have no rows, D3 is the first recomputed
    assert r1["gold"]["fct_village_work_daily"]["from_date"] == (D2 + dt.timedelta(days=1)).isoformat()
    assert r1["silver"]["quality"]["passed"] and r1["gold"]["quality"]["passed"]
    # the main job's record of what the facts were built from is carried on: the nightly run updates them
    assert r1["gold"]["recorded"] == sorted(microbatch.FACTS)
    day = lake.pandas("gold", "fct_learning_daily", COLS, filters=[("work_date", ">=", D2)])
    by_member = {(int(r.member_id), r.work_date): r for r in day.itertuples()}
    assert all(by_member[(m, D3)].answered for m in early)
    assert not by_member[(later, D3)].answered
    assert by_member[(late_d2, D2)].answered and not by_member[(gone, D2)].answered
    assert len(lake.pandas("ops", "alert_outbox", ["message_id"])) == len(outbox0)
    vd3 = lake.pandas("gold", "fct_village_work_daily", filters=[("work_date", "=", D3)]).set_index("assignment_id")
    assert all(vd3.loc[a, "has_record"] and vd3.loc[a, "days_without_record"] == 0 for a in recording)

    # after lunch one more answer; the 16:00 batch reminds everyone obligated who has not answered
    _answer(later, D3, dt.datetime.combine(D3, dt.time(13, 10)))
    r2 = microbatch.run(ctx, dt.datetime.combine(D3, dt.time(16)))
    assert r2["alerts"] is not None and r2["alerts"]["delivery"]["failed"] == 0
    today = lake.pandas("gold", "fct_learning_daily", COLS, filters=[("work_date", "=", D3)])
    due = set(today.loc[today.reminder_due, "cadre_id"].astype(int))
    answered = set(today.loc[today.answered, "member_id"].astype(int))
    assert set(early) | {later} <= answered and due
    assert due == set(today.loc[today.is_obligated & ~today.answered, "cadre_id"].astype(int))
    alerts = lake.pandas("gold", "alerts")
    reminded = alerts[(alerts.rule == "learning_reminder") & (alerts.last_seen == D3) & (alerts.status == "open")]
    assert set(reminded.subject_id.astype(int)) == due
    ob = lake.pandas("ops", "alert_outbox")
    mine = ob[ob.alert_id.isin(reminded.alert_id) & (ob.created_for_date == D3)]
    assert set(mine.recipient) == {f"cadre-{c}@{mb.alerts.mail_domain}" for c in due}
    sink = _mails_to(smtp_sink)
    missing = [r for m, r in zip(mine.message_id, mine.recipient) if r not in sink.get(m, "")]
    assert not missing, f"reminders not in the SMTP sink: {missing[:5]}"
    # 驻村: the day's gaps that reached the rule are reminded the same day; who recorded is not
    vdue = set(vd3.index[vd3.reminder_due].astype(int))
    assert vdue and not vdue & set(recording)
    village = alerts[(alerts.rule == "village_reminder") & (alerts.last_seen == D3) & (alerts.status == "open")]
    assert set(village.subject_id.astype(int)) == vdue

    # a later batch of the same day, through the command Airflow runs, on the warm engine (a Spark Connect
    # server: the task starts no JVM of its own), sends nothing again
    engine = mb.replace(spark={"connect_port": free_port()})
    started = spark_connect.start(engine)
    try:
        warmed = re.search(r"\((\d+) lake tables read", started)   # the warm-up read the copy's tables
        assert warmed and int(warmed.group(1)) >= len(Lake(mb.paths.lake_root).tables("gold")) > 0, started
        env = {**os.environ, "REDCLOUD_PATHS__LAKE_ROOT": mb.paths.lake_root, "REDCLOUD_PATHS__RUN_DIR": mb.paths.run_dir,
               "REDCLOUD_SOURCES__APP_URL": mb.sources.app_url, "REDCLOUD_SPARK__REMOTE": spark_connect.url(engine)}
        cli = subprocess.run([sys.executable, "-m", "redcloud.cli", "microbatch", "--date", D3.isoformat(), "--at", "16:15",
                              "--run-id", "test__microbatch_cli", "--engine", "connect"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=900)
    finally:
        spark_connect.stop(engine)
    assert cli.returncode == 0, cli.stderr[-3000:]
    r3 = json.loads(cli.stdout)
    assert r3["engine"] == spark_connect.url(engine)
    assert r3["alerts"]["messages_new"] == 0 and len(lake.pandas("ops", "alert_outbox", ["message_id"])) == len(ob)
    # the day so far is the batch: the late answer of D2 is still in it, so D2's rows are recomputed again
    assert r3["gold"]["fct_learning_daily"]["from_date"] == D2.isoformat()
    assert r3["gold"]["fct_learning_daily"]["rows_replaced"] == len(lake.pandas("gold", "fct_learning_daily", ["cadre_id"],
                                                          filters=[("work_date", ">=", D2)]))

    # the day's batches reconcile (one row per bronze table and date)
    rec = pd.DataFrame(lake.pandas("ops", "reconciliation"))
    rec = rec[(rec.logical_date == D3) & rec.bronze_table.isin(["app__learning_answers", "app__app_users",
                                                                 "app__village_work_records"])]
    assert len(rec) == 3
    assert (rec.source_rows == rec.bronze_rows).all()
    assert (rec.bronze_rows == rec.silver_rows + rec.quarantine_rows).all()

    # the incremental tables equal the full rebuild of the same lake for the same day
    keys = {"fct_learning_daily": ["cadre_id", "work_date"], "fct_village_work_daily": ["assignment_id", "work_date"]}
    inc = {t: lake.pandas("gold", t).sort_values(k).reset_index(drop=True) for t, k in keys.items()}
    gold.run(ctx, only=set(keys))
    for t, k in keys.items():
        full = lake.pandas("gold", t).sort_values(k).reset_index(drop=True)
        assert len(full) == len(inc[t]) and inc[t].work_date.max() == D3, t
        pd.testing.assert_frame_equal(inc[t][full.columns], full, obj=t)
