"""``dbt_project/models/exposures.yml`` lists exactly the real readers of every mart, and no mart is
unread. The readers are derived from the code that reads the published snapshot: the Superset
bundle (dashboard -> charts -> datasets -> the tables their SQL reads), the operational API's
modules and the weekly brief's queries."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MARTS = ROOT / "dbt_project" / "models" / "marts"
BUNDLE = ROOT / "infra" / "superset" / "bundle"
MART = re.compile(r"\bmart_[a-z_]+\b")
SQL_TABLES = re.compile(r"\b(?:from|join)\s+([a-z_][a-z0-9_]*)", re.I)


def marts() -> set[str]:
    return {p.stem for p in MARTS.rglob("mart_*.sql")}


def superset_readers() -> dict[str, set[str]]:
    """exposure name (superset_<dashboard file>) -> marts its charts' datasets read."""
    datasets = {}
    for p in (BUNDLE / "datasets").glob("*.yaml"):
        d = yaml.safe_load(p.read_text())
        sql = d.get("sql") or d.get("table_name", "")
        datasets[d["uuid"]] = {t for t in SQL_TABLES.findall(sql) if t.startswith("mart_")}
    out = {}
    for p in (BUNDLE / "dashboards").glob("*.yaml"):
        d = yaml.safe_load(p.read_text())
        charts = [c for row in d["rows"] for c in row]
        read = set()
        for c in charts:
            read |= datasets[yaml.safe_load((BUNDLE / "charts" / f"{c}.yaml").read_text())["dataset_uuid"]]
        out[f"superset_{p.stem}"] = read
    return out


def code_readers(folder: Path) -> set[str]:
    """Marts named in the code of a package (the API's routes, the brief's queries); comments and
    docstrings aside, a mart name in these modules is a table they query."""
    found = set()
    for p in folder.rglob("*.py"):
        text = "\n".join(line.split("#", 1)[0] for line in p.read_text().splitlines())
        found |= set(MART.findall(text))
    return found


def derived() -> dict[str, set[str]]:
    out = superset_readers()
    out["operational_api"] = code_readers(ROOT / "redcloud" / "api")
    out["weekly_brief"] = code_readers(ROOT / "redcloud" / "brief")
    return out


def declared() -> dict[str, set[str]]:
    doc = yaml.safe_load((ROOT / "dbt_project" / "models" / "exposures.yml").read_text())
    return {e["name"]: {re.fullmatch(r"ref\('([a-z_]+)'\)", d).group(1) for d in e.get("depends_on", [])}
            for e in doc["exposures"]}


def test_exposures_list_exactly_the_real_readers():
    real = {k: v for k, v in derived().items() if v}
    assert declared() == real


def test_every_mart_has_a_reader():
    read = set().union(*derived().values())
    assert marts() - read == set(), "marts nobody reads: give them a reader (dashboard, API route, brief) or remove them"
    assert read <= marts(), read - marts()
