"""DuckDB SQL reference of the silver/gold transformations, over the same bronze Delta tables.

What the hardware can do for the same work, so the Spark path's cost is a ratio, not a feeling.
Implemented (a representative subset of the daily run, written independently in DuckDB SQL from
the documented semantics; the declarative silver column lists and rule conditions of
``spark_jobs/silver/entities.py`` are reused as data, translated to DuckDB where the dialects differ):

- the 17 organisation-database silver entities: typing (casts in Asia/Shanghai), validation rules,
  reference checks (keys loaded into the target bronze table up to the batch's date), duplicate
  natural keys (身份证号 HMAC), HMAC-SHA256 pseudonyms and masks, batch-by-batch merge by key
  (a version never overwrites a newer one), source deletes; plus their quarantine rows;
- ``silver/member_status_history`` (SCD2 from the change log);
- gold ``dim_organization``, ``dim_member``, ``fct_member_month``, ``fct_meeting_signals`` (attendance
  counts, branch size on the roll, identical-attendance signature; the calendar comes from the
  same :mod:`redcloud.workdays`) and ``fct_branch_quarter``.

Inputs: the current version of each bronze Delta table (files listed by ``deltalake``, scanned as
Arrow by DuckDB; DuckDB's own ``delta`` extension cannot be downloaded offline). Reading is timed
apart from transforming. ``compare=True`` then checks every table row-for-row (EXCEPT ALL both
ways over a canonical text form of each row) against the Spark tables of the same lake.

    .run/venv/pipeline/bin/python -m benchmarks.reference_duckdb --lake .run/bench/10000/lake --date 2025-12-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import re
import time
from pathlib import Path

from spark_jobs.silver.entities import ENTITIES

TZ = "Asia/Shanghai"
META = ["_batch_id", "_logical_date", "_row_hash"]
ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
ID_CHECK = "10X98765432"


def _hmac_parts(key: bytes) -> tuple[str, str]:
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key).hex(), bytes(b ^ 0x5C for b in key).hex()


def _duck(expr: str) -> str:
    """Spark SQL condition/column -> DuckDB (only the constructs the entity specs use)."""
    expr = re.sub(r"add_months\(([^,]+),\s*(\d+)\)", r"(\1 + to_months(\2))", expr)
    expr = re.sub(r"\bto_date\(([^()]+)\)", r"cast(\1 as date)", expr)
    return expr


def _id_check_ok(c: str) -> str:
    u = f"upper({c})"
    total = " + ".join(f"try_cast(substr({u}, {i + 1}, 1) as integer) * {w}" for i, w in enumerate(ID_WEIGHTS))
    return (f"(length({u}) = 18 and regexp_full_match({u}, '[0-9]{{17}}[0-9X]') "
            f"and substr({u}, 18, 1) = substr('{ID_CHECK}', (({total}) % 11) + 1, 1))")


def _id_birth(c: str) -> str:
    return f"try_strptime(substr({c}, 7, 8), '%Y%m%d')::date"


class Reference:
    def __init__(self, lake_root: Path, day: dt.date, key: bytes):
        import duckdb

        self.lake = Path(lake_root)
        self.day = day
        self.con = duckdb.connect()
        self.con.execute(f"set TimeZone = '{TZ}'")
        self.con.execute("set threads = 2")
        self.ipad, self.opad = _hmac_parts(key)
        self.timings: dict[str, float] = {}

    def q(self, sql: str) -> list[tuple]:
        """Run one statement and fetch everything (DuckDB 2 refuses new work while a result is open)."""
        return self.con.execute(sql).fetchall()

    def hmac(self, v: str) -> str:
        inner = f"unhex(sha256(unhex('{self.ipad}') || encode({v})))"
        return f"case when {v} is null then null else sha256(unhex('{self.opad}') || {inner}) end"

    # ------------------------------------------------------------------ input
    def read_bronze(self) -> None:
        from deltalake import DeltaTable

        t0 = time.perf_counter()
        names = sorted({e.source for e in ENTITIES})
        for name in names:
            path = self.lake / "bronze" / name
            tbl = DeltaTable(str(path)).to_pyarrow_table()
            # bronze timestamps are UTC instants; keep them as instants (timestamptz)
            self.con.register("_arrow_in", tbl)
            self.q(f"create or replace table b_{name} as select * from _arrow_in")
            self.con.unregister("_arrow_in")
            del tbl
        self.timings["read"] = time.perf_counter() - t0
        self.bronze_rows = {n: self.q(f"select count(*) from b_{n}")[0][0] for n in names}

    # ------------------------------------------------------------------ silver
    def silver_entities(self) -> None:
        t0 = time.perf_counter()
        # every batch date of any source (a source may have no rows on a day another one has)
        union = " union ".join(f"select distinct _logical_date from b_{n}" for n in sorted({e.source for e in ENTITIES}))
        days = [r[0] for r in self.q(f"select distinct _logical_date from ({union}) "
                                     f"where _logical_date <= date '{self.day}' order by 1")]
        for spec in ENTITIES:
            for d in days:
                self._entity_batch(spec, d)
        self.timings["silver_entities"] = time.perf_counter() - t0

    def _entity_batch(self, spec, d: dt.date) -> None:
        src = f"b_{spec.source}"
        cols = ", ".join(_duck(c) for c in spec.columns)
        has_id = any(c.strip() == "id_number" for c in spec.columns)
        extra = f", {_id_check_ok('id_number')} as id_check_ok, {_id_birth('id_number')} as id_birth" if has_id else ""
        self.q(f"""create or replace temp table _rows as
                   select {cols}, {', '.join(META)}{extra}
                   from {src} where _logical_date = date '{d}' and _op = 'U'""")
        checks = [f"case when coalesce(({_duck(r.check)}), false) then null else '{r.name}: {r.message}' end"
                  for r in spec.rules]
        joins = []
        for i, ref in enumerate(spec.refs):
            joins.append(f"""left join (select distinct {ref.key} as _k from b_{ref.target}
                                        where _logical_date <= date '{d}' and _op = 'U') _r{i}
                             on r.{ref.column} = _r{i}._k""")
            ok = f"_r{i}._k is not null" + (f" or r.{ref.column} is null" if ref.nullable else "")
            checks.append(f"case when {ok} then null else 'orphan_reference: {ref.column}=' || "
                          f"coalesce(cast(r.{ref.column} as varchar), 'NULL') || ' not found in {ref.target}' end")
        errors = f"list_filter([{', '.join(checks)}], lambda x: x is not null)" if checks else "[]::varchar[]"
        self.q(f"create or replace temp table _checked as select r.*, {errors} as _errors from _rows r {' '.join(joins)}")
        exists = self._exists(f"s_{spec.name}")
        if spec.dedupe_on:
            nat = f"{spec.dedupe_on}_pseudonym"
            self.q(f"alter table _checked add column {nat} varchar")
            self.q(f"update _checked set {nat} = {self.hmac(f'upper(trim({spec.dedupe_on}))')}")
            prior = f"union all select {spec.key}, {nat} from s_{spec.name}" if exists else ""
            self.q(f"""create or replace temp table _owner as
                       select {nat}, min({spec.key}) as _owner from (
                         select {spec.key}, {nat} from _checked where {nat} is not null {prior}) group by {nat}""")
            self.q(f"""update _checked c set _errors = list_distinct(list_concat(c._errors,
                         ['duplicate_record: same {nat} as {spec.key}=' || cast(o._owner as varchar)]))
                       from _owner o where o.{nat} = c.{nat} and o._owner <> c.{spec.key}""")
            self.q(f"alter table _checked drop column {nat}")
        if has_id:
            self.q("alter table _checked drop column id_check_ok")
            self.q("alter table _checked drop column id_birth")
        for col, kind in spec.pii.items():
            v = f"upper(trim({col}))" if kind == "id_number" else f"trim({col})"
            if kind == "id_number":
                masked = f"case when {v} is null then null else substr({v}, 1, 6) || '********' || right({v}, 4) end"
            else:
                masked = f"case when {v} is null then null else substr({v}, 1, 3) || '****' || right({v}, 4) end"
            self.q(f"alter table _checked add column {col}_pseudonym varchar")
            self.q(f"alter table _checked add column {col}_masked varchar")
            self.q(f"update _checked set {col}_pseudonym = {self.hmac(v)}, {col}_masked = {masked}")
            self.q(f"alter table _checked drop column {col}")
        data_cols = [c for c in self._columns("_checked") if c not in META + ["_errors"]]
        sel = ", ".join(data_cols + META)
        self.q(f"""create or replace temp table _good as select {sel}, false as is_deleted, null::date as deleted_on
                   from _checked where len(_errors) = 0""")
        self.q(f"""create or replace temp table _bad as select '{spec.name}' as entity,
                     cast({spec.key} as varchar) as record_key, _errors as reasons, _batch_id, _row_hash,
                     date '{d}' as _logical_date from _checked where len(_errors) > 0""")
        if not exists:
            self.q(f"create table s_{spec.name} as select * from _good")
            self.q("create table q_all as select * from _bad" if not self._exists("q_all")
                   else "insert into q_all select * from _bad")
        else:
            k, v = spec.key, spec.version_col
            # a version never overwrites a newer one
            self.q(f"""delete from s_{spec.name} t using _good s where t.{k} = s.{k}
                         and (s.{v} > t.{v} or (s.{v} = t.{v} and s._logical_date >= t._logical_date))""")
            self.q(f"insert into s_{spec.name} select * from _good s where not exists "
                   f"(select 1 from s_{spec.name} t where t.{k} = s.{k})")
            self.q(f"delete from q_all where entity = '{spec.name}' and _logical_date = date '{d}'")
            self.q("insert into q_all select * from _bad")
        self.q(f"""update s_{spec.name} t set is_deleted = true, deleted_on = s._logical_date
                   from (select distinct {spec.key}, _logical_date from {src}
                         where _logical_date = date '{d}' and _op = 'D') s where t.{spec.key} = s.{spec.key}""")

    def member_status_history(self) -> None:
        t0 = time.perf_counter()
        d = f"date '{self.day}'"
        self.q(f"""create or replace table s_member_status_history as
        with m0 as (
          select member_id, join_date, full_member_date, party_status as _cur_party, org_id as _cur_org
          from s_members where not coalesce(is_deleted, false) and join_date <= {d} and join_date is not null),
        c as (
          select c.change_id, c.member_id, c.change_type, c.change_date, c.from_org_id, c.to_org_id, c.updated_at,
                 greatest(c.change_date, m0.join_date) as eff_date
          from s_member_status_changes c join m0 using (member_id)
          where not coalesce(c.is_deleted, false) and c.change_date <= {d}),
        first as (
          select member_id, case when change_type = '入党' then to_org_id when change_type = '转入' then from_org_id
                                 else coalesce(from_org_id, to_org_id) end as _first_org, true as _has_changes
          from c qualify row_number() over (partition by member_id order by eff_date, change_id) = 1),
        conf as (select distinct member_id, true as _has_zz from c where change_type = '转正'),
        m as (select * from m0 left join first using (member_id) left join conf using (member_id)),
        allev as (
          select member_id, join_date as eff_date, 0 as _prio, null::bigint as change_id, '在册' as membership_status,
                 case when full_member_date is null and _has_zz is null and _cur_party = '正式党员' then '正式党员'
                      else '预备党员' end as party_status,
                 false as is_mobile, case when _has_changes is null then _cur_org else _first_org end as org_id,
                 '入党' as opened_by, null::timestamptz as recorded_at
          from m
          union all
          select member_id, greatest(full_member_date, join_date), 1, null, null, '正式党员', null, null, '转正', null
          from m where full_member_date is not null and _has_zz is null
          union all
          select member_id, eff_date, 2, change_id,
                 case when change_type in ('入党', '转入') then '在册' when change_type = '转出' then '已转出'
                      when change_type = '去世' then '已去世' end,
                 case when change_type = '转正' then '正式党员' end,
                 case when change_type = '流动' then true end,
                 case when change_type in ('入党', '转入', '流动') then to_org_id when change_type = '转出' then from_org_id end,
                 change_type, updated_at
          from c),
        filled as (
          select member_id, eff_date as valid_from, _prio, change_id, opened_by, recorded_at,
                 last_value(membership_status ignore nulls) over w as membership_status,
                 last_value(party_status ignore nulls) over w as party_status,
                 last_value(is_mobile ignore nulls) over w as is_mobile,
                 last_value(org_id ignore nulls) over w as org_id
          from allev
          window w as (partition by member_id order by eff_date, _prio, change_id nulls first
                       rows between unbounded preceding and current row)),
        last_of_day as (
          select * from filled
          qualify row_number() over (partition by member_id, valid_from
                                     order by _prio desc nulls first, change_id desc nulls first) = 1),
        kept as (
          select * from (
            select *, (lag(1) over w is null
                       or membership_status is distinct from lag(membership_status) over w
                       or party_status is distinct from lag(party_status) over w
                       or is_mobile is distinct from lag(is_mobile) over w
                       or org_id is distinct from lag(org_id) over w) as _chg
            from last_of_day window w as (partition by member_id order by valid_from)) where _chg)
        select member_id, valid_from, lead(valid_from) over (partition by member_id order by valid_from) as valid_to,
               membership_status, party_status, is_mobile, org_id, opened_by, change_id as opened_by_change_id,
               recorded_at
        from kept""")
        self.q("alter table s_member_status_history add column is_current boolean")
        self.q(f"""update s_member_status_history set is_current =
                     valid_from <= {d} and (valid_to is null or valid_to > {d})""")
        self.timings["member_status_history"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ gold
    def dim_organization(self) -> None:
        t0 = time.perf_counter()
        self.q("""create or replace table g_dim_organization as
        with recursive base as (
          select org_id, org_code, org_name, parent_org_id, org_level, org_type, region_code, established_date
          from s_organizations where not is_deleted),
        walk(org_id, anc, step) as (
          select org_id, org_id, 0 from base
          union all
          select w.org_id, b.parent_org_id, w.step + 1 from walk w join base b on b.org_id = w.anc
          where b.parent_org_id is not null and w.step < 6 and b.parent_org_id in (select org_id from base)),
        paths as (select org_id, list(anc order by step desc) as path from walk group by org_id),
        anc as (
          select w.org_id,
                 max(case when a.org_level = '区县委' then a.org_id end) as county_org_id,
                 max(case when a.org_level = '区县委' then a.org_name end) as county_name,
                 max(case when a.org_level = '乡镇街道' then a.org_id end) as town_org_id,
                 max(case when a.org_level = '乡镇街道' then a.org_name end) as town_name
          from walk w join base a on a.org_id = w.anc group by w.org_id)
        select b.*, p.path, len(p.path) - 1 as depth, a.county_org_id, a.county_name, a.town_org_id, a.town_name
        from base b join paths p using (org_id) left join anc a using (org_id)""")
        self.timings["dim_organization"] = time.perf_counter() - t0

    def dim_member(self) -> None:
        t0 = time.perf_counter()
        d = f"date '{self.day}'"

        def months_between(a: str, b: str) -> str:  # Spark semantics (day fraction over 31 days)
            whole = f"(12 * (year({a}) - year({b})) + month({a}) - month({b}))"
            same = f"(day({a}) = day({b}) or ({a} = last_day({a}) and {b} = last_day({b})))"
            return f"(case when {same} then {whole} else {whole} + (day({a}) - day({b})) / 31.0 end)"

        def band(col: str, edges, labels) -> str:
            whens = " ".join(f"when {col} < {e} then '{lab}'" for e, lab in zip(edges, labels))
            return f"case {whens} else '{labels[-1]}' end"

        self.q(f"""create or replace table g_dim_member as
        with m as (
          select member_id, member_name, gender, ethnicity, birth_date, id_number_pseudonym, id_number_masked,
                 phone_masked, education, occupation, join_date, full_member_date, party_status, membership_status,
                 is_mobile, org_id,
                 cast(floor({months_between(d, 'birth_date')} / 12) as integer) as age,
                 cast(floor({months_between(d, 'join_date')} / 12) as integer) as years_in_party
          from s_members where not is_deleted)
        select m.*, {band('age', [31, 41, 51, 61, 71], ['30岁及以下', '31-40岁', '41-50岁', '51-60岁', '61-70岁', '71岁及以上'])} as age_band,
               {band('years_in_party', [5, 10, 20, 30, 50], ['5年以下', '5-9年', '10-19年', '20-29年', '30-49年', '50年及以上'])} as party_years_band,
               ethnicity <> '汉族' as is_minority,
               o.org_type as branch_type, o.county_org_id, o.county_name, o.town_org_id, o.town_name, {d} as as_of_date
        from m left join g_dim_organization o using (org_id)""")
        self.timings["dim_member"] = time.perf_counter() - t0

    def fct_member_month(self) -> None:
        t0 = time.perf_counter()
        self.q("""create or replace table g_fct_member_month as
        with act as (select member_id, activity_month as month, login_days, learning_days, learning_points, articles_read
                     from s_app_activity_monthly where not is_deleted),
        du as (select member_id, dues_month as month, amount_due, amount_paid,
                      (paid_date is not null and paid_date <= last_day(dues_month)) as dues_on_time,
                      case when paid_date is not null then greatest(0, datediff('day', last_day(dues_month), paid_date)) end
                        as dues_days_late
               from s_dues_payments where not is_deleted),
        vol as (select member_id, date_trunc('month', service_date)::date as month, count(*) as volunteer_records,
                       sum(hours) as volunteer_hours
                from s_volunteer_records where not is_deleted group by all),
        mt as (select meeting_id, date_trunc('month', meeting_date)::date as month from s_meetings where not is_deleted),
        att as (select a.member_id, mt.month, count(*) as meetings_expected,
                       sum(case when status = '出席' then 1 else 0 end) as meetings_attended,
                       sum(case when status = '请假' then 1 else 0 end) as meetings_excused
                from s_meeting_attendance a join mt using (meeting_id) where not a.is_deleted group by all),
        keys as (select member_id, month from act union select member_id, month from du
                 union select member_id, month from vol union select member_id, month from att),
        valid as (select member_id, org_id from s_members where not is_deleted)
        select k.member_id, k.month, v.org_id,
               coalesce(login_days, 0) as login_days, coalesce(learning_days, 0) as learning_days,
               coalesce(learning_points, 0) as learning_points, coalesce(articles_read, 0) as articles_read,
               amount_due, amount_paid, dues_on_time, dues_days_late,
               coalesce(volunteer_records, 0) as volunteer_records, coalesce(volunteer_hours, 0.0) as volunteer_hours,
               coalesce(meetings_expected, 0) as meetings_expected, coalesce(meetings_attended, 0) as meetings_attended,
               coalesce(meetings_excused, 0) as meetings_excused,
               case when coalesce(meetings_expected, 0) > 0 then meetings_attended / meetings_expected end as attendance_rate
        from keys k join valid v using (member_id) left join act using (member_id, month) left join du using (member_id, month)
             left join vol using (member_id, month) left join att using (member_id, month)""")
        self.timings["fct_member_month"] = time.perf_counter() - t0

    def calendar(self, start: dt.date) -> None:
        from redcloud import workdays

        rows, day = [], start
        while day <= self.day:
            wd = workdays.is_workday(day)
            rows.append(f"(date '{day}', {wd}, {workdays.is_holiday(day)}, {wd and day.weekday() >= 5})")
            day += dt.timedelta(days=1)
        self.q("create or replace table cal (cal_date date, is_workday boolean, is_public_holiday boolean, "
               "is_makeup_workday boolean)")
        self.q("insert into cal values " + ", ".join(rows))

    def fct_meeting_signals(self) -> None:
        t0 = time.perf_counter()
        from spark_jobs.gold.facts import first_known_day

        first = self.q("select min(meeting_date) from s_meetings where not coalesce(is_deleted, false)")[0][0]
        firsts = [self.q(f"select min({c}) from s_{t} where not coalesce(is_deleted, false)")[0][0]
                  for t, c in (("learning_answers", "answer_date"), ("village_work_records", "work_date"))]
        known = [x for x in [first, *firsts] if x is not None and x <= self.day]
        self.calendar(first_known_day(min(known) if known else dt.date(self.day.year, 1, 1), self.day))
        d = f"date '{self.day}'"
        self.q(f"""create or replace table g_fct_meeting_signals as
        with m as (select meeting_id, org_id, meeting_type, meeting_date, declared_attendance
                   from s_meetings where not coalesce(is_deleted, false) and meeting_date <= {d}),
        a as (select a.meeting_id, a.member_id, a.status from s_meeting_attendance a
              where not coalesce(a.is_deleted, false) and a.meeting_id in (select meeting_id from m)),
        agg as (select meeting_id, count(*) as attendance_rows,
                       sum(case when status = '出席' then 1 else 0 end) as attended_count,
                       sum(case when status = '请假' then 1 else 0 end) as excused_count,
                       sum(case when status = '缺席' then 1 else 0 end) as absent_count,
                       sha256(array_to_string(list_sort(list_distinct(list(cast(member_id as varchar) || ':' || status))), ','))
                         as attendance_signature
                from a group by meeting_id),
        roll as (select member_id, org_id as _org, valid_from, valid_to from s_member_status_history
                 where membership_status = '在册'),
        counts as (select m.meeting_id, count(distinct r.member_id) as branch_member_count from m join roll r
                   on m.org_id = r._org and m.meeting_date >= r.valid_from and (r.valid_to is null or m.meeting_date < r.valid_to)
                   group by m.meeting_id),
        j as (select m.*, coalesce(agg.attendance_rows, 0) as attendance_rows, coalesce(attended_count, 0) as attended_count,
                     coalesce(excused_count, 0) as excused_count, coalesce(absent_count, 0) as absent_count,
                     coalesce(branch_member_count, 0) as branch_member_count, attendance_signature,
                     c.is_workday, c.is_public_holiday, c.is_makeup_workday
              from m left join agg using (meeting_id) left join counts using (meeting_id)
                     left join cal c on c.cal_date = m.meeting_date),
        s as (select *,
                     attendance_signature is not null and row_number() over sw > 1 as identical_attendance,
                     first_value(meeting_id) over sw as _first_id
              from j window sw as (partition by org_id, attendance_signature order by meeting_date, meeting_id)),
        t as (select *, case when identical_attendance then _first_id end as identical_to_meeting_id,
                     identical_attendance and (excused_count + absent_count) > 0 and meeting_type <> '支委会'
                       as identical_attendance_nontrivial,
                     not is_workday as is_non_working_day,
                     declared_attendance > branch_member_count as declared_exceeds_members,
                     case when attendance_rows > 0 then attended_count / attendance_rows end as attendance_rate
              from s)
        select meeting_id, org_id, meeting_type, meeting_date, date_trunc('quarter', meeting_date)::date as quarter_start,
               declared_attendance, attendance_rows, attended_count, excused_count, absent_count, attendance_rate,
               branch_member_count, is_non_working_day, is_public_holiday, is_makeup_workday, identical_attendance,
               identical_to_meeting_id, identical_attendance_nontrivial, declared_exceeds_members,
               coalesce(is_non_working_day, false)::int + coalesce(identical_attendance_nontrivial, false)::int
                 + coalesce(declared_exceeds_members, false)::int as signal_count,
               (coalesce(is_non_working_day, false)::int + coalesce(identical_attendance_nontrivial, false)::int
                 + coalesce(declared_exceeds_members, false)::int) > 0 as is_suspicious,
               attendance_signature, {d} as as_of_date
        from t""")
        self.timings["fct_meeting_signals"] = time.perf_counter() - t0

    def fct_branch_quarter(self) -> None:
        """Branch x quarter: meetings by type, activity types, signals, members on the roll (not the
        per-member volunteer/app ratios, the 三会一课 completion columns or quarter_complete)."""
        t0 = time.perf_counter()
        d = f"date '{self.day}'"
        self.q(f"""create or replace table g_fct_branch_quarter as
        with branches as (select org_id, org_name, org_type, parent_org_id, established_date from s_organizations
                          where not coalesce(is_deleted, false) and org_level = '党支部'),
        q as (select unnest(generate_series(coalesce(min(quarter_start), date_trunc('quarter', {d})::date),
                                            date_trunc('quarter', {d})::date, interval 3 month))::date as quarter_start
              from g_fct_meeting_signals),
        grid as (select b.*, q.quarter_start, (q.quarter_start + interval 3 month - interval 1 day)::date as quarter_end
                 from branches b cross join q
                 where b.established_date is null or b.established_date < q.quarter_start + interval 3 month),
        roll as (select member_id, org_id as _org, valid_from, valid_to from s_member_status_history
                 where membership_status = '在册'),
        active as (select g.org_id, g.quarter_start, count(distinct r.member_id) as members_active
                   from grid g join roll r on g.org_id = r._org and r.valid_from <= least(g.quarter_end, {d})
                        and (r.valid_to is null or r.valid_to > g.quarter_start) group by all),
        first_seen as (select org_id, meeting_type, min(quarter_start) as _first_q from g_fct_meeting_signals group by all),
        mq as (select ms.org_id, ms.quarter_start, count(*) as meetings_total,
                      sum((meeting_type = '支委会')::int) as committee_meetings,
                      sum((meeting_type = '支部党员大会')::int) as general_meetings,
                      sum((meeting_type = '党课')::int) as party_lectures,
                      sum((meeting_type = '主题党日')::int) as theme_days,
                      sum((meeting_type not in ('支委会', '支部党员大会', '党课', '主题党日'))::int) as other_meetings,
                      count(distinct meeting_type) as activity_types,
                      count(distinct case when _first_q = ms.quarter_start then meeting_type end) as new_activity_types,
                      avg(attendance_rate) as mean_attendance_rate,
                      sum(coalesce(is_non_working_day, false)::int) as non_working_day_meetings,
                      sum(identical_attendance::int) as identical_attendance_meetings,
                      sum(identical_attendance_nontrivial::int) as identical_attendance_nontrivial_meetings,
                      sum(coalesce(declared_exceeds_members, false)::int) as declared_exceeds_members_meetings,
                      sum(is_suspicious::int) as suspicious_meetings
               from g_fct_meeting_signals ms join first_seen using (org_id, meeting_type) group by all)
        select g.org_id, g.org_name, g.org_type, g.parent_org_id, g.quarter_start, g.quarter_end,
               coalesce(a.members_active, 0) as members_active,
               coalesce(mq.meetings_total, 0) as meetings_total, coalesce(committee_meetings, 0) as committee_meetings,
               coalesce(general_meetings, 0) as general_meetings, coalesce(party_lectures, 0) as party_lectures,
               coalesce(theme_days, 0) as theme_days, coalesce(other_meetings, 0) as other_meetings,
               coalesce(activity_types, 0) as activity_types, coalesce(new_activity_types, 0) as new_activity_types,
               mean_attendance_rate,
               coalesce(non_working_day_meetings, 0) as non_working_day_meetings,
               coalesce(identical_attendance_meetings, 0) as identical_attendance_meetings,
               coalesce(identical_attendance_nontrivial_meetings, 0) as identical_attendance_nontrivial_meetings,
               coalesce(declared_exceeds_members_meetings, 0) as declared_exceeds_members_meetings,
               coalesce(suspicious_meetings, 0) as suspicious_meetings
        from grid g left join active a using (org_id, quarter_start) left join mq using (org_id, quarter_start)""")
        self.timings["fct_branch_quarter"] = time.perf_counter() - t0

    # ------------------------------------------------------------------ helpers
    def _exists(self, table: str) -> bool:
        return bool(self.q(f"select count(*) from duckdb_tables() where table_name = '{table}'")[0][0])

    def _columns(self, table: str) -> list[str]:
        return [r[0] for r in self.q(f"select column_name from (describe {table})")]

    # ------------------------------------------------------------------ comparison
    def compare(self, ref_table: str, layer: str, name: str, columns: list[str] | None = None,
                where: str = "true", note: str = "") -> dict:
        """Row-for-row comparison (canonical text per row, EXCEPT ALL both ways) with the Spark Delta table."""
        from deltalake import DeltaTable

        path = self.lake / layer / name
        if not (path / "_delta_log").exists():
            return dict(table=f"{layer}/{name}", match=False, note="no Spark table")
        self.con.register("_spark_arrow", DeltaTable(str(path)).to_pyarrow_table())
        self.q(f"create or replace temp table _spark as select * from _spark_arrow where {where}")
        self.con.unregister("_spark_arrow")
        ref_cols = set(self._columns(ref_table))
        spark_cols = self._columns("_spark")
        cols = columns or [c for c in spark_cols if c in ref_cols]
        missing = [c for c in (columns or spark_cols) if c not in ref_cols]

        def canon(c: str) -> str:
            return (f"case when typeof({c}) in ('DOUBLE', 'FLOAT') or typeof({c}) like 'DECIMAL%' "
                    f"then cast(round({c}::double, 9) as varchar) else cast({c} as varchar) end")

        row = " || '|' || ".join(f"coalesce({canon(c)}, '∅')" for c in cols)
        ref_rows = self.q(f"select count(*) from {ref_table}")[0][0]
        spark_rows = self.q("select count(*) from _spark")[0][0]
        only_ref = self.q(f"select count(*) from (select {row} from {ref_table} except all select {row} from _spark)")[0][0]
        only_spark = self.q(f"select count(*) from (select {row} from _spark except all select {row} from {ref_table})")[0][0]
        checksum = self.q(f"select coalesce(bit_xor(md5_number({row})), 0)::varchar from {ref_table}")[0][0]
        example = None
        if only_ref:
            example = self.q(f"select {row} from {ref_table} except all select {row} from _spark limit 1")[0][0][:300]
        return dict(table=f"{layer}/{name}", ref_rows=ref_rows, spark_rows=spark_rows, columns=len(cols),
                    columns_not_compared=[c for c in spark_cols if c not in cols],
                    missing_in_reference=missing, only_in_reference=only_ref, only_in_spark=only_spark,
                    match=only_ref == 0 and only_spark == 0 and not missing, checksum=checksum,
                    example_reference_only=example, note=note)


GOLD = ("dim_organization", "dim_member", "fct_member_month", "fct_meeting_signals", "fct_branch_quarter")


def run(lake_root: Path, day: dt.date, key: bytes, compare: bool = True) -> dict:
    """Build the reference tables from the lake's bronze, time it, and (``compare``) check them against Spark's."""
    import psutil

    proc = psutil.Process()
    cpu = lambda: sum(proc.cpu_times()[:2])  # noqa: E731 - DuckDB runs in this process's threads
    r = Reference(Path(lake_root), day, key)
    c0 = cpu()
    r.read_bronze()
    c1 = cpu()
    t0 = time.perf_counter()
    r.silver_entities()
    r.member_status_history()
    r.dim_organization()
    r.dim_member()
    r.fct_member_month()
    r.fct_meeting_signals()
    r.fct_branch_quarter()
    transform = time.perf_counter() - t0
    c2 = cpu()
    out = dict(read_seconds=round(r.timings["read"], 3), transform_seconds=round(transform, 3),
               total_seconds=round(r.timings["read"] + transform, 3),
               read_cpu_seconds=round(c1 - c0, 3), transform_cpu_seconds=round(c2 - c1, 3),
               total_cpu_seconds=round(c2 - c0, 3),
               step_seconds={k: round(v, 3) for k, v in r.timings.items()},
               bronze_rows=r.bronze_rows,
               tables_built=[f"silver/{e.name}" for e in ENTITIES] + ["quarantine (17 entities)",
                                                                     "silver/member_status_history"]
               + [f"gold/{g}" for g in GOLD])
    if compare:
        cmp = []
        for e in ENTITIES:
            cmp.append(r.compare(f"s_{e.name}", "silver", e.name))
        for e in ENTITIES:
            r.q(f"create or replace temp table _q as select entity, record_key, reasons, _batch_id, _row_hash, "
                f"_logical_date from q_all where entity = '{e.name}'")
            cmp.append(r.compare("_q", "quarantine", e.name,
                                 columns=["entity", "record_key", "reasons", "_batch_id", "_row_hash", "_logical_date"],
                                 note="record JSON not compared (formatting)"))
        cmp.append(r.compare("s_member_status_history", "silver", "member_status_history"))
        for g in GOLD:
            note = "the columns the reference builds (volunteer/app per-member ratios, sanhui_*, quarter_complete not built)" \
                if g == "fct_branch_quarter" else ""
            cols = r._columns(f"g_{g}") if g == "fct_branch_quarter" else None
            cmp.append(r.compare(f"g_{g}", "gold", g, columns=cols, note=note))
        out["comparison"] = cmp
        n_match = sum(1 for c in cmp if c["match"])
        out["summary"] = f"{n_match}/{len(cmp)} tables identical"
    r.con.close()
    return out


def main() -> int:
    import json

    from redcloud.config import get_settings

    ap = argparse.ArgumentParser(description="DuckDB reference of silver/gold over a lake's bronze tables")
    ap.add_argument("--lake", type=Path, required=True)
    ap.add_argument("--date", required=True)
    ap.add_argument("--no-compare", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the full result (with the comparison) here")
    args = ap.parse_args()
    res = run(args.lake, dt.date.fromisoformat(args.date), get_settings().secrets.pseudonym_key_bytes(),
              compare=not args.no_compare)
    for c in res.get("comparison", []):
        print(f"{'OK  ' if c['match'] else 'DIFF'} {c['table']:40s} ref {c.get('ref_rows', '-'):>8} spark "
              f"{c.get('spark_rows', '-'):>8} only_ref {c.get('only_in_reference', '-')} only_spark "
              f"{c.get('only_in_spark', '-')} {c.get('missing_in_reference') or ''} {(c.get('example_reference_only') or '')[:160]}")
    print(json.dumps({k: v for k, v in res.items() if k != "comparison"}, ensure_ascii=False, indent=1, default=str))
    if args.json:
        import os

        res.update(lake=str(args.lake), date=args.date, load_end=os.getloadavg())
        args.json.write_text(json.dumps(res, ensure_ascii=False, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
