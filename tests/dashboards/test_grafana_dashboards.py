"""The Grafana dashboards: well-formed for grafana-clickhouse-datasource, and every panel's SQL
runs on the embedded store with the macros expanded (All and specific selections)."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import pytest
import yaml

from dashboards.grafana_build import DASHBOARDS, DS_TYPE, GRAFANA_DIR, VARIABLES, render_all
from dashboards.macros import Expansion, expand
from dashboards.report import load_dashboards, resolve_options

FILES = [d.file for d in DASHBOARDS]


def _load(name: str) -> dict:
    return json.loads((GRAFANA_DIR / name).read_text())


def test_json_files_are_the_built_definitions():
    rendered = render_all()
    for name in FILES:
        assert (GRAFANA_DIR / name).read_text() == rendered[name], f"{name} is stale: run python -m dashboards.grafana_build"


@pytest.mark.parametrize("name", FILES)
def test_dashboard_has_templated_datasource_variables_and_time_filters(name):
    dash = _load(name)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == DS_TYPE
    for v in VARIABLES:
        assert variables[v]["type"] == "query" and variables[v]["multi"] and variables[v]["includeAll"]
        assert variables[v]["datasource"]["uid"] == "${datasource}"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 4
    for panel in dash["panels"]:
        assert panel["datasource"] == {"type": DS_TYPE, "uid": "${datasource}"}
        target = panel["targets"][0]
        assert target["editorType"] == "sql" and target["datasource"]["uid"] == "${datasource}"
        assert "$__timeFilter(" in target["rawSql"], panel["title"]
        assert "$__conditionalAll(cluster IN (${cluster:singlequote}), $cluster)" in target["rawSql"]


def test_the_four_dashboards_and_provisioning_files():
    titles = {d["title"] for d in load_dashboards()}
    assert titles == {"fleetledger / Cost", "fleetledger / Idle reservations", "fleetledger / Hot experts",
                      "fleetledger / Fleet health"}
    ds = yaml.safe_load((GRAFANA_DIR / "datasource.yaml").read_text())
    assert ds["datasources"][0]["type"] == DS_TYPE
    assert "password" in ds["datasources"][0]["secureJsonData"]
    prov = yaml.safe_load((GRAFANA_DIR / "dashboards.yaml").read_text())
    assert prov["providers"][0]["type"] == "file"


def _panels():
    for dash in load_dashboards():
        for panel in dash["panels"]:
            yield dash, panel


def test_every_panel_and_variable_query_runs_with_all_selected(fleet_store, fleet_spec):
    start, end = fleet_spec.start, fleet_spec.end
    empty = []
    for dash in load_dashboards():
        options = resolve_options(fleet_store, dash, start, end)
        assert options["cluster"] == ["default"]
        assert set(options["model"]) == set(fleet_spec.models)
        assert "unlabelled" in options["workflow"] and set(options["tenant"]) == set(fleet_spec.tenants)
        ctx = Expansion(start, end, selected={k: None for k in options}, options=options)
        for panel in dash["panels"]:
            sql = expand(panel["targets"][0]["rawSql"], ctx)
            table = fleet_store.query_arrow(sql)
            if table.num_rows == 0:
                empty.append(panel["title"])
            if panel["type"] == "timeseries":
                assert table.column_names[0] == "time" and table.num_columns == 3, panel["title"]
    assert empty == [], f"panels without data on a populated fleet: {empty}"


def test_panels_run_with_specific_selections_and_filter(fleet_store, fleet_spec):
    start, end = fleet_spec.start, fleet_spec.end
    cost = load_dashboards()[0]
    options = resolve_options(fleet_store, cost, start, end)
    total_sql = next(p for p in cost["panels"] if p["type"] == "stat")["targets"][0]["rawSql"]

    def total(**selected):
        sel = {k: None for k in options}
        sel.update(selected)
        return fleet_store.query_rows(expand(total_sql, Expansion(start, end, selected=sel, options=options)))[0][0]

    everything = total()
    chat = total(workflow=["chat"])
    rest = total(workflow=[w for w in options["workflow"] if w != "chat"])
    assert 0 < chat < everything
    assert math.isclose(chat + rest, everything, rel_tol=1e-9)
    assert total(cluster=["no-such-cluster"]) == 0
    assert math.isclose(total(model=["llama3-8b"], tenant=["acme"]) + total(model=["llama3-8b"], tenant=[
        t for t in options["tenant"] if t != "acme"]), total(model=["llama3-8b"]), rel_tol=1e-9)
    # the workflow list narrows when a cluster is chosen (chained variables)
    none = Expansion(start, end, selected={"cluster": ["no-such-cluster"]}, options={"cluster": ["default"]})
    sql = next(v for v in cost["templating"]["list"] if v["name"] == "workflow")["query"]
    assert fleet_store.query_rows(expand(sql, none)) == []


def test_cost_panel_equals_the_ledger_and_time_range_cuts(fleet_store, fleet_spec):
    """The dashboards show the same numbers as the tables: total cost = sum of workflow costs."""
    start, end = fleet_spec.start, fleet_spec.end
    cost = load_dashboards()[0]
    options = resolve_options(fleet_store, cost, start, end)
    ctx = Expansion(start, end, selected={k: None for k in options}, options=options)
    total_sql = next(p for p in cost["panels"] if p["type"] == "stat")["targets"][0]["rawSql"]
    shown = fleet_store.query_rows(expand(total_sql, ctx))[0][0]
    ledger = fleet_store.query_rows("SELECT sum(cost_usd) FROM workflow_costs_hourly FINAL")[0][0]
    assert math.isclose(shown, ledger, rel_tol=1e-9)
    first_day = Expansion(start, start + timedelta(hours=23, minutes=59), selected=ctx.selected, options=options)
    day_total = fleet_store.query_rows(expand(total_sql, first_day))[0][0]
    expected = fleet_store.query_rows(
        "SELECT sum(cost_usd) FROM workflow_costs_hourly FINAL WHERE hour < {t:DateTime64(3)}",
        {"t": (start + timedelta(days=1)).replace(tzinfo=None)})[0][0]
    assert math.isclose(day_total, expected, rel_tol=1e-9) and day_total < shown


@pytest.mark.parametrize("title,column", [("GPU utilisation by GPU model", "sm_util_pct"),
                                          ("Mean GPU power draw by GPU model", "power_w")])
def test_health_panels_on_the_rollup_show_the_raw_samples_means(fleet_store, fleet_spec, title, column):
    """The fleet's samples reach gpu_samples_5m only through its materialized view (populate
    inserts gpu_samples, as the shipper does); the panel shows what avg() on the raw rows gives."""
    health = next(d for d in load_dashboards() if d["title"] == "fleetledger / Fleet health")
    panel = next(p for p in health["panels"] if p["title"] == title)
    assert "FROM gpu_samples_5m" in panel["targets"][0]["rawSql"] and panel["interval"] == "5m"
    options = resolve_options(fleet_store, health, fleet_spec.start, fleet_spec.end)
    ctx = Expansion(fleet_spec.start, fleet_spec.end, selected={k: None for k in options}, options=options)
    shown = fleet_store.query_rows(expand(panel["targets"][0]["rawSql"], ctx))
    raw = fleet_store.query_rows(expand(
        f"SELECT $__timeInterval(ts) AS time, gpu_model, avg({column}) FROM gpu_samples "
        "WHERE $__timeFilter(ts) GROUP BY time, gpu_model ORDER BY time, gpu_model", ctx))
    assert len(raw) > 10 and [r[:2] for r in shown] == [r[:2] for r in raw]
    assert all(math.isclose(s[2], r[2], rel_tol=1e-9) for s, r in zip(shown, raw, strict=True))
