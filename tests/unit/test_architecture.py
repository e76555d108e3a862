"""The house rules that keep one home per thing: checked on the source tree, so a change that breaks
them fails here (no services needed)."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

from redcloud.rules import vocab
from redcloud.stages import registry

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = [p for d in ("redcloud", "spark_jobs", "models", "expectations", "dags")
              for p in sorted((ROOT / d).rglob("*.py")) if "demo" not in p.relative_to(ROOT).parts]


def _imports(path: Path, strings: bool = True) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
        elif (strings and isinstance(node, ast.Constant) and isinstance(node.value, str)
              and node.value.startswith("redcloud.")):
            out.add(node.value)   # importlib strings and "python -m" arguments count too
    return out


def test_production_code_never_imports_the_demo_package():
    assert len(PRODUCTION) > 60
    offenders = {str(p.relative_to(ROOT)): sorted(i for i in _imports(p) if i.startswith("redcloud.demo"))
                 for p in PRODUCTION}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_demo_reads_the_same_source_contracts():
    from redcloud import contracts
    from redcloud.demo.synth import ironcage

    assert ironcage.HEADERS is contracts.IRONCAGE_HEADERS
    aliases = {a for m in contracts.IRONCAGE_HEADER_ALIASES.values() for a in m}
    headers = {h for m in contracts.IRONCAGE_HEADERS.values() for h in m.values()}
    assert not aliases & headers, "an alias must not be another column's header"


def test_stages_are_declared_once_and_every_entry_resolves():
    from redcloud import pipeline

    names = [s.name for s in registry.STAGES + registry.PARTS]
    assert len(names) == len(set(names))
    for st in registry.STAGES + registry.PARTS:
        assert bool(st.entry) != bool(st.parts), st.name
        if st.entry:
            assert callable(pipeline.resolve(st)), st.name
        for p in st.parts:
            assert registry.get(p) in registry.PARTS
    # the registry loads by path in the Airflow virtualenv: standard library only
    stdlib = {"__future__", "dataclasses"}
    assert {i.split(".")[0] for i in _imports(ROOT / "redcloud" / "stages" / "registry.py", False)} <= stdlib
    assert {i.split(".")[0] for i in _imports(ROOT / "redcloud" / "rules" / "vocab.py", False)} <= {"__future__"}
    # no stage list is written out anywhere else
    listing = re.compile(r"""["']bronze["']\s*,\s*["']silver["']\s*,\s*["']gold["']""")
    found = [str(p.relative_to(ROOT)) for p in [*PRODUCTION, *(ROOT / "benchmarks").rglob("*.py")]
             if listing.search(p.read_text(encoding="utf-8")) and p != ROOT / "redcloud" / "lake" / "__init__.py"]
    assert found == []


def test_stages_read_their_settings_from_the_context():
    """A stage gets settings, rules and the lake from its RunContext; only entry points (the CLIs,
    services, the API process) read the process's settings."""
    entry_points = {"redcloud/cli.py", "redcloud/notify.py", "redcloud/spark.py", "redcloud/config/__init__.py",
                    "redcloud/brief/__main__.py", "redcloud/serving/publish.py", "redcloud/marts.py",
                    "redcloud/api/auth.py", "redcloud/api/deps.py", "redcloud/api/audit.py", "redcloud/api/db.py",
                    "redcloud/api/routes/briefs.py", "redcloud/api/routes/inbox.py"}
    readers = {str(p.relative_to(ROOT)) for p in PRODUCTION if "get_settings" in p.read_text(encoding="utf-8")}
    services = {r for r in readers if r.startswith("redcloud/services/")}
    assert readers - services - entry_points == set()
    for entry in ("redcloud/serving/publish.py", "redcloud/marts.py"):   # only their command-line main()
        tree = ast.parse((ROOT / entry).read_text(encoding="utf-8"))
        users = {f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
                 and "get_settings" in ast.unparse(f)}
        assert users == {"main"}, (entry, users)


RULE_WORDS = {*vocab.PROJECT_STATES, vocab.ON_ROLL, *vocab.MEMBERSHIP_STATUSES}
LITERAL = re.compile(r"""["']({})["']""".format("|".join(map(re.escape, sorted(RULE_WORDS, key=len, reverse=True)))))
ALLOWED = {"redcloud/rules/vocab.py"}


def test_no_rule_value_is_spelled_outside_the_vocabulary():
    """States and statuses appear as literals only in the vocabulary (the demo generator writes the
    source systems' values, and the DuckDB reference is a benchmark oracle: both are outside)."""
    files = [*PRODUCTION, *(ROOT / "dbt_project" / "models").rglob("*.sql"),
             *(ROOT / "dbt_project" / "models").rglob("*.yml"), *(ROOT / "dbt_project" / "macros").rglob("*.sql"),
             *(ROOT / "infra" / "superset" / "bundle").rglob("*.yaml"),
             *(ROOT / "redcloud" / "brief" / "templates").rglob("*.j2")]
    hits = {}
    for p in files:
        rel = str(p.relative_to(ROOT))
        if rel in ALLOWED:
            continue
        found = LITERAL.findall(p.read_text(encoding="utf-8"))
        if found:
            hits[rel] = sorted(set(found))
    assert hits == {}


@pytest.mark.parametrize("module", ["redcloud.pipeline", "redcloud.cli", "redcloud.context"])
def test_the_runner_imports_without_heavy_dependencies(module):
    """Starting the CLI or the runner must not import Spark, MLflow or dbt (they load per stage)."""
    import subprocess
    import sys

    code = (f"import sys, {module}; heavy = sorted(m for m in ('pyspark', 'mlflow', 'dbt', 'great_expectations') "
            "if m in sys.modules); print(heavy); sys.exit(1 if heavy else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    importlib.import_module(module)


def test_every_stage_module_imports_before_spark_starts():
    """The CLI imports a stage's module before it creates the Spark session: nothing may build a
    Spark column at import time (``F.col`` needs an active SparkContext)."""
    import subprocess
    import sys

    mods = sorted(f"redcloud.stages.{p.stem}" for p in (ROOT / "redcloud" / "stages").glob("*.py")
                  if p.stem != "__init__")
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\nprint('ok')"
    r = subprocess.run([sys.executable, "-c", code, *mods], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-2000:]
