"""每周决策参考 generated end to end for the test city: the city lake's brief stage made it from the
published snapshot (HTML + Chromium PDF + archive); a rerun on a copy replaces it.

The headline numbers are recomputed here INDEPENDENTLY of ``redcloud.brief.numbers`` and of gold's
verdict columns (pandas over the snapshot's base columns and the rule parameters) and must appear,
formatted, in the text extracted from the PDF.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from pathlib import Path

import pandas as pd
import pytest
from helpers import D2, make_ctx
from lakes import copy_lake

from redcloud.brief import numbers as N
from redcloud.rules import vocab

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".run" / "artifacts" / "brief"
WEEK = "2025-W52"


# ---- slow: the brief for a week of the test city ----

@pytest.fixture(scope="module")
def snapshot(city_lake):
    """The city lake's published snapshot (the brief stage read it)."""
    from redcloud.serving import snapshot as snap

    res = city_lake.summary["publish"]
    path = snap.Snapshots(city_lake.settings.serving).resolve_current()
    assert path.name == f"{res['snapshot_id']}.duckdb"
    return dict(id=res["snapshot_id"], path=path, rules=city_lake.settings.rules)


@pytest.fixture(scope="module")
def brief(city_lake, snapshot, tmp_path_factory):
    from redcloud import brief as B

    first = city_lake.summary["brief"]                    # 2025-12-31 -> the ISO week just ended
    copy = copy_lake(city_lake, tmp_path_factory.mktemp("brief_copy"))
    second = B.run(make_ctx(copy, D2))                    # rerun: replaces, never duplicates
    return dict(first=first, second=second, out=Path(second["out_dir"]))


def _pdf_text(pdf: Path) -> tuple[str, int]:
    from pypdf import PdfReader

    reader = PdfReader(str(pdf))
    text = "\n".join(p.extract_text() or "" for p in reader.pages)
    # CJK fonts map some glyphs to Kangxi radicals (⼀ for 一): compare in NFKC
    return unicodedata.normalize("NFKC", text), len(reader.pages)


def _independent_headline(path: Path, week: N.Week, rules, asof: dt.date) -> dict[str, tuple[str, str]]:
    """The headline numbers for ``week`` and the week before, from the snapshot's base columns and the
    rule parameters with pandas only (no verdict column, no lifecycle table)."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        ld = con.table("fct_learning_daily").df()
        vw = con.table("fct_village_work_daily").df()
        ps = con.table("fct_project_status").df()
        ms = con.table("fct_meeting_signals").df()
        dm = con.table("dim_member").df()
    finally:
        con.close()
    for df, cols in ((ld, ["work_date"]), (vw, ["work_date"]), (ms, ["meeting_date"]),
                     (ps, ["start_date", "deadline", "completed_date"]), (dm, ["join_date"])):
        for c in cols:
            df[c] = pd.to_datetime(df[c]).dt.date

    levels = rules.obligated_levels
    ld["obligated"] = ld["rank"].fillna("").map(lambda r: any(r.startswith(lv) for lv in levels))

    def one(w: N.Week, at: dt.date) -> dict[str, str]:
        inw = lambda s: (s >= w.start) & (s <= w.end)  # noqa: E731
        lw = ld[ld.obligated & inw(ld.work_date)]
        vv = vw[inw(vw.work_date)]
        started = ps[ps.start_date <= at]
        done_by = started.completed_date.notna() & (started.completed_date.fillna(dt.date.max) <= at)
        expire = started.deadline.map(lambda d: d + dt.timedelta(days=rules.project_expire_after_days))
        overdue = (~done_by) & (started.deadline < at) & (at < expire)
        return {
            "学习问答作答率": f"{lw.answered.astype(float).mean() * 100:.1f}%",
            "学习问答提醒人数": str(lw[~lw.answered.astype(bool)].cadre_id.nunique()),
            "学习问答升级督办人数": str(lw[lw.miss_streak >= rules.learning_escalate_after].cadre_id.nunique()),
            "驻村工作日志填报率": f"{vv.has_record.astype(float).mean() * 100:.1f}%",
            "帮扶项目逾期数（未注销）": str(int(overdue.sum())),
            "帮扶项目本周完成数": str(int(inw(ps.completed_date.dropna()).sum())),
            "组织生活会议场次": str(int(inw(ms.meeting_date).sum())),
            "疑似异常会议场次": str(int((inw(ms.meeting_date) & ms.is_suspicious.astype(bool)).sum())),
            "新入党人数": str(int(inw(dm.join_date.dropna()).sum())),
        }

    now, prev = one(week, asof), one(week.previous(), asof - dt.timedelta(days=7))
    return {k: (now[k], prev[k]) for k in now}


@pytest.mark.slow
def test_pdf_headline_numbers_equal_independent_computation(brief, snapshot):
    entry = brief["second"]
    assert entry["week"] == WEEK and entry["snapshot_id"] == snapshot["id"]
    pdf = brief["out"] / entry["pdf"]
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text, pages = _pdf_text(pdf)
    assert 2 <= pages <= 6, pages
    assert "每周决策参考" in text and WEEK in text
    expected = _independent_headline(snapshot["path"], N.Week.parse(WEEK), snapshot["rules"], D2)
    # sanity: the test city has activity this week, so these are not vacuous zeros
    assert expected["组织生活会议场次"][0] != "0" and expected["学习问答作答率"][0].endswith("%")
    for label, (now, prev) in expected.items():
        pattern = re.escape(unicodedata.normalize("NFKC", label)) + r"\s+" + re.escape(now) + r"\s+" + re.escape(prev) + r"\s"
        assert re.search(pattern, text), f"{label}: expected {now} (上周 {prev}) in the PDF headline table"
    assert "需要决策的事项" in text
    # Every optional section whose table is absent from the snapshot says so plainly.
    import duckdb

    con = duckdb.connect(str(snapshot["path"]), read_only=True)
    tables = {r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()}
    anomalies = con.execute("""select count(*) from score_branch_innovation where is_anomaly
                               and quarter = (select max(quarter) from score_branch_innovation)""").fetchone()[0] \
        if "score_branch_innovation" in tables else 0
    archetypes = {r[0] for r in con.execute("""select distinct archetype from score_branch_innovation where is_anomaly
                   and quarter = (select max(quarter) from score_branch_innovation)""").fetchall()} if anomalies else set()
    vacancies = con.execute("select count(*) from fct_unit_leadership where is_current and vacancy_overdue"
                            ).fetchone()[0] if "fct_unit_leadership" in tables else None
    disclosures_overdue = con.execute(
        "select count(*) from fct_party_disclosure where state = ?", [vocab.DISCLOSURE_OVERDUE]
    ).fetchone()[0] if {"fct_party_disclosure", "mart_disclosure_timeliness"} <= tables else None
    week = N.Week.parse(WEEK)
    # 驻村 cadres who missed a day this week: the name and the unit that sent them (gold, not the brief's SQL)
    missing_cadres = con.execute("""
        with c as (select cadre_id, arg_max(member_id, year) as member_id, arg_max(unit_org_id, year) as unit_org_id
                   from fct_cadre_year group by cadre_id)
        select m.member_name, u.org_name
        from (select distinct cadre_id from fct_village_work_daily
              where work_date between ? and ? and not has_record) v
        join c using (cadre_id) join dim_member m on m.member_id = c.member_id
        join dim_organization u on u.org_id = c.unit_org_id""", [week.start, week.end]).fetchall()
    con.close()
    flat = re.sub(r"\s+", "", text)   # table cells wrap: names and units may be split across lines
    if archetypes:                                 # branch types by their names (no "综合型4")
        assert any(a in flat for a in archetypes), archetypes
        assert not re.search(r"综合型\d", flat)
    if missing_cadres:                             # masked names with their units, never full names or ids
        from redcloud.privacy import mask_name

        assert any(mask_name(n) in flat for n, _ in missing_cadres), "驻村 cadres by masked name"
        assert any(u[:6] in flat for _, u in missing_cadres), "驻村 cadres with their units"
        assert not [n for n, _ in missing_cadres if len(n) >= 3 and n in flat], "a full name in the brief"
    if "mart_power_operation_monthly" in tables:   # a department's rank says out of how many
        assert re.search(r"第\s*\d+\s*/\s*\d+", text), "ranks are printed as 第 k / N"
    if anomalies:                                  # each anomalous branch with what is wrong with it
        from models.branch_innovation.model import REASONS

        assert any(r in text for r in REASONS.values()), "anomaly reasons in the brief"
    if disclosures_overdue is not None:   # 党务公开: gold's states, counted here
        assert re.search(rf"逾期未公开事项{disclosures_overdue}项", flat), disclosures_overdue
    if vacancies is not None and "mart_leadership_teams" in tables:   # 班子 gaps: gold's verdict, counted here
        assert re.search(rf"正职空缺超过规定工作日的领导班子{vacancies}个", flat), vacancies
    for q, _ in N.OPTIONAL:
        if q.tables[0] not in tables:
            assert f"当前快照中没有 {q.tables[0]}" in text, q.name


@pytest.mark.slow
def test_every_number_is_footnoted_with_table_snapshot_and_delta_version(brief, snapshot):
    import duckdb

    con = duckdb.connect(str(snapshot["path"]), read_only=True)
    versions = dict(con.execute("select table_name, delta_version from _snapshot_sources").fetchall())
    con.close()
    html = (brief["out"] / brief["second"]["html"]).read_text(encoding="utf-8")
    from redcloud.brief.render import browser

    with browser() as b:
        page = b.new_page()
        page.goto((brief["out"] / brief["second"]["html"]).as_uri())
        notes = page.locator("section.notes li").all_inner_texts()
        rows = page.locator("#headline tbody tr").evaluate_all(
            "rs => rs.map(r => [r.dataset.number, r.cells[4].innerText])")
        refs_in_body = set(int(x) for x in re.findall(r"<sup>\[(\d+)\]</sup>", html))
    assert len(rows) == 9
    assert refs_in_body and max(refs_in_body) <= len(notes)
    for name, ref in rows:
        note = notes[int(ref.strip("[]")) - 1]
        q = N.by_name(name)
        assert f"({name})" in unicodedata.normalize("NFKC", note)
        assert snapshot["id"] in note
        for t in q.tables:
            assert f"{t}（gold，Delta 版本 {versions[t]}" in note, (name, t, note)
        assert " ".join(q.sql.split()) in note  # the exact SQL, to reproduce it


@pytest.mark.slow
def test_html_opens_in_chromium_without_errors_and_page1_png(brief):
    from redcloud.brief.render import browser

    html = brief["out"] / brief["second"]["html"]
    errors, failed, requests = [], [], []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    png = ARTIFACTS / f"brief-{WEEK}-page1.png"
    png.unlink(missing_ok=True)
    with browser() as b:
        page = b.new_page(viewport={"width": 794, "height": 1123})  # A4 at 96 dpi
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("request", lambda r: requests.append(r.url))
        resp = page.goto(html.as_uri(), wait_until="load")
        assert resp is None or resp.ok
        page.emulate_media(media="print")
        page.screenshot(path=str(png))  # the first page's area
        imgs = page.locator("img.chart").evaluate_all("xs => xs.map(i => [i.complete, i.naturalWidth])")
        title = page.title()
    assert errors == [] and failed == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests  # self-contained
    assert imgs and all(ok and w > 100 for ok, w in imgs)
    assert WEEK in title
    from PIL import Image

    with Image.open(png) as im:
        assert im.size == (794, 1123)
        colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colors is not None and len(colors) > 50  # not a blank page


@pytest.mark.slow
def test_archive_index_lists_it_once_and_rerun_replaces(brief):
    out = brief["out"]
    entries = json.loads((out / "index.json").read_text(encoding="utf-8"))
    mine = [e for e in entries if e["week"] == WEEK]
    assert len(mine) == 1
    e = mine[0]
    assert {"week", "title", "html", "pdf", "snapshot_id", "generated_at"} <= set(e)
    assert e["generated_at"] == brief["second"]["generated_at"]
    assert (out / e["html"]).is_file() and (out / e["pdf"]).is_file()
    assert sorted(p.name for p in (out / WEEK).iterdir()) == [f"brief-{WEEK}.html", f"brief-{WEEK}.pdf"]
    index_html = (out / "index.html").read_text(encoding="utf-8")
    assert index_html.count(f"<td>{WEEK}</td>") == 1 and e["pdf"] in index_html


@pytest.mark.slow
def test_another_week_by_parameter_and_future_week_refused(brief, snapshot, city_lake, tmp_path):
    from redcloud import brief as B

    settings = copy_lake(city_lake, tmp_path)
    r = B.generate(settings, "2025-W50", pdf=False)
    assert r["week"] == "2025-W50" and r["pdf"] is None
    weeks = [e["week"] for e in json.loads((Path(r["out_dir"]) / "index.json").read_text(encoding="utf-8"))]
    assert weeks == sorted(weeks, reverse=True) and {"2025-W50", WEEK} <= set(weeks)
    w50 = N.Week.parse("2025-W50")
    expected = _independent_headline(snapshot["path"], w50, snapshot["rules"], w50.end)
    assert f"{r['numbers']['meetings_held']}" == expected["组织生活会议场次"][0]
    with pytest.raises(ValueError, match="not complete"):
        B.generate(settings, "2026-W01", pdf=False)  # ends 2026-01-04, after the snapshot's logical date
