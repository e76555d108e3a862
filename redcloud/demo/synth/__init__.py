"""The synthetic city: a deterministic, realistic 党建红云 world for demos, tests and benchmarks.

``generate(scale, seed)`` writes, under ``<synth_dir>/scale-<N>-seed-<S>/``:

- ``source/<system>/<table>.parquet``: rows of the three organisation databases (org, cadre, app),
  loaded into PostgreSQL by :mod:`redcloud.demo.sources`;
- ``ironcage/``: 数据铁笼 export files (CSV GBK / UTF-8 BOM, XLSX, JSON lines);
- ``web/``: penalty notices, enforcement lists and news served by :mod:`redcloud.demo.web_server`;
- ``truth/``: the hidden ground truth (latent vitality, cadre drivers, innovative and fabricating
  branches, fabricated meetings, integrity issues, identity links) and ``faults.parquet``;
- ``manifest.json``: parameters, row counts and a content checksum.

See docs/synthetic_city.md for what is planted and why.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from redcloud.contracts import PRIMARY_KEYS, SYSTEMS  # noqa: F401  (re-exported for the demo loaders)
from redcloud.demo.synth import (
    behaviour,
    disclosure,
    identity,
    ironcage,
    measures,
    orgs,
    people,
    questions,
    training,
    volunteer_market,
    web,
)

D = np.timedelta64(1, "D")
GENERATOR_VERSION = 5


def generator_digest() -> str:
    """A digest of the generator's own code and targets: a city on disk is reused only when it was made
    by exactly this generator (a changed generator never serves a stale city)."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).parent.glob("*")):
        if p.suffix in (".py", ".toml"):
            h.update(p.name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:16]

@dataclass
class FaultLog:
    rows: list[dict] = field(default_factory=list)

    def add(self, fault: str, system: str, table: str, key, detail: str) -> None:
        self.rows.append(dict(fault=fault, system=system, table=table, record_key=str(key), detail=detail))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["fault", "system", "table", "record_key", "detail"])


def city_dir(base: Path | str, scale: int, seed: int) -> Path:
    return Path(base) / f"scale-{scale}-seed-{seed}"


def _plant_member_faults(rng, members: pd.DataFrame, attendance: pd.DataFrame, cadre_member_ids: np.ndarray,
                         end: np.datetime64, faults: FaultLog):
    n = len(members)
    eligible = np.flatnonzero(~np.isin(members.member_id.to_numpy(), cadre_member_ids))
    pick = rng.permutation(eligible)
    k_dup, k_chk, k_young, k_future, k_orphan = (max(2, int(n * f)) for f in (0.004, 0.003, 0.001, 0.0005, 0.0015))
    cuts = np.cumsum([0, k_dup, k_chk, k_young, k_future, k_orphan])
    dup, chk, young, future, orphan = (pick[cuts[i]:cuts[i + 1]] for i in range(5))
    m = members.copy()
    ids = m.id_number.to_numpy().astype(object)
    ids[chk] = identity.corrupt_check_digit(ids[chk].astype(str))
    m["id_number"] = ids
    for i in chk:
        faults.add("invalid_id_check_digit", "org", "members", int(m.member_id.iat[i]), "身份证号 check digit is wrong")
    birth = m.birth_date.to_numpy().astype("datetime64[D]")
    join = m.join_date.to_numpy().astype("datetime64[D]")
    join[young] = birth[young] + rng.integers(8 * 365, 15 * 365, len(young)) * D
    birth[future] = end + rng.integers(200, 800, len(future)) * D
    m["join_date"], m["birth_date"] = join, birth
    for i in young:
        faults.add("impossible_date", "org", "members", int(m.member_id.iat[i]), "joined the party before age 18")
    for i in future:
        faults.add("impossible_date", "org", "members", int(m.member_id.iat[i]), "birth date in the future")
    org = m.org_id.to_numpy().copy()
    org[orphan] = 9_000_000 + np.arange(len(orphan))
    m["org_id"] = org
    for i in orphan:
        faults.add("orphan_reference", "org", "members", int(m.member_id.iat[i]), "org_id refers to no organisation")
    d = m.iloc[dup].copy()
    d["member_id"] = np.arange(n + 1, n + 1 + len(dup))
    d["updated_at"] = d.updated_at + pd.to_timedelta(rng.integers(1, 30, len(dup)), unit="D")
    d["updated_at"] = d.updated_at.where(d.updated_at <= pd.Timestamp(end) + pd.Timedelta(hours=23), pd.Timestamp(end) + pd.Timedelta(hours=20))
    d["phone"] = np.where(rng.random(len(dup)) < 0.5, identity.phones(rng, len(dup)), d.phone)
    for orig, new in zip(m.member_id.iloc[dup], d.member_id):
        faults.add("duplicate_record", "org", "members", int(new), f"same person as member {int(orig)} entered twice")
    m = pd.concat([m, d], ignore_index=True)
    # attendance rows pointing at a member that does not exist
    k = max(2, len(attendance) // 5000)
    rows = rng.choice(len(attendance), k, replace=False)
    a = attendance.copy()
    a.loc[a.index[rows], "member_id"] = 8_000_000 + np.arange(k)
    for r in rows:
        faults.add("orphan_reference", "app", "meeting_attendance", int(a.attendance_id.iat[r]), "member_id refers to no member")
    return m, a


def _plant_ambiguous(rng, p: people.People, faults: FaultLog) -> pd.DataFrame:
    """For some cadres without an ID number, give another member of the same branch the same name."""
    cad = p.cadres
    cl = p.cadre_latent
    members = p.members
    missing = np.flatnonzero(cad.id_number.isna().to_numpy())
    chosen = missing[rng.random(len(missing)) < 0.35]
    by_org = members.groupby("org_id").member_id.apply(np.array).to_dict()
    cadre_members = set(cl.member_id)
    names = members.member_name.to_numpy().astype(object)
    expected = {}
    for i in missing:
        expected[int(cad.cadre_id.iat[i])] = "fuzzy"
    for i in chosen:
        mid = int(cl.member_id.iat[i])
        others = [x for x in by_org.get(int(cad.unit_org_id.iat[i]), []) if x != mid and x not in cadre_members]
        if not others:
            continue
        twin = int(others[rng.integers(0, len(others))])
        names[twin - 1] = cad.cadre_name.iat[i]
        expected[int(cad.cadre_id.iat[i])] = "ambiguous"
        faults.add("ambiguous_identity", "cadre", "cadres", int(cad.cadre_id.iat[i]),
                   f"no 身份证号 and two members named {cad.cadre_name.iat[i]} in the unit (members {mid}, {twin})")
    members["member_name"] = names
    exp = np.array([expected.get(int(c), "exact") for c in cad.cadre_id], dtype=object)
    return pd.DataFrame(dict(source="cadre", source_key=cad.cadre_id.astype(str), member_id=cl.member_id,
                             expected_link=exp))


def _write_table(df: pd.DataFrame, path: Path) -> None:
    """Parquet with calendar dates as DATE and instants (``*_at``) as TIMESTAMP."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tbl = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    fields = [pa.field(f.name, pa.date32()) if pa.types.is_timestamp(f.type) and not f.name.endswith("_at")
              else pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f
              for f in tbl.schema]
    pq.write_table(tbl.cast(pa.schema(fields)), path)


def _checksum(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def generate(scale: int, seed: int, base_dir: Path | str, start: str = "2023-01-01", end: str = "2025-12-31",
             force: bool = False) -> dict:
    """Generate the city (or reuse an identical one already on disk). Returns the manifest."""
    out = city_dir(base_dir, scale, seed)
    man_path = out / "manifest.json"
    digest = generator_digest()
    if man_path.exists() and not force:
        man = json.loads(man_path.read_text())
        if (man.get("generator_version") == GENERATOR_VERSION and man.get("generator_digest") == digest
                and man["start"] == start and man["end"] == end):
            man["reused"] = True
            return man
    t0 = time.perf_counter()
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    s, e = np.datetime64(start, "D"), np.datetime64(end, "D")
    # child i of a SeedSequence does not depend on how many are spawned: a new stream leaves the others alone
    streams = [np.random.default_rng(c) for c in np.random.SeedSequence(seed).spawn(13)]
    faults = FaultLog()

    org_df, sizes = orgs.build(streams[0], scale, lambda d: people.stamp(streams[0], np.array(d, dtype="datetime64[D]")))
    ppl = people.build(streams[1], org_df, sizes, scale, s, e, faults)
    bhv = behaviour.build(streams[2], ppl, s, e)
    ic = ironcage.build(streams[3], org_df, ppl, s, e)
    penalties, enforcement, news, news_truth, web_links = web.build(streams[4], org_df, ppl, s, e)
    identity_truth = _plant_ambiguous(streams[5], ppl, faults)
    members, attendance = _plant_member_faults(streams[6], ppl.members, bhv.attendance,
                                               ppl.cadre_latent.member_id.to_numpy(), e, faults)
    disclosures = disclosure.build(streams[8], ppl, org_df, s, e, faults)
    project_measures = measures.build(streams[9], bhv.projects, e, faults)
    training_classes, training_enrollments = training.build(streams[10], ppl, s, e, faults)
    member_questions = questions.build(streams[11], ppl, s, e, faults)
    volunteer_teams, volunteer_needs = volunteer_market.build(streams[12], ppl, org_df, s, e, faults)

    tables = {
        "organizations": org_df, "members": members, "member_status_changes": ppl.status_changes,
        "cadres": ppl.cadres, "cadre_posts": ppl.cadre_posts, "cadre_assessments": ppl.assessments,
        "cadre_discipline": ppl.discipline, "village_assignments": ppl.village_assignments,
        "app_users": bhv.app_users, "app_activity_monthly": bhv.app_activity, "learning_answers": bhv.learning_answers,
        "meetings": bhv.meetings, "meeting_attendance": attendance, "dues_payments": bhv.dues,
        "volunteer_records": bhv.volunteer, "village_work_records": bhv.village_work, "poverty_projects": bhv.projects,
        "party_disclosures": disclosures, "project_measures": project_measures,
        "training_classes": training_classes, "training_enrollments": training_enrollments,
        "member_questions": member_questions, "volunteer_teams": volunteer_teams,
        "volunteer_needs": volunteer_needs,
    }
    counts = {}
    written = []
    for system, names in SYSTEMS.items():
        d = tmp / "source" / system
        d.mkdir(parents=True)
        for name in names:
            path = d / f"{name}.parquet"
            _write_table(tables[name], path)
            counts[f"{system}.{name}"] = len(tables[name])
            written.append(path)
    files = ironcage.write_exports(streams[7], ic, tmp / "ironcage", s, e, faults)
    written += [tmp / "ironcage" / f["file"] for f in files]
    (tmp / "web").mkdir()
    for name, df in (("penalties", penalties), ("enforcement", enforcement), ("news", news)):
        path = tmp / "web" / f"{name}.json"
        path.write_text(json.dumps(df.to_dict(orient="records"), ensure_ascii=False, indent=0))
        counts[f"web.{name}"] = len(df)
        written.append(path)
    truth = {
        "member_vitality": bhv.vitality_truth,
        "cadres": ppl.cadre_latent,
        "cadre_year_performance": pd.DataFrame(dict(
            cadre_id=np.repeat(ppl.cadre_latent.cadre_id.to_numpy(), len(ppl.cadre_latent.attrs["years"])),
            year=np.tile(ppl.cadre_latent.attrs["years"], len(ppl.cadre_latent)),
            performance=ppl.cadre_latent.attrs["perf"].ravel())),
        "branches": bhv.branch_truth,
        "fabricated_meetings": bhv.fabricated,
        "identity_links": pd.concat([identity_truth.astype({"source_key": str}),
                                     web_links.assign(member_id=web_links.cadre_id.map(
                                         dict(zip(ppl.cadre_latent.cadre_id, ppl.cadre_latent.member_id))).astype("Int64"),
                                         expected_link=np.where(web_links.cadre_id >= 0, "linked", "none"))
                                     .drop(columns=["cadre_id"])], ignore_index=True),
        "ironcage_handlers": ic.handler_truth,
        "news_mentions": news_truth[["news_id", "cadre_id", "tone"]] if len(news_truth) else news_truth,
        "faults": faults.frame(),
    }
    (tmp / "truth").mkdir()
    for name, df in truth.items():
        df = df.copy()
        df.attrs = {}
        df.to_parquet(tmp / "truth" / f"{name}.parquet", index=False)
    manifest = dict(
        generator_version=GENERATOR_VERSION, generator_digest=digest, scale=scale, seed=seed, start=start, end=end, counts=counts,
        ironcage_files=files, faults=faults.frame().groupby("fault").size().to_dict(),
        checksum=_checksum(written), seconds=round(time.perf_counter() - t0, 2), path=str(out),
    )
    (tmp / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    manifest["reused"] = False
    return manifest
