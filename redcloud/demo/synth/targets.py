"""The official figures the synthetic city is calibrated to (``targets.toml``), and the city measured
against them the way an analyst would: from the generated source tables, on the 公报's date.

``measure(city)`` returns one row per target (figure, target, generated value, tolerance, within);
``report(measure(city))`` renders them as the Markdown table of docs/synthetic_city.md.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd

PATH = Path(__file__).with_name("targets.toml")


@functools.cache
def load() -> dict:
    return tomllib.loads(PATH.read_text(encoding="utf-8"))


def shares(section: dict) -> dict[str, float]:
    """``values`` (counts, e.g. 万名) as shares of their total, in file order."""
    v = section["values"]
    total = sum(v.values())
    return {k: x / total for k, x in v.items()}


def age_band(age: np.ndarray) -> np.ndarray:
    """The 公报's age bands (completed years)."""
    edges = [30, 35, 40, 45, 50, 55, 60]
    labels = np.array(list(load()["stock"]["age"]["values"]))
    return labels[np.searchsorted(edges, age, side="left")]


def join_period(join: np.ndarray) -> np.ndarray:
    t = load()["stock"]["join_period"]
    bounds = np.array(t["bounds"], dtype="datetime64[D]")
    return np.array(list(t["values"]))[np.searchsorted(bounds, join.astype("datetime64[D]"), side="right")]


OCCUPATIONS = tuple(load()["stock"]["occupation"]["values"])
COLLEGE = ("大专", "大学本科", "研究生")   # 大专及以上


# --------------------------------------------------------------------------------------------------
# measuring a generated city
# --------------------------------------------------------------------------------------------------

def _years(a, b) -> np.ndarray:
    """Completed years from dates ``a`` to dates (or one day) ``b``."""
    a = pd.DatetimeIndex(pd.to_datetime(np.asarray(a)))
    b = pd.DatetimeIndex(pd.to_datetime(np.broadcast_to(np.asarray(b, dtype="datetime64[D]"), a.shape)))
    return np.asarray(b.year - a.year - ((a.month > b.month) | ((a.month == b.month) & (a.day > b.day))))


def on_roll(members: pd.DataFrame, changes: pd.DataFrame, day) -> pd.DataFrame:
    """Members on the roll at the end of ``day``: joined (or transferred in) by then, not dead or gone."""
    day = np.datetime64(day, "D")
    c = changes.assign(change_date=changes.change_date.to_numpy().astype("datetime64[D]"))
    gone = set(c[c.change_type.isin(["去世", "转出"]) & (c.change_date <= day)].member_id)
    arrive = c[c.change_type == "转入"].groupby("member_id").change_date.min()
    m = members[members.join_date.to_numpy().astype("datetime64[D]") <= day]
    later_in = arrive[arrive > day].index
    return m[~m.member_id.isin(gone) & ~m.member_id.isin(later_in)]


def city_tables(city: Path | str) -> dict[str, pd.DataFrame]:
    city = Path(city)
    src = city / "source"
    faults = pd.read_parquet(city / "truth" / "faults.parquet")
    planted = set(pd.to_numeric(faults[(faults.system == "org") & (faults.table == "members")].record_key))
    members = pd.read_parquet(src / "org" / "members.parquet")
    return dict(
        members=members[~members.member_id.isin(planted)],   # measure the city, not its planted faults
        changes=pd.read_parquet(src / "org" / "member_status_changes.parquet"),
        orgs=pd.read_parquet(src / "org" / "organizations.parquet"),
    )


def measure(city: Path | str) -> pd.DataFrame:
    """The city beside each target. Columns: group, figure, target, generated, tolerance, within, source."""
    t = load()
    tb = city_tables(city)
    members, changes, orgs = tb["members"], tb["changes"], tb["orgs"]
    as_of = np.datetime64(t["as_of"], "D")
    year_start = np.datetime64(f"{str(as_of)[:4]}-01-01", "D")
    stock = on_roll(members, changes, as_of)
    rows = []

    def row(group, figure, target, value, tol, source):
        rows.append(dict(group=group, figure=figure, target=round(float(target), 4), generated=round(float(value), 4),
                         tolerance=tol, within=bool(abs(value - target) <= tol + 1e-12), source=source))

    st = t["stock"]
    row("存量", "女党员占比", st["female"]["share"], (stock.gender == "女").mean(), st["female"]["tolerance"],
        st["female"]["source"])
    college = stock.education.isin(COLLEGE)
    row("存量", "大专及以上学历占比", st["college"]["share"], college.mean(), st["college"]["tolerance"],
        st["college"]["source"])
    row("存量", "少数民族党员占比", st["minority"]["share"], (stock.ethnicity != "汉族").mean(),
        st["minority"]["tolerance"], st["minority"]["source"])
    row("存量", "预备党员占比", st["probationary"]["share"],
        (stock.full_member_date.isna() | (stock.full_member_date.to_numpy().astype("datetime64[D]") > as_of)).mean(),
        st["probationary"]["tolerance"], st["probationary"]["source"])
    bands = pd.Series(age_band(_years(stock.birth_date, as_of))).value_counts(normalize=True)
    for k, v in shares(st["age"]).items():
        row("年龄", k, v, bands.get(k, 0.0), st["age"]["tolerance"], st["age"]["source"])
    per = pd.Series(join_period(stock.join_date.to_numpy())).value_counts(normalize=True)
    for k, v in shares(st["join_period"]).items():
        row("入党时间", k, v, per.get(k, 0.0), st["join_period"]["tolerance"], st["join_period"]["source"])
    occ = stock.occupation.value_counts(normalize=True)
    for k, v in shares(st["occupation"]).items():
        row("职业", k, v, occ.get(k, 0.0), st["occupation"]["tolerance"], st["occupation"]["source"])

    fl = t["flow"]
    begin = on_roll(members, changes, year_start - 1)
    c = changes.assign(change_date=changes.change_date.to_numpy().astype("datetime64[D]"))
    in_year = c[(c.change_date >= year_start) & (c.change_date <= as_of)]
    joined = in_year[in_year.change_type == "入党"].member_id
    died = in_year[in_year.change_type == "去世"].member_id
    row("流量", "年度发展党员 / 年初党员", fl["recruit_rate"]["rate"], len(joined) / len(begin),
        fl["recruit_rate"]["tolerance"], fl["recruit_rate"]["source"])
    row("流量", "年度减少（去世等）/ 年初党员", fl["exit_rate"]["rate"], len(died) / len(begin),
        fl["exit_rate"]["tolerance"], fl["exit_rate"]["source"])
    rec = members[members.member_id.isin(joined)]
    if len(rec):
        join_age = _years(rec.birth_date, rec.join_date)
        row("发展党员", "35岁及以下占比", fl["recruits_young"]["share"], (join_age <= 35).mean(),
            fl["recruits_young"]["tolerance"], fl["recruits_young"]["source"])
        row("发展党员", "大专及以上学历占比", fl["recruits_college"]["share"],
            rec.education.isin(COLLEGE).mean(), fl["recruits_college"]["tolerance"],
            fl["recruits_college"]["source"])
        row("发展党员", "女性占比", fl["recruits_female"]["share"], (rec.gender == "女").mean(),
            fl["recruits_female"]["tolerance"], fl["recruits_female"]["source"])
        rocc = rec.occupation.value_counts(normalize=True)
        for k, v in shares(fl["recruits_occupation"]).items():
            row("发展党员职业", k, v, rocc.get(k, 0.0), fl["recruits_occupation"]["tolerance"],
                fl["recruits_occupation"]["source"])
    ot = t["orgs"]["members_per_branch"]
    branches = orgs[orgs.org_level == "党支部"]
    row("组织", "每个支部党员数", ot["value"], len(stock) / len(branches), ot["tolerance"], ot["source"])
    return pd.DataFrame(rows)


def report(m: pd.DataFrame, title: str = "") -> str:
    """The Markdown table of a :func:`measure` result, with the sources."""
    t = load()
    lines = [title or f"The generated city on {t['as_of']} beside the official figures", "",
             "| 分组 | 指标 | 目标 | 生成 | 容差 | 是否达标 | 来源 |", "|---|---|---|---|---|---|---|"]
    for r in m.itertuples():
        pct = r.figure != "每个支部党员数"
        digits = 2 if pct and r.target < 0.05 else 1
        def f(x, pct=pct, digits=digits):
            return f"{x * 100:.{digits}f}%" if pct else f"{x:.1f}"

        tol = f"±{r.tolerance * 100:.{digits}f} pp" if pct else f"±{r.tolerance:.1f}"
        lines.append(f"| {r.group} | {r.figure} | {f(r.target)} | {f(r.generated)} | {tol} | "
                     f"{'是' if r.within else '**否**'} | {r.source} |")
    lines += ["", "Sources:", ""]
    for k, s in t["sources"].items():
        lines.append(f"- `{k}`: {s['title']}, {s['publisher']}, {s['published']}" + (f" ({s['note']})" if "note" in s else ""))
    return "\n".join(lines) + "\n"
