"""The demo: a simulated fleet -> the real collectors -> spool -> flows -> cost tables -> report.

Nothing here is a shortcut around the product: the simulator speaks only real interfaces
(an NVML-shaped module, OTLP through the OpenTelemetry SDK exporter, Prometheus text, expert
dump files and log lines) and the real collectors listen to them, write the spool, and the
real Prometheus flow loads the spool and attributes every hour. Virtual time drives the GPU
samplers and scrapes (the fleet's hours pass in seconds), so those are stepped by hand here
instead of by the collectors' own wall-clock threads.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from collectors.component import Component
from collectors.config import CollectorConfig
from collectors.spool import Spool
from collectors.telemetry import Telemetry
from schemas import Store

UTC = dt.UTC
Stage = Callable[[str, float], None]  # (stage description, fraction done)


@dataclass
class DemoOptions:
    hours: float = 6.0
    nodes: int = 2
    seed: int = 7
    out: Path = Path("demo-out")
    store_dsn: str = ""
    sample_interval_s: float = 10.0  # virtual seconds between NVML passes (energy comes from the counter)
    scrape_interval_s: float = 300.0  # virtual seconds between Prometheus scrapes
    pipelines: dict = field(default_factory=dict)


@dataclass
class DemoResult:
    out: Path
    store_dsn: str
    window_start: dt.datetime
    window_end: dt.datetime
    requests_simulated: int
    spans_sent: int
    collector_counts: dict[str, float]
    ingested_rows: dict[str, int]
    windows: list[dict]
    report: Path | None
    timings: dict[str, float]


def demo_start(hours: float, now: dt.datetime | None = None) -> dt.datetime:
    """The fleet window ends at the last full hour, so the data is recent (inside retention)."""
    now = now or dt.datetime.now(UTC)
    end = now.replace(minute=0, second=0, microsecond=0)
    return end - dt.timedelta(hours=int(-(-hours // 1)))


class _NodeCollectors:
    """The collectors of one simulated node, writing one spool."""

    def __init__(self, config: CollectorConfig, nvml_module: Any, now_ns: Callable[[], int],
                 clock: Callable[[], float]) -> None:
        import collectors.engines as engines_factory
        from collectors.experts import factory as experts_factory
        from collectors.nvml import factory as nvml_factory
        from collectors.otlp import factory as otlp_factory
        from collectors.prometheus import factory as prometheus_factory
        from collectors.prometheus.scraper import PrometheusScraper

        self.config = config
        self.telemetry = Telemetry(prefix="fleetledger_demo")
        self.spool = Spool(config.spool, self.telemetry, node=config.node, clock_ns=now_ns)
        self.samplers = nvml_factory.create_components(config, self.spool, self.telemetry,
                                                       nvml_module=nvml_module, now_ns=now_ns)
        scrapers = prometheus_factory.create_components(config, self.spool, self.telemetry)
        self.scrapers: list[PrometheusScraper] = []
        for s in scrapers:
            s.clock = clock  # virtual time stamps on engine_metrics rows
            self.scrapers.append(s)
        # wall-clock components: receivers, dump watchers, log tailers, placements
        self.live: list[Component] = [
            *otlp_factory.create_components(config, self.spool, self.telemetry),
            *experts_factory.create_components(config, self.spool, self.telemetry),
            *engines_factory.create_components(config, self.spool, self.telemetry),
        ]

    def start(self) -> None:
        self.spool.start()
        for c in self.live:
            c.start()

    def step(self, scrape: bool) -> None:
        for s in self.samplers:
            s.sample_once()
        if scrape:
            for s in self.scrapers:
                s.scrape_all()

    def shutdown(self) -> None:
        for c in [*self.live, *self.samplers]:
            c.shutdown(5.0)
        self.spool.shutdown(5.0)

    @property
    def http_endpoint(self) -> str | None:
        from collectors.otlp.http_receiver import OtlpHttpReceiver

        for c in self.live:
            if isinstance(c, OtlpHttpReceiver):
                return f"http://127.0.0.1:{c.port}/v1/traces"
        return None


def run_demo(opts: DemoOptions, stage: Stage) -> DemoResult:
    from pipelines.config import PipelineConfig
    from pipelines.flows import run_hourly
    from pipelines.ingest import ingest_spool
    from pipelines.inputs import load_prices, load_reservations
    from simulator.api import simulate

    timings: dict[str, float] = {}
    out = opts.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = demo_start(opts.hours)

    t0 = time.perf_counter()
    stage("simulating the fleet (batching model, ground truth, expert dumps)", 0.0)
    sim = simulate(hours=opts.hours, nodes=opts.nodes, seed=opts.seed, start=start, out=out, write_pt=False,
                   progress=lambda s, f: stage(f"simulating: {s}", f))
    fleet = sim.fleet
    window_end = start + dt.timedelta(seconds=fleet.duration_s)
    timings["simulate_s"] = time.perf_counter() - t0

    # --- collectors: one set per node, exactly as a sidecar builds them, on loopback ports
    telemetry = sim.telemetry()
    metrics = sim.metrics_server(telemetry)
    metrics.start()
    engine_urls = metrics.engine_urls
    base = CollectorConfig.model_validate(_collect_section(out / "fleet.toml"))
    nodes: list[_NodeCollectors] = []
    for k, node in enumerate(telemetry.nvml_by_node):
        engines = [e.model_copy(update={"metrics_url": engine_urls.get(e.instance)}) if e.node == node else e
                   for e in base.engines]
        cfg = base.model_copy(update={
            "node": node,
            "engines": engines,
            "spool": base.spool.model_copy(update={"directory": out / "spool" / node}),
            "otlp": base.otlp.model_copy(update={"enabled": k == 0, "http_listen": "127.0.0.1:0", "grpc_enabled": False}),
        })
        nodes.append(_NodeCollectors(cfg, telemetry.nvml_by_node[node], telemetry.now_ns,
                                     lambda: telemetry.now_ns() / 1e9))
    for n in nodes:
        n.start()
    try:
        endpoint = nodes[0].http_endpoint
        assert endpoint, "the OTLP/HTTP receiver did not start"
        t0 = time.perf_counter()
        stage(f"sending {sim.requests:,} requests' spans over OTLP/HTTP to the sidecar", 0.0)
        total = max(1, sim.requests)
        sent = [0]

        def spans_progress(n: int) -> None:
            sent[0] += n
            stage("spans -> OTLP receiver", min(1.0, sent[0] / total))

        spans = sim.send_spans(endpoint, "http/protobuf", spans_progress)
        timings["spans_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        steps = int(fleet.duration_s // opts.sample_interval_s) + 1
        every = max(1, int(opts.scrape_interval_s // opts.sample_interval_s))
        for i in range(steps):
            t = min(i * opts.sample_interval_s, fleet.duration_s)
            telemetry.advance_to(t)
            for n in nodes:
                n.step(scrape=i % every == 0)
            if i % 50 == 0 or i == steps - 1:
                stage("GPU telemetry (NVML) and Prometheus scrapes in virtual time", (i + 1) / steps)
        timings["telemetry_s"] = time.perf_counter() - t0
        for n in nodes:
            for c in n.live:
                poll = getattr(c, "poll_once", None)
                if poll:
                    poll()  # pick up the last dumps/log lines now rather than at the next poll
    finally:
        counts: dict[str, float] = {}
        for n in nodes:
            n.shutdown()
            for key, value in n.telemetry.snapshot().items():
                counts[key] = counts.get(key, 0.0) + value
        metrics.shutdown()

    # --- flows: ingest the spools, load prices, attribute every hour, experts, report
    store_dsn = opts.store_dsn or f"chdb://{out / 'store'}"
    t0 = time.perf_counter()
    stage("loading the spool into the store", 0.0)
    ingested: dict[str, int] = {}
    with Store.open(store_dsn) as store:
        store.migrate()
        for n in nodes:
            rep = ingest_spool(store, Path(n.config.spool.directory))
            for table, rows in rep.rows_by_table.items():
                ingested[table] = ingested.get(table, 0) + rows
        load_reservations(store, out / "reservations.csv")
        load_prices(store, out / "prices.csv")
    timings["ingest_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("attributing costs hour by hour (Prefect flow)", 0.0)
    cfg = PipelineConfig(**opts.pipelines)
    hours_total = max(1, int(round((window_end - start).total_seconds() / 3600)))
    done = [0]

    def on_window(_summary: dict) -> None:
        done[0] += 1
        stage("attributing costs hour by hour (Prefect flow)", done[0] / hours_total)

    flow_result = run_hourly(store_dsn, cfg, window_start=start, window_end=window_end, on_window=on_window)
    timings["flows_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    stage("rendering report.html", 0.0)
    report_path: Path | None = None
    try:
        from dashboards.report import write_report

        with Store.open(store_dsn) as store:
            report_path = Path(write_report(store, out / "report.html", start, window_end).path)
    except ModuleNotFoundError:
        report_path = None
    timings["report_s"] = time.perf_counter() - t0

    return DemoResult(out, store_dsn, start, window_end, sim.requests, spans, counts, ingested,
                      flow_result.get("windows", []), report_path, timings)


def _collect_section(fleet_toml: Path) -> dict:
    import tomllib

    doc = tomllib.loads(fleet_toml.read_text())
    return doc.get("collect", {})


# ---------------------------------------------------------------------------------- summary


def accuracy(store: Store, truth_file: Path, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Per-workflow attributed cost vs the simulator's ground truth, like for like.

    Both sides cover the requests that finished inside the window (a request still running at
    the end has truth past the window that the window's attribution rightly does not charge). A
    request that reached the engine with no label anywhere can only be 'unlabelled' on our side,
    so its truth is counted under 'unlabelled' too (the simulator records how each request was
    labelled on the wire).
    """
    ours = _request_costs(store, start, end)
    truth = (
        pl.read_parquet(truth_file)
        .filter(pl.col("end_ts") <= end)
        .with_columns(workflow=pl.when(pl.col("label_source") == "none").then(pl.lit("unlabelled"))
                      .otherwise(pl.col("workflow")))
        .select("request_id", "workflow", pl.col("cost_usd").alias("truth_usd"))
    )
    return (
        truth.join(ours.select("request_id", "cost_usd"), on="request_id", how="left")
        .group_by("workflow")
        .agg(pl.col("truth_usd").sum(), pl.col("cost_usd").fill_null(0.0).sum(), pl.len().alias("requests"))
        .with_columns(rel_error=(pl.col("cost_usd") - pl.col("truth_usd")) / pl.col("truth_usd"))
        .sort("truth_usd", descending=True)
    )


def _request_costs(store: Store, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    return store.query_polars(
        "SELECT request_id, sum(cost_usd) AS cost_usd FROM request_costs FINAL "
        "WHERE window_start >= {a:DateTime64(3)} AND window_start < {b:DateTime64(3)} GROUP BY request_id",
        {"a": start.replace(tzinfo=None), "b": end.replace(tzinfo=None)},
    )


def request_error_quantiles(store: Store, truth_file: Path, start: dt.datetime, end: dt.datetime) -> dict[str, float]:
    """Distribution of per-request relative cost error (requests wholly inside the window)."""
    ours = _request_costs(store, start, end)
    truth = pl.read_parquet(truth_file).select("request_id", "cost_usd", "end_ts")
    truth = truth.filter(pl.col("end_ts") <= end).rename({"cost_usd": "truth_usd"})
    joined = truth.join(ours, on="request_id", how="inner").filter(pl.col("truth_usd") > 0)
    if joined.is_empty():
        return {}
    err = ((joined["cost_usd"] - joined["truth_usd"]) / joined["truth_usd"]).abs()
    return {"requests": joined.height, "p50": float(err.quantile(0.5)), "p90": float(err.quantile(0.9)),
            "p99": float(err.quantile(0.99))}
