"""Build the Superset import bundle (a ZIP) from the sources in ``infra/superset/bundle/``.

The sources are Superset's own export format (``metadata.yaml``, ``databases/``, ``datasets/``,
``charts/``, ``dashboards/``) with the parts that depend on the running system left out; this
builder fills them in:

- the database URI: ``{{ snapshot_uri }}`` becomes ``duckdb:////<serving>/current.duckdb?access_mode=read_only``;
- dataset ``columns``: read from the snapshot (``DESCRIBE`` of the dataset SQL), with the Chinese
  ``verbose_names`` of the source applied; a dataset whose SQL names a table the snapshot does not
  have (a mart or model score that has not landed yet) is left out, with its charts, and a
  dashboard left without charts is left out too (reported in the result);
- dataset ``metrics``: ``{metric_name, expression, verbose_name, d3format}`` shorthand expanded;
- chart ``uuid`` (uuid5 of the file name when absent), default ``params`` and a ``query_context``
  (so ``GET /api/v1/chart/<id>/data/`` works right after import);
- dashboard ``position`` from ``rows`` and ``native_filter_configuration`` from ``filters``.

Runs in the pipeline venv (DuckDB + PyYAML); Superset itself never imports this module.

    python infra/superset/build_bundle.py --snapshot .run/serving/current.duckdb --out bundle.zip
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

import yaml

SRC = Path(__file__).resolve().parent / "bundle"
NS = uuid.UUID("6f1c2a3e-5b7d-4e8f-9a0b-1c2d3e4f5a6b")
ROOT_DIR = "redcloud_bundle"
TEMPORAL = ("DATE", "TIMESTAMP")


def snapshot_uri(snapshot: Path) -> str:
    """SQLAlchemy URI for duckdb-engine: absolute path (4 slashes), opened read-only."""
    return f"duckdb:///{Path(snapshot).absolute()}?access_mode=read_only"


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _describe(con, sql: str) -> list[tuple[str, str]] | None:
    import duckdb

    try:
        rows = con.execute(f"describe select * from ({sql}) as q").fetchall()
    except duckdb.CatalogException:
        return None
    return [(r[0], r[1]) for r in rows]


def _column(name: str, dtype: str, verbose: str | None) -> dict[str, Any]:
    return {
        "column_name": name, "verbose_name": verbose, "is_dttm": dtype.upper().startswith(TEMPORAL),
        "is_active": True, "type": dtype, "groupby": True, "filterable": True, "expression": None,
        "description": None, "python_date_format": None, "extra": None, "advanced_data_type": None,
    }


def _metric(m: dict[str, Any]) -> dict[str, Any]:
    return {"metric_name": m["metric_name"], "verbose_name": m.get("verbose_name"), "metric_type": None,
            "expression": m["expression"], "description": m.get("description"), "d3format": m.get("d3format"),
            "currency": None, "extra": {"warning_markdown": None}, "warning_text": None}


def build_dataset(src: dict[str, Any], con) -> dict[str, Any] | None:
    cols = _describe(con, src["sql"])
    if cols is None:
        return None
    verbose = src.get("verbose_names") or {}
    names = {c for c, _ in cols}
    missing = [c for c in verbose if c not in names]
    if missing:
        raise ValueError(f"dataset {src['table_name']}: verbose_names for unknown columns {missing}")
    out = {k: v for k, v in src.items() if k not in ("verbose_names", "metrics", "access")}
    out.update({
        "columns": [_column(c, t, verbose.get(c)) for c, t in cols],
        "metrics": [_metric(m) for m in src.get("metrics", [])],
        "offset": 0, "cache_timeout": None, "catalog": None, "filter_select_enabled": True,
        "fetch_values_predicate": None, "extra": None, "normalize_columns": False, "always_filter_main_dttm": False,
        "template_params": None, "default_endpoint": None,
    })
    return out


def _axis_column(x: str, grain: str | None) -> Any:
    if grain:
        return {"timeGrain": grain, "columnType": "BASE_AXIS", "sqlExpression": x, "label": x, "expressionType": "SQL"}
    return x


def chart_query(params: dict[str, Any], viz: str) -> dict[str, Any]:
    """A query context equivalent to what the chart asks for (without post-processing)."""
    if viz == "big_number_total":
        columns, metrics = [], [params["metric"]]
    elif viz == "pie":
        columns, metrics = list(params["groupby"]), [params["metric"]]
    elif viz.startswith("echarts_timeseries"):
        columns = [_axis_column(params["x_axis"], params.get("time_grain_sqla"))] + list(params.get("groupby", []))
        metrics = list(params["metrics"])
    elif viz == "table":
        columns, metrics = list(params["groupby"]), list(params["metrics"])
    else:
        raise ValueError(f"unsupported viz_type {viz}")
    order_metric = params.get("timeseries_limit_metric") or (metrics[0] if metrics else None)
    query = {
        "columns": columns, "metrics": metrics, "filters": [], "extras": {"having": "", "where": ""},
        "applied_time_extras": {}, "orderby": [[order_metric, not params.get("order_desc", True)]] if order_metric else [],
        "annotation_layers": [], "row_limit": params.get("row_limit", 10000), "series_limit": 0,
        "order_desc": params.get("order_desc", True), "url_params": {}, "custom_params": {}, "custom_form_data": {},
        "time_range": "No filter",
    }
    return {"datasource": {"id": 0, "type": "table"}, "force": False, "queries": [query],
            "form_data": params, "result_format": "json", "result_type": "full"}


def build_chart(name: str, src: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    viz = src["viz_type"]
    p = copy.deepcopy(src.get("params") or {})
    p.setdefault("viz_type", viz)
    p.setdefault("color_scheme", "supersetColors")
    p.setdefault("row_limit", 10000)
    p.setdefault("adhoc_filters", [])
    dttm = dataset.get("main_dttm_col")
    if dttm and not any(f.get("operator") == "TEMPORAL_RANGE" for f in p["adhoc_filters"]):
        # the native time-range filter narrows this column (Superset's default for new charts)
        p["adhoc_filters"].append({"clause": "WHERE", "comparator": "No filter", "expressionType": "SIMPLE",
                                   "operator": "TEMPORAL_RANGE", "subject": dttm})
    if viz == "pie":
        p.setdefault("show_labels", True)
        p.setdefault("label_type", "key_percent")
        p.setdefault("show_legend", True)
        p.setdefault("legendOrientation", "top")
    elif viz.startswith("echarts_timeseries"):
        p.setdefault("groupby", [])
        p.setdefault("show_legend", True)
        p.setdefault("rich_tooltip", True)
        p.setdefault("x_axis_time_format", "smart_date")
        p.setdefault("truncateXAxis", True)
        p.setdefault("y_axis_bounds", [None, None])
        if viz.endswith("_bar"):
            p.setdefault("orientation", "vertical")
    elif viz == "table":
        p.setdefault("query_mode", "aggregate")
        p.setdefault("all_columns", [])
        p.setdefault("percent_metrics", [])
        p.setdefault("order_desc", True)
        if "order_by_metric" in p:
            p["timeseries_limit_metric"] = p.pop("order_by_metric")
        p.setdefault("table_timestamp_format", "smart_date")
        p.setdefault("show_cell_bars", True)
    elif viz == "big_number_total":
        p.setdefault("header_font_size", 0.4)
        p.setdefault("subheader_font_size", 0.15)
    chart_uuid = src.get("uuid") or str(uuid.uuid5(NS, f"chart:{name}"))
    return {
        "slice_name": src["slice_name"], "description": src.get("description"), "certified_by": None,
        "certification_details": None, "viz_type": viz, "params": p, "cache_timeout": None,
        "query_context": json.dumps(chart_query(p, viz), ensure_ascii=False),
        "uuid": chart_uuid, "version": "1.0.0", "dataset_uuid": src["dataset_uuid"],
    }


def _short(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def build_dashboard(src: dict[str, Any], charts: dict[str, dict[str, Any]],
                    datasets_by_name: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Returns the dashboard config and the chart names it left out (their dataset is missing)."""
    position: dict[str, Any] = {
        "DASHBOARD_VERSION_KEY": "v2",
        "ROOT_ID": {"type": "ROOT", "id": "ROOT_ID", "children": ["GRID_ID"]},
        "GRID_ID": {"type": "GRID", "id": "GRID_ID", "children": [], "parents": ["ROOT_ID"]},
        "HEADER_ID": {"id": "HEADER_ID", "type": "HEADER", "meta": {"text": src["dashboard_title"]}},
    }
    dropped, fake_id, ids = [], 0, {}
    for r, row in enumerate(src["rows"]):
        present = [c for c in row if c in charts]
        dropped += [c for c in row if c not in charts]
        if not present:
            continue
        row_id = f"ROW-{_short(src['uuid'] + str(r))}"
        position["GRID_ID"]["children"].append(row_id)
        position[row_id] = {"type": "ROW", "id": row_id, "children": [], "parents": ["ROOT_ID", "GRID_ID"],
                            "meta": {"background": "BACKGROUND_TRANSPARENT"}}
        width = 12 // len(present)
        for name in present:
            fake_id += 1
            ids[name] = fake_id
            chart = charts[name]
            cid = f"CHART-{_short(src['uuid'] + name)}"
            position[row_id]["children"].append(cid)
            position[cid] = {"type": "CHART", "id": cid, "children": [], "parents": ["ROOT_ID", "GRID_ID", row_id],
                             "meta": {"width": width, "height": 30 if chart["viz_type"] == "big_number_total" else 55,
                                      "chartId": fake_id, "uuid": chart["uuid"], "sliceName": chart["slice_name"]}}
    filters, by_name = [], {}
    for f in src.get("filters", []):
        fid = f"NATIVE_FILTER-{_short(src['uuid'] + f['name'])}"
        by_name[f["name"]] = fid
        base = {"id": fid, "name": f["name"], "type": "NATIVE_FILTER", "description": "",
                # charts listed under ``exclude`` (their dataset lacks the column) are out of the filter's scope
                "scope": {"rootPath": ["ROOT_ID"], "excluded": [ids[c] for c in f.get("exclude", []) if c in ids]},
                "cascadeParentIds": [],
                "defaultDataMask": {"extraFormData": {}, "filterState": {}, "ownState": {}}}
        if f.get("type") == "time":
            base.update({"filterType": "filter_time", "targets": [{}], "controlValues": {}})
        else:
            ds = datasets_by_name.get(f["dataset"])
            if ds is None:
                continue
            base.update({
                "filterType": "filter_select",
                "targets": [{"column": {"name": f["column"]}, "datasetUuid": ds["uuid"]}],
                "controlValues": {"enableEmptyFilter": False, "defaultToFirstItem": False, "multiSelect": True,
                                  "searchAllOptions": False, "inverseSelection": False},
            })
            if f.get("parent") in by_name:
                base["cascadeParentIds"] = [by_name[f["parent"]]]
        filters.append(base)
    out = {
        "dashboard_title": src["dashboard_title"], "description": src.get("description"), "css": "",
        "slug": src.get("slug"), "certified_by": "", "certification_details": "", "published": True,
        "uuid": src["uuid"], "version": "1.0.0", "position": position,
        "metadata": {"native_filter_configuration": filters, "color_scheme": "supersetColors",
                     "refresh_frequency": 0, "expanded_slices": {}, "label_colors": {}, "shared_label_colors": [],
                     "timed_refresh_immune_slices": [], "cross_filters_enabled": False, "chart_configuration": {},
                     "default_filters": "{}"},
    }
    return out, dropped


def build(snapshot: Path, out: Path, src_dir: Path = SRC) -> dict[str, Any]:
    """Write the ZIP to ``out``; return what went in and what was left out."""
    import duckdb

    files: dict[str, Any] = {"metadata.yaml": _load(src_dir / "metadata.yaml")}
    for p in sorted((src_dir / "databases").glob("*.yaml")):
        db = _load(p)
        db["sqlalchemy_uri"] = db["sqlalchemy_uri"].replace("{{ snapshot_uri }}", snapshot_uri(snapshot))
        files[f"databases/{p.name}"] = db
    con = duckdb.connect(str(snapshot), read_only=True)
    datasets, datasets_by_name, skipped_datasets, city_only, shared = {}, {}, [], [], []
    try:
        for p in sorted((src_dir / "datasets").glob("*.yaml")):
            src = _load(p)
            ds = build_dataset(src, con)
            if ds is None:
                skipped_datasets.append(p.stem)
                continue
            datasets[ds["uuid"]] = ds
            datasets_by_name[p.stem] = ds
            if src.get("access") == "city":  # no county column: county roles do not get it
                city_only.append(ds["table_name"])
            elif src.get("access") == "shared":  # the same for every county (no county rows): no RLS filter
                shared.append(ds["table_name"])
            files[f"datasets/{p.name}"] = ds
    finally:
        con.close()
    charts, skipped_charts = {}, []
    for p in sorted((src_dir / "charts").glob("*.yaml")):
        src = _load(p)
        if src["dataset_uuid"] not in datasets:
            skipped_charts.append(p.stem)
            continue
        charts[p.stem] = build_chart(p.stem, src, datasets[src["dataset_uuid"]])
        files[f"charts/{p.name}"] = charts[p.stem]
    dashboards, skipped_dashboards = {}, []
    for p in sorted((src_dir / "dashboards").glob("*.yaml")):
        src = _load(p)
        dash, dropped = build_dashboard(src, charts, datasets_by_name)
        if not any(v.get("type") == "CHART" for v in dash["position"].values() if isinstance(v, dict)):
            skipped_dashboards.append(src["dashboard_title"])
            continue
        dashboards[src["dashboard_title"]] = {"uuid": src["uuid"], "slug": src.get("slug"),
                                              "charts": [charts[c]["slice_name"] for r in src["rows"] for c in r if c in charts],
                                              "dropped_charts": dropped}
        files[f"dashboards/{p.name}"] = dash
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in sorted(files.items()):
            z.writestr(f"{ROOT_DIR}/{name}", yaml.safe_dump(content, allow_unicode=True, sort_keys=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    tmp.replace(out)
    return {"zip": str(out), "datasets": sorted(d["table_name"] for d in datasets.values()),
            "city_datasets": sorted(city_only), "shared_datasets": sorted(shared),
            "charts": len(charts), "dashboards": dashboards,
            "skipped": {"datasets": skipped_datasets, "charts": skipped_charts, "dashboards": skipped_dashboards}}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--snapshot", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()
    print(json.dumps(build(a.snapshot, a.out), ensure_ascii=False, indent=2))
