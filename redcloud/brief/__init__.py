"""每周决策参考: the weekly decision brief for the party committee's leaders.

Stage ``brief``: ``run(spark, day, run_id)`` builds the brief for the ISO week that ended on or
before ``day`` (Monday-Sunday) from the CURRENT PUBLISHED SNAPSHOT only (``redcloud.serving``), as
one self-contained HTML file (charts inlined) and a PDF printed by headless Chromium, archived
under ``[brief] out_dir``::

    <out_dir>/<week>/brief-<week>.html, brief-<week>.pdf
    <out_dir>/index.json   [{week, title, html, pdf, snapshot_id, run_id, logical_date, generated_at}]
    <out_dir>/index.html   the archive's table of contents

``html``/``pdf`` in ``index.json`` are paths relative to ``out_dir``. Re-running a week replaces
its files and its index entry. Every number comes from the query registry in
:mod:`redcloud.brief.numbers` and is footnoted with its tables, the snapshot id and Delta versions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from redcloud.brief import numbers as N
from redcloud.config import Settings
from redcloud.context import RunContext

TEMPLATES = Path(__file__).with_name("templates")
TITLE = "每周决策参考"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                              trim_blocks=True, lstrip_blocks=True)


def open_snapshot(settings: Settings):
    """A read-only connection to the current published snapshot (symlink resolved once)."""
    from redcloud.serving import snapshot

    return snapshot.Snapshots(settings.serving).connect(read_only=True)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def collect(con, week: N.Week, *, top: int) -> dict:
    """Evaluate every query of the registry against the snapshot for ``week``.

    Returns snapshot stamps, per-query values (with the previous week's for weekly scalars), the
    optional sections' status, and one footnote per query used."""
    snap_id, run_id, logical_date = con.execute(
        "select snapshot_id, run_id, logical_date from _snapshot").fetchone()
    sources = {r[0]: dict(layer=r[1], version=r[2], rows=r[3]) for r in con.execute(
        "select table_name, layer, delta_version, rows from _snapshot_sources").fetchall()}
    if week.end > logical_date:
        raise ValueError(f"{week.label} ends {week.end}, after the snapshot's logical date {logical_date}: "
                         "that week is not complete in the published data")
    have = N.snapshot_tables(con)
    prev = week.previous()
    # states (e.g. a project's) are read on the data date for the latest week, on its Sunday for an
    # earlier week; the week before is read 7 days earlier
    at = logical_date if week == N.Week.ended_by(logical_date) else week.end
    kw = dict(asof=logical_date, top=top, at=at)
    values, footnotes, missing = {}, [], {}

    def note(q: N.Query) -> int:
        footnotes.append(dict(
            n=len(footnotes) + 1, name=q.name, label=q.label, sql=" ".join(q.sql.split()),
            params={k: str(v) for k, v in N.params_for(q.sql, N.values_for(week, logical_date, top, at)).items()},
            prev_at=str(at - dt.timedelta(days=7)),
            prev_params=({"ws": str(prev.start), "we": str(prev.end)} if q.weekly and q.kind == "scalar" else None),
            tables=[dict(table=t, **sources.get(t, dict(layer="?", version=None, rows=None))) for t in q.tables]))
        return len(footnotes)

    queries = list(N.QUERIES)
    for q, cols in N.OPTIONAL:
        absent = [t for t in q.tables if t not in have]
        lacking = [c for c in cols if q.tables[0] in have and c not in have[q.tables[0]]]
        if absent or lacking:
            missing[q.name] = dict(label=q.label, tables=absent, columns=lacking)
        else:
            queries.append(q)
    for q in queries:
        try:
            v = N.run_query(con, q, week, **kw)
        except Exception as e:  # an optional table with unexpected content: say so, never guess
            if q in N.QUERIES:
                raise
            missing[q.name] = dict(label=q.label, tables=[], columns=[], error=str(e).splitlines()[0][:200])
            continue
        entry = dict(q=q, value=v, ref=note(q))
        if q.kind == "scalar":
            entry["text"] = N.format_value(q, v)
            if q.weekly:
                pv = N.run_query(con, q, prev, **{**kw, "at": at - dt.timedelta(days=7)})
                entry.update(prev=pv, prev_text=N.format_value(q, pv))
                entry["change"], entry["cls"] = N.format_change(q, v, pv)
        values[q.name] = entry
    return dict(snapshot_id=snap_id, run_id=run_id, logical_date=logical_date, at=at, sources=sources,
                values=values, footnotes=footnotes, missing=missing, week=week, prev=prev)


def decisions(data: dict, *, village_min: float, learning_drop_pts: float, warn_days: int,
              min_level: str, vacancy_days: int) -> list[dict]:
    """需要决策的事项: rules over the numbers. Each item names the footnotes of the numbers it uses."""
    v = data["values"]
    out = []

    def val(name):
        return v[name]["value"] if name in v else None

    esc = val("learning_escalated_cadres") or 0
    if esc:
        units = v["learning_escalation_units"]["value"]
        out.append(dict(text=f"本周有 {esc} 名{min_level}以上干部学习问答连续未作答达到升级督办标准"
                             f"（涉及 {len(units)} 个单位，见“学习问答”一节），建议由市委党建办约谈提醒并记入干部日常考核。",
                        refs=[v["learning_escalated_cadres"]["ref"], v["learning_escalation_units"]["ref"]]))
    rate, prev_rate = val("learning_answer_rate"), v.get("learning_answer_rate", {}).get("prev")
    if rate is not None and prev_rate is not None and (prev_rate - rate) * 100 >= learning_drop_pts:
        out.append(dict(text=f"学习问答作答率环比下降 {(prev_rate - rate) * 100:.1f} 个百分点"
                             f"（本周 {v['learning_answer_rate']['text']}），建议下周通报各单位完成情况。",
                        refs=[v["learning_answer_rate"]["ref"]]))
    vr = val("village_record_rate")
    if vr is not None and vr < village_min:
        n = len(val("village_missing_cadres") or [])
        out.append(dict(text=f"驻村工作日志填报率为 {v['village_record_rate']['text']}，低于 {village_min * 100:.0f}% 的工作要求；"
                             f"建议派驻单位对本周缺报最多的 {n} 名驻村干部逐一核实在岗履职情况。",
                        refs=[v["village_record_rate"]["ref"], v["village_missing_cadres"]["ref"]]))
    od = val("projects_overdue") or 0
    if od:
        longest = (val("projects_most_overdue") or [(None, None, None, 0)])[0][3]
        out.append(dict(text=f"帮扶项目逾期 {od} 个（环比 {v['projects_overdue']['change']}），逾期最久的已超过 {longest} 天；"
                             "建议对长期逾期项目逐一作出续建、调整或注销的决定。",
                        refs=[v["projects_overdue"]["ref"], v["projects_most_overdue"]["ref"]]))
    soon = val("projects_due_soon") or 0
    if soon:
        out.append(dict(text=f"{soon} 个帮扶项目将在 {warn_days} 天内到期，建议提前督办，防止新增逾期。",
                        refs=[v["projects_due_soon"]["ref"]]))
    sus = val("suspicious_meetings") or 0
    if sus:
        out.append(dict(text=f"本周 {sus} 场组织生活会议存在非工作日召开、签到雷同或申报人数超员等疑点，"
                             "建议组织部门抽查会议记录，防止组织生活形式化。",
                        refs=[v["suspicious_meetings"]["ref"], v["suspicious_meeting_branches"]["ref"]]))
    od_disc = val("disclosures_overdue") or 0
    if od_disc:
        out.append(dict(text=f"党务公开有 {od_disc} 项逾期未公开（涉及党支部见“组织与党员”一节），"
                             "建议督促相关党支部限期公开，并将公开及时率纳入基层党建述职评议。",
                        refs=[v["disclosures_overdue"]["ref"]] + ([v["disclosure_laggards"]["ref"]]
                                                                    if "disclosure_laggards" in v else [])))
    bare = val("projects_missing_measures") or 0
    if bare:
        out.append(dict(text=f"{bare} 个帮扶项目开工已超过规定工作日仍未录入帮扶措施和资金来源，"
                             "建议派驻单位督促责任干部补录，防止项目有名无实。",
                        refs=[v["projects_missing_measures"]["ref"]]))
    short = val("training_short_cadres") or 0
    if short:
        out.append(dict(text=f"本年度尚有 {short} 名干部调训学时未达到年度要求，建议组织部门在年底前安排补训或网络专题班，"
                             "并将调训完成情况纳入年度考核。",
                        refs=[v["training_short_cadres"]["ref"]]))
    vac = val("leadership_vacancies") or 0
    if vac:
        out.append(dict(text=f"{vac} 个领导班子正职空缺已超过 {vacancy_days} 个工作日（名单见“组织与党员”一节），"
                             "建议组织部门抓紧研究配备人选，必要时明确临时主持工作的负责同志。",
                        refs=[v["leadership_vacancies"]["ref"]] + ([v["leadership_gaps"]["ref"]] if "leadership_gaps" in v else [])))
    flags = val("integrity_flags") or 0
    if flags:
        out.append(dict(text=f"{flags} 名干部的廉政画像触发预警门限，建议纪检监察机关依规依纪核实（名单另行密送，不在本参考中列出）。",
                        refs=[v["integrity_flags"]["ref"]]))
    return out


def build_html(data: dict, decision_items: list[dict], generated_at: dt.datetime, *, warn_days: int,
               village_min: float, min_level: str) -> str:
    from redcloud.brief import charts

    v = data["values"]
    week = data["week"]
    chart_rates = charts.weekly_rates(v["learning_rate_trend"]["value"], v["village_rate_trend"]["value"], week.start)
    chart_projects = charts.projects_by_county(v["projects_by_county"]["value"])
    headline = [v[n] for n in ("learning_answer_rate", "learning_reminded_cadres", "learning_escalated_cadres",
                               "village_record_rate", "projects_overdue", "projects_completed_week",
                               "meetings_held", "suspicious_meetings", "new_members")]
    return _env().get_template("brief.html.j2").render(
        title=TITLE, week=week, prev=data["prev"], d=data, v=v, headline=headline, decisions=decision_items,
        chart_rates=chart_rates, chart_projects=chart_projects, warn_days=warn_days, village_min=village_min,
        min_level=min_level,
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M"), missing=data["missing"])


@contextlib.contextmanager
def _locked(out_dir: Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def read_index(out_dir: Path | str) -> list[dict]:
    p = Path(out_dir) / "index.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.exists() else []


def _update_index(out_dir: Path, entry: dict) -> list[dict]:
    entries = [e for e in read_index(out_dir) if e["week"] != entry["week"]] + [entry]
    entries.sort(key=lambda e: e["week"], reverse=True)
    _write_text(out_dir / "index.json", json.dumps(entries, ensure_ascii=False, indent=2))
    _write_text(out_dir / "index.html", _env().get_template("index.html.j2").render(title=TITLE, entries=entries))
    return entries


def generate(settings: Settings, week: N.Week | str | None = None, day: dt.date | None = None, *,
             out_dir: str | Path | None = None, pdf: bool | None = None) -> dict:
    """Build, render and archive the brief for ``week`` (default: the ISO week ended by ``day``, or by
    the snapshot's logical date). Returns the index entry plus timings and the numbers used."""
    s = settings.brief
    warn_days = settings.rules.project_warning_days   # words the text; the numbers come from gold
    out_dir = Path(out_dir or s.out_dir)
    t0 = time.perf_counter()
    con = open_snapshot(settings)
    try:
        if week is None and s.week:
            week = s.week
        if isinstance(week, str):
            week = N.Week.parse(week)
        if week is None:
            day = day or con.execute("select logical_date from _snapshot").fetchone()[0]
            week = N.Week.ended_by(day)
        data = collect(con, week, top=s.top_n)
    finally:
        con.close()
    t_numbers = time.perf_counter() - t0
    items = decisions(data, village_min=s.village_record_rate_min, learning_drop_pts=s.learning_rate_drop_pts,
                      warn_days=warn_days, min_level=settings.rules.learning_min_level,
                      vacancy_days=settings.rules.leadership_vacancy_workdays)
    generated_at = dt.datetime.now(ZoneInfo("Asia/Shanghai"))
    html = build_html(data, items, generated_at, warn_days=warn_days, village_min=s.village_record_rate_min,
                      min_level=settings.rules.learning_min_level)
    t_html = time.perf_counter() - t0 - t_numbers
    wdir = out_dir / week.label
    wdir.mkdir(parents=True, exist_ok=True)
    html_path, pdf_path = wdir / f"brief-{week.label}.html", wdir / f"brief-{week.label}.pdf"
    _write_text(html_path, html)
    do_pdf = s.pdf if pdf is None else pdf
    if do_pdf:
        from redcloud.brief import render

        render.html_to_pdf(html_path, pdf_path, f"{TITLE} {week.label} · 快照 {data['snapshot_id']}")
    t_pdf = time.perf_counter() - t0 - t_numbers - t_html
    entry = dict(week=week.label, title=f"{TITLE}（{week.label}，{week.start:%m月%d日}—{week.end:%m月%d日}）",
                 html=str(html_path.relative_to(out_dir)),
                 pdf=str(pdf_path.relative_to(out_dir)) if do_pdf else None,
                 snapshot_id=data["snapshot_id"], run_id=data["run_id"],
                 logical_date=str(data["logical_date"]), generated_at=generated_at.isoformat(timespec="seconds"))
    with _locked(out_dir):
        _update_index(out_dir, entry)
    return dict(entry, out_dir=str(out_dir), decisions=len(items),
                numbers={k: e["value"] for k, e in data["values"].items() if e["q"].kind == "scalar"},
                missing=sorted(data["missing"]),
                seconds=dict(numbers=round(t_numbers, 2), html=round(t_html, 2), pdf=round(t_pdf, 2),
                             total=round(time.perf_counter() - t0, 2)))


def run(ctx: RunContext) -> dict:
    """The ``brief`` stage: reads only the published DuckDB snapshot (no Spark)."""
    r = generate(ctx.settings, day=ctx.day)
    r["stage_run_id"] = ctx.run_id
    r["tables"] = []  # writes files, not lake tables
    ctx.progress.note(f"brief {r['week']}: {r['out_dir']}/{r['html']} ({r['seconds']['total']} s)")
    return r
