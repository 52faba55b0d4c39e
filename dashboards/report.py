"""The offline HTML report: the four Grafana dashboards rendered from the store into ONE file.

The report runs exactly the panel SQL of ``dashboards/grafana/*.json`` (macros expanded by
``dashboards.macros``, every variable set to All), so Grafana and the report show the same
numbers. The page is self-contained: data as inline JSON, charts drawn as SVG by the small
vanilla script in ``templates/report.js`` (no CDN, no network), with tooltips and clickable
legends. After drawing, the script sets ``data-charts-drawn`` on ``<body>``.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pyarrow as pa

from dashboards.macros import Expansion, expand

DASHBOARD_ORDER = ("cost.json", "idle.json", "experts.json", "health.json")
DEFAULT_SPAN = timedelta(days=7)


def load_dashboards() -> list[dict]:
    """The Grafana dashboards shipped in the package, in report order."""
    folder = resources.files("dashboards").joinpath("grafana")
    return [json.loads(folder.joinpath(name).read_text(encoding="utf-8")) for name in DASHBOARD_ORDER]


def query_variables(dashboard: dict) -> dict[str, str]:
    return {
        v["name"]: v["query"] for v in dashboard["templating"]["list"] if v.get("type") == "query"
    }


def resolve_options(store, dashboard: dict, start: datetime, end: datetime) -> dict[str, list[str]]:
    """Every option of each query variable, resolved in order like Grafana (all set to All)."""
    options: dict[str, list[str]] = {}
    for name, sql in query_variables(dashboard).items():
        ctx = Expansion(start, end, selected={k: None for k in options}, options=options)
        options[name] = [str(r[0]) for r in store.query_rows(expand(sql, ctx))]
    return options


def default_range(store, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The last 7 days that hold cost data (or ending now when the store has none)."""
    rows = store.query_rows(
        "SELECT max(hour) FROM (SELECT max(hour) AS hour FROM workflow_costs_hourly "
        "UNION ALL SELECT max(hour) FROM idle_costs_hourly) WHERE hour > toDateTime64(0, 3)"
    )
    last = rows[0][0] if rows and rows[0][0] else None
    if last is None or last.year < 2000:
        end = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    else:
        last = last.replace(tzinfo=UTC) if last.tzinfo is None else last
        end = last + timedelta(hours=1)
    return end - DEFAULT_SPAN, end


def _jsonable(table: pa.Table) -> dict:
    cols = []
    for name, col in zip(table.column_names, table.columns, strict=True):
        t = col.type
        if name == "time" and pa.types.is_integer(t):
            # ClickHouse DateTime reaches Arrow as uint32 epoch seconds; Grafana's time column
            values = [None if v is None else int(v) * 1000 for v in col.to_pylist()]
            kind = "time"
        elif pa.types.is_timestamp(t) or pa.types.is_date(t):
            values = [None if v is None else int(v.timestamp() * 1000) if hasattr(v, "timestamp") else str(v)
                      for v in col.to_pylist()]
            kind = "time"
        elif pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
            values = [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)
                      for v in col.to_pylist()]
            kind = "number"
        else:
            values = [None if v is None else str(v) for v in col.to_pylist()]
            kind = "string"
        cols.append({"name": name, "kind": kind, "values": values})
    return {"columns": cols, "rows": table.num_rows}


def collect(store, start: datetime, end: datetime,
            progress: Callable[[str], None] | None = None) -> list[dict]:
    """Run every panel of every dashboard; returns the report model (JSON-able)."""
    views = []
    for dash in load_dashboards():
        options = resolve_options(store, dash, start, end)
        ctx = Expansion(start, end, selected={k: None for k in options}, options=options)
        panels = []
        for panel in dash["panels"]:
            sql = expand(panel["targets"][0]["rawSql"], ctx)
            data = _jsonable(store.query_arrow(sql))
            panels.append({
                "id": panel["id"], "title": panel["title"], "type": panel["type"],
                "unit": panel["fieldConfig"]["defaults"].get("unit", "none"),
                "description": panel.get("description", ""), "data": data,
            })
            if progress:
                progress(f"{dash['title']}: {panel['title']}")
        views.append({"uid": dash["uid"], "title": dash["title"], "description": dash.get("description", ""),
                      "panels": panels})
    return views


def _template(name: str) -> str:
    return resources.files("dashboards").joinpath("templates").joinpath(name).read_text(encoding="utf-8")


def render_html(views: list[dict], start: datetime, end: datetime, generated_at: datetime | None = None) -> str:
    """One self-contained HTML page for the report model."""
    payload = json.dumps({"views": views, "from": start.isoformat(), "to": end.isoformat()}, separators=(",", ":"))
    payload = payload.replace("</", "<\\/")  # never close the script element early
    n_charts = sum(len(v["panels"]) for v in views)
    stamp = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    tabs = "".join(
        f'<button class="tab" data-view="{i}" role="tab">{html.escape(v["title"].split("/")[-1].strip())}</button>'
        for i, v in enumerate(views)
    )
    return (
        _template("report.html")
        .replace("{{css}}", _template("report.css"))
        .replace("{{js}}", _template("report.js"))
        .replace("{{tabs}}", tabs)
        .replace("{{expected}}", str(n_charts))
        .replace("{{range}}", html.escape(f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC"))
        .replace("{{generated}}", html.escape(stamp))
        .replace("{{data}}", payload)
    )


@dataclass(frozen=True)
class ReportSummary:
    """What ``write_report`` wrote. Path-like (``str()``, ``os.fspath``) and readable by key
    (``summary["path"]``), so callers may treat it as the file or as a summary."""

    path: str
    start: datetime
    end: datetime
    panels: int
    rows: int
    empty_panels: list[str] = field(default_factory=list)

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __getitem__(self, key: str):
        return {"from": self.start, "to": self.end}.get(key) if key in ("from", "to") else getattr(self, key)


def write_report(store, out: Path, start: datetime | None = None, end: datetime | None = None,
                 progress: Callable[[str], None] | None = None) -> ReportSummary:
    """Collect, render and write the report (the last 7 days with data unless a range is given)."""
    if start is None or end is None:
        d_start, d_end = default_range(store)
        start, end = start or d_start, end or d_end
    views = collect(store, start, end, progress)
    Path(out).write_text(render_html(views, start, end), encoding="utf-8")
    return ReportSummary(
        path=str(out), start=start, end=end, panels=sum(len(v["panels"]) for v in views),
        rows=sum(p["data"]["rows"] for v in views for p in v["panels"]),
        empty_panels=[p["title"] for v in views for p in v["panels"] if p["data"]["rows"] == 0],
    )
