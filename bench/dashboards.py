"""Dashboard query latency: p95 of every Grafana panel's SQL on a simulated fleet.

Fills an embedded store with 30 days of a 256-GPU fleet (``dashboards.sample_data``: derived
cost tables at realistic volume plus raw ``gpu_samples`` every ``--sample-interval`` seconds),
then runs each panel's SQL with the macros expanded (all variables = All) over the whole 30
days and over the dashboard's default range. Target: p95 <= 200 ms per query.

Baseline, side by side: the same query without ``FINAL`` (views that use FINAL are replaced by
twins without it). FINAL is what makes re-run windows correct; the ratio shows its price.
Panels that read the 5-minute rollup ``gpu_samples_5m`` are measured against the same panel on
raw ``gpu_samples`` (``"baseline_kind": "raw_gpu_samples"``; the rollup is filled by its
materialized view while ``populate`` inserts the samples, as in production) and report the
largest relative difference of their values (``rollup_max_rel_diff``). Panels on raw tables
(no FINAL anywhere) report ratio 1.0 with ``"baseline_kind": "same"``.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta

from bench.common import emit, log, parser
from dashboards.macros import Expansion, expand
from dashboards.report import load_dashboards, resolve_options
from dashboards.sample_data import FleetSpec, populate
from schemas import Store
from schemas.migrations import load_migrations, split_statements

BENCH = "dashboards"
TARGET_MS = 200.0
FINAL_VIEWS = ("hot_experts_v", "reservation_utilisation_v")
_DEFAULT_RANGE = {"now-7d": timedelta(days=7), "now-24h": timedelta(days=1)}
ROLLUP = "gpu_samples_5m"
# rollup panel title -> (raw column, output name): the panel as it was on raw gpu_samples
RAW_EQUIVALENTS = {
    "GPU utilisation by GPU model": ("sm_util_pct", "util_pct"),
    "Mean GPU power draw by GPU model": ("power_w", "mean_power_w"),
}
RAW_PANEL_SQL = """SELECT $__timeInterval(ts) AS time, gpu_model, avg({column}) AS {name}
FROM gpu_samples
WHERE $__timeFilter(ts) AND $__conditionalAll(cluster IN (${{cluster:singlequote}}), $cluster)
GROUP BY time, gpu_model
ORDER BY time, gpu_model"""


def _no_final_twins(store: Store) -> None:
    """Create ``<view>_nofinal`` copies of the FINAL-reading views used by panels."""
    text = next(m.sql for m in load_migrations() if m.name == "finops_views")
    for stmt in split_statements(text.replace("{{on_cluster}}", "")):
        for view in FINAL_VIEWS:
            if re.match(rf"CREATE VIEW IF NOT EXISTS {view}\b", stmt):
                stmt = stmt.replace(view, f"{view}_nofinal", 1)
                store.command(re.sub(r"\bFINAL\b", "", stmt))


def _baseline_sql(sql: str, title: str, ctx: Expansion) -> tuple[str, str]:
    if re.search(rf"\b{ROLLUP}\b", sql):
        if title not in RAW_EQUIVALENTS:
            raise SystemExit(f"panel {title!r} reads {ROLLUP}: add its raw-table twin to RAW_EQUIVALENTS")
        column, name = RAW_EQUIVALENTS[title]
        return expand(RAW_PANEL_SQL.format(column=column, name=name), ctx), "raw_gpu_samples"
    if "FINAL" not in sql and not any(v in sql for v in FINAL_VIEWS):
        return sql, "same"
    out = re.sub(r"\bFINAL\b", "", sql)
    for view in FINAL_VIEWS:
        out = re.sub(rf"\b{view}\b", f"{view}_nofinal", out)
    return out, "without_final"


def _max_rel_diff(store: Store, sql: str, base_sql: str) -> float | None:
    """Largest relative difference of the values of two (time, series, value) results; None when
    their (time, series) rows or null values differ."""
    got, want = store.query_arrow(sql).to_pylist(), store.query_arrow(base_sql).to_pylist()
    if len(got) != len(want):
        return None
    worst = 0.0
    for g, w in zip(got, want, strict=True):
        (gt, gs, gv), (wt, ws, wv) = g.values(), w.values()
        if (gt, gs) != (wt, ws) or (gv is None) != (wv is None):
            return None
        if gv is not None:
            worst = max(worst, abs(gv - wv) / max(abs(wv), 1e-12))
    return worst


def _p95_ms(store: Store, sql: str, runs: int) -> tuple[float, int]:
    rows = store.query_arrow(sql).num_rows  # warm-up (and the row count)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        store.query_arrow(sql)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))], rows


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--gpus", type=int, default=256)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--sample-interval", type=int, default=60, help="gpu_samples period per GPU, seconds")
    p.add_argument("--runs", type=int, default=20, help="timed runs per query")
    args = p.parse_args(argv)
    if args.quick:
        args.gpus, args.days, args.sample_interval, args.runs = 64, 3, 300, 5
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    spec = FleetSpec(gpus=args.gpus, days=args.days, start=end - timedelta(days=args.days),
                     sample_interval_s=args.sample_interval)
    with tempfile.TemporaryDirectory(prefix="fleetledger-bench-dash-") as tmp:
        store = Store.open(f"chdb://{tmp}/store", ttl_raw_days=0)
        try:
            store.migrate()
            t0 = time.perf_counter()
            counts = populate(store, spec)
            counts[ROLLUP] = store.count(ROLLUP)  # filled by its materialized view, not by populate
            log(f"populated {counts} in {time.perf_counter() - t0:.1f}s")
            emit(BENCH, "populate_rows", sum(v for k, v in counts.items() if k != ROLLUP), "rows", baseline=None, ratio=None,
                 gpus=spec.gpus, days=spec.days, seconds=round(time.perf_counter() - t0, 2),
                 gpu_samples=counts.get("gpu_samples", 0), gpu_samples_5m=counts[ROLLUP],
                 workflow_costs_hourly=counts["workflow_costs_hourly"],
                 idle_costs_hourly=counts["idle_costs_hourly"], expert_hotness=counts["expert_hotness"])
            _no_final_twins(store)
            worst = 0.0
            for dash in load_dashboards():
                ranges = {"30d": (spec.start, spec.end)}
                default = _DEFAULT_RANGE.get(dash["time"]["from"])
                if default:
                    ranges["default"] = (spec.end - default, spec.end)
                options = resolve_options(store, dash, spec.start, spec.end)
                for label, (start, stop) in ranges.items():
                    ctx = Expansion(start, stop, selected={k: None for k in options}, options=options)
                    for panel in dash["panels"]:
                        sql = expand(panel["targets"][0]["rawSql"], ctx)
                        p95, rows = _p95_ms(store, sql, args.runs)
                        base_sql, kind = _baseline_sql(sql, panel["title"], ctx)
                        base, _ = _p95_ms(store, base_sql, args.runs) if kind != "same" else (p95, rows)
                        extra = {"rollup_max_rel_diff": _max_rel_diff(store, sql, base_sql)} if kind == "raw_gpu_samples" else {}
                        worst = max(worst, p95)
                        emit(BENCH, "panel_p95_ms", round(p95, 2), "ms", baseline=round(base, 2),
                             ratio=round(p95 / base, 3) if base > 0 else None, baseline_kind=kind, **extra,
                             dashboard=dash["uid"], panel=panel["title"], range=label, rows=rows,
                             target_ms=TARGET_MS, within_target=p95 <= TARGET_MS, runs=args.runs,
                             load_avg_1m=round(os.getloadavg()[0], 2))
            emit(BENCH, "worst_panel_p95_ms", round(worst, 2), "ms", baseline=TARGET_MS,
                 ratio=round(worst / TARGET_MS, 3), baseline_kind="target", gpus=spec.gpus, days=spec.days,
                 cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2))
        finally:
            store.close()


if __name__ == "__main__":
    main()
