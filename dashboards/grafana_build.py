"""The four Grafana dashboards, defined once here and written to ``dashboards/grafana/*.json``.

Run ``python -m dashboards.grafana_build`` after changing a panel; a test fails when the JSON
files and these definitions disagree. The JSON targets ``grafana-clickhouse-datasource`` (v4)
with a templated data source (``$datasource``) and the variables cluster, model, workflow and
tenant. Panel SQL follows conventions the HTML report relies on: time series return
``(time, series, value)`` rows, bar charts ``(label, value, ...)``, heatmaps
``(x, y, value)``, stats one value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GRAFANA_DIR = Path(__file__).resolve().parent / "grafana"
DS_TYPE = "grafana-clickhouse-datasource"
DS_REF = {"type": DS_TYPE, "uid": "${datasource}"}
VARIABLES = ("cluster", "model", "workflow", "tenant")

CL = "$__conditionalAll(cluster IN (${cluster:singlequote}), $cluster)"
MD = "$__conditionalAll(model IN (${model:singlequote}), $model)"
WF = "$__conditionalAll(workflow IN (${workflow:singlequote}), $workflow)"
TN = "$__conditionalAll(tenant IN (${tenant:singlequote}), $tenant)"
WF_FILTERS = f"{CL} AND {MD} AND {WF} AND {TN}"


@dataclass(frozen=True)
class Panel:
    title: str
    type: str  # timeseries | barchart | piechart | heatmap | table | stat
    sql: str
    unit: str = "none"
    description: str = ""
    width: int = 12
    height: int = 8
    min_interval: str = ""  # Grafana's "Min interval": never bucket finer than the table's grain


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    file: str
    description: str
    default_range: str
    panels: tuple[Panel, ...]


COST = Dashboard(
    uid="fleetledger-cost", title="fleetledger / Cost", file="cost.json", default_range="now-7d",
    description="Attributed GPU cost by workflow, unit economics and reasoning-mode share (workflow_costs_hourly).",
    panels=(
        Panel("Cost by workflow", "timeseries", unit="currencyUSD", width=24, sql=f"""
SELECT $__timeInterval(hour) AS time, workflow, sum(cost_usd) AS cost
FROM workflow_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {WF_FILTERS}
GROUP BY time, workflow
ORDER BY time, workflow"""),
        Panel("$ per 1M tokens by model and workflow", "barchart", unit="currencyUSD", sql=f"""
SELECT concat(model, ' / ', workflow) AS model_workflow,
       sum(cost_usd) / nullIf(sum(prompt_tokens) + sum(completion_tokens), 0) * 1e6 AS usd_per_1m_tokens
FROM workflow_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {WF_FILTERS}
GROUP BY model_workflow
HAVING usd_per_1m_tokens IS NOT NULL
ORDER BY usd_per_1m_tokens DESC"""),
        Panel("GPU-seconds per 1k tokens by model and workflow", "barchart", unit="s", sql=f"""
SELECT concat(model, ' / ', workflow) AS model_workflow,
       sum(gpu_seconds) / nullIf(sum(prompt_tokens) + sum(completion_tokens), 0) * 1e3 AS gpu_s_per_1k_tokens
FROM workflow_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {WF_FILTERS}
GROUP BY model_workflow
HAVING gpu_s_per_1k_tokens IS NOT NULL
ORDER BY gpu_s_per_1k_tokens DESC"""),
        Panel("Reasoning-mode share of cost", "piechart", unit="currencyUSD", sql=f"""
SELECT if(reasoning_mode = '', 'unset', reasoning_mode) AS mode, sum(cost_usd) AS cost
FROM workflow_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {WF_FILTERS}
GROUP BY mode
ORDER BY cost DESC"""),
        Panel("Total attributed cost", "stat", unit="currencyUSD", sql=f"""
SELECT sum(cost_usd) AS total_cost
FROM workflow_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {WF_FILTERS}"""),
    ),
)

IDLE = Dashboard(
    uid="fleetledger-idle", title="fleetledger / Idle reservations", file="idle.json", default_range="now-7d",
    description="Reserved GPU time that served nothing: idle $ and % by reservation and owner (idle_costs_hourly).",
    panels=(
        Panel("Idle $ by reservation", "barchart", unit="currencyUSD", sql=f"""
SELECT concat(reservation_id, ' (', owner_team, ', ', pricing_model, ')') AS reservation,
       sum(idle_cost_usd) AS idle_usd,
       100 * sum(idle_cost_usd) / nullIf(sum(reserved_cost_usd), 0) AS idle_pct
FROM idle_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {CL}
GROUP BY reservation
ORDER BY idle_usd DESC"""),
        Panel("Idle % by owner team", "barchart", unit="percent", sql=f"""
SELECT owner_team,
       100 * sum(idle_cost_usd) / nullIf(sum(reserved_cost_usd), 0) AS idle_pct,
       sum(idle_cost_usd) AS idle_usd
FROM idle_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {CL}
GROUP BY owner_team
ORDER BY idle_pct DESC"""),
        Panel("Idle cost trend by pricing model", "timeseries", unit="currencyUSD", sql=f"""
SELECT $__timeInterval(hour) AS time, pricing_model, sum(idle_cost_usd) AS idle_usd
FROM idle_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {CL}
GROUP BY time, pricing_model
ORDER BY time, pricing_model"""),
        Panel("Reservation utilisation (busy / reserved GPU-hours)", "timeseries", unit="percent", sql=f"""
SELECT $__timeInterval(hour) AS time, reservation_id,
       100 * sum(busy_gpu_hours) / nullIf(sum(reserved_gpu_hours), 0) AS utilisation_pct
FROM reservation_utilisation_v
WHERE $__timeFilter(hour) AND {CL}
GROUP BY time, reservation_id
ORDER BY time, reservation_id"""),
        Panel("Worst offenders (GPUs by idle $)", "table", unit="currencyUSD", width=24, sql=f"""
SELECT reservation_id, owner_team, node, gpu_uuid, gpu_model,
       sum(idle_seconds) / 3600 AS idle_gpu_hours,
       sum(idle_cost_usd) AS idle_usd,
       100 * sum(idle_seconds) / nullIf(sum(reserved_seconds), 0) AS idle_pct
FROM idle_costs_hourly FINAL
WHERE $__timeFilter(hour) AND {CL}
GROUP BY reservation_id, owner_team, node, gpu_uuid, gpu_model
ORDER BY idle_usd DESC
LIMIT 20"""),
    ),
)

EXPERTS = Dashboard(
    uid="fleetledger-experts", title="fleetledger / Hot experts", file="experts.json", default_range="now-24h",
    description="MoE expert load: layer x expert heat, balancedness (mean/max) and the imbalance tax (expert_hotness).",
    panels=(
        Panel("Layer x expert heat (mean share of layer tokens)", "heatmap", unit="percentunit", width=24, height=10,
              description="Mean share of each layer's tokens routed to each expert over the range (top-k experts per "
                          "window; experts outside the top-k count as 0).", sql=f"""
SELECT expert, layer,
       sum(share) / (SELECT greatest(uniqExact(window_start, engine_instance), 1) FROM expert_hotness FINAL
                     WHERE $__timeFilter(window_start) AND {CL} AND {MD}) AS mean_share
FROM hot_experts_v
WHERE $__timeFilter(window_start) AND {CL} AND {MD}
GROUP BY layer, expert
ORDER BY layer, expert"""),
        Panel("Balancedness trend (mean / max load, 1 = perfect)", "timeseries", unit="percentunit", sql=f"""
SELECT $__timeInterval(window_start) AS time, model, avg(balancedness) AS mean_balancedness
FROM expert_hotness FINAL
WHERE $__timeFilter(window_start) AND {CL} AND {MD}
GROUP BY time, model
ORDER BY time, model"""),
        Panel("Imbalance tax", "timeseries", unit="currencyUSD", sql=f"""
SELECT $__timeInterval(window_start) AS time, model, sum(imbalance_tax_usd) AS tax_usd
FROM expert_hotness FINAL
WHERE $__timeFilter(window_start) AND {CL} AND {MD}
GROUP BY time, model
ORDER BY time, model"""),
        Panel("Hottest experts", "table", width=16, sql=f"""
SELECT model, layer, expert,
       count() AS windows_hot,
       avg(share) AS mean_share_when_hot,
       avg(rank) AS mean_rank
FROM hot_experts_v
WHERE $__timeFilter(window_start) AND {CL} AND {MD}
GROUP BY model, layer, expert
ORDER BY windows_hot DESC, mean_share_when_hot DESC
LIMIT 20"""),
        Panel("Imbalance tax total", "stat", unit="currencyUSD", width=8, sql=f"""
SELECT sum(imbalance_tax_usd) AS total_tax_usd
FROM expert_hotness FINAL
WHERE $__timeFilter(window_start) AND {CL} AND {MD}"""),
    ),
)

HEALTH = Dashboard(
    uid="fleetledger-health", title="fleetledger / Fleet health", file="health.json", default_range="now-24h",
    description="GPU utilisation, power and Xid events from the NVML / DCGM collectors (gpu_samples_5m, gpu_events).",
    panels=(
        Panel("GPU utilisation by GPU model", "timeseries", unit="percent", min_interval="5m",
              description="Mean SM utilisation of the samples (5-minute rollup gpu_samples_5m).", sql=f"""
SELECT $__timeInterval(window_start) AS time, gpu_model,
       sum(sm_util_pct_sum) / nullIf(sum(sm_util_pct_samples), 0) AS util_pct
FROM gpu_samples_5m
WHERE $__timeFilter(window_start) AND {CL}
GROUP BY time, gpu_model
ORDER BY time, gpu_model"""),
        Panel("Mean GPU power draw by GPU model", "timeseries", unit="watt", min_interval="5m",
              description="Mean board power per GPU (NVML / DCGM samples, 5-minute rollup gpu_samples_5m); "
                          "x GPU count = fleet power.", sql=f"""
SELECT $__timeInterval(window_start) AS time, gpu_model,
       sum(power_w_sum) / nullIf(sum(power_w_samples), 0) AS mean_power_w
FROM gpu_samples_5m
WHERE $__timeFilter(window_start) AND {CL}
GROUP BY time, gpu_model
ORDER BY time, gpu_model"""),
        Panel("Xid events by code", "barchart", sql=f"""
SELECT concat('Xid ', toString(xid)) AS xid_code, count() AS events
FROM gpu_events
WHERE $__timeFilter(ts) AND {CL} AND event_kind = 'xid'
GROUP BY xid_code
ORDER BY events DESC"""),
        Panel("GPUs with Xid or lost events", "table", sql=f"""
SELECT node, gpu_uuid,
       countIf(event_kind = 'xid') AS xid_events,
       countIf(event_kind = 'gpu_lost') AS lost_events,
       arrayStringConcat(arraySort(groupUniqArray(toString(xid))), ',') AS xid_codes,
       max(ts) AS last_event
FROM gpu_events
WHERE $__timeFilter(ts) AND {CL}
GROUP BY node, gpu_uuid
ORDER BY xid_events + lost_events DESC
LIMIT 20"""),
    ),
)

DASHBOARDS = (COST, IDLE, EXPERTS, HEALTH)

VARIABLE_QUERIES = {
    "cluster": "SELECT DISTINCT cluster FROM reservations FINAL ORDER BY cluster",
    "model": f"SELECT DISTINCT model FROM engine_placements FINAL WHERE {CL} ORDER BY model",
    "workflow": f"SELECT DISTINCT workflow FROM workflow_costs_hourly WHERE {CL} ORDER BY workflow",
    "tenant": f"SELECT DISTINCT tenant FROM workflow_costs_hourly WHERE {CL} ORDER BY tenant",
}

_UNIT_FORMAT = {"timeseries": 0}  # plugin v4 formats: 0 time series, 1 table


def _variable(name: str) -> dict:
    sql = VARIABLE_QUERIES[name]
    return {
        "name": name, "label": name, "type": "query", "datasource": DS_REF, "query": sql, "definition": sql,
        "refresh": 2, "multi": True, "includeAll": True, "sort": 1, "hide": 0,
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]}, "options": [],
    }


def _panel(idx: int, panel: Panel, x: int, y: int) -> dict:
    fmt = _UNIT_FORMAT.get(panel.type, 1)
    out = {
        "id": idx, "type": panel.type, "title": panel.title, "description": panel.description,
        "datasource": DS_REF, "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}},
        "targets": [{
            "refId": "A", "datasource": DS_REF, "editorType": "sql", "format": fmt,
            "queryType": "timeseries" if fmt == 0 else "table", "rawSql": panel.sql.strip(),
        }],
    }
    if panel.min_interval:
        out["interval"] = panel.min_interval
    if panel.type == "heatmap":
        out["options"] = {"calculate": False, "color": {"scheme": "Oranges", "mode": "scheme"},
                          "yAxis": {"axisLabel": "layer"}, "cellGap": 1}
    if panel.type == "barchart":
        out["options"].update({"orientation": "horizontal", "xTickLabelRotation": 0})
    return out


def build(dash: Dashboard) -> dict:
    panels, x, y, row_h = [], 0, 0, 0
    for i, panel in enumerate(dash.panels, start=1):
        if x + panel.width > 24:
            x, y, row_h = 0, y + row_h, 0
        panels.append(_panel(i, panel, x, y))
        x, row_h = x + panel.width, max(row_h, panel.height)
    datasource_var = {
        "name": "datasource", "label": "ClickHouse", "type": "datasource", "query": DS_TYPE, "hide": 0,
        "current": {}, "options": [], "refresh": 1, "regex": "",
    }
    return {
        "uid": dash.uid, "title": dash.title, "description": dash.description, "tags": ["fleetledger"],
        "timezone": "utc", "editable": True, "schemaVersion": 39, "version": 1, "refresh": "5m",
        "time": {"from": dash.default_range, "to": "now"}, "annotations": {"list": []},
        "templating": {"list": [datasource_var] + [_variable(v) for v in VARIABLES]},
        "panels": panels,
    }


def render_all() -> dict[str, str]:
    return {d.file: json.dumps(build(d), indent=2) + "\n" for d in DASHBOARDS}


def main() -> None:
    GRAFANA_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        (GRAFANA_DIR / name).write_text(text)
        print(f"wrote {GRAFANA_DIR / name}")


if __name__ == "__main__":
    main()
