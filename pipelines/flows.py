"""Prefect flows: ingest the spool, attribute windows (partitions as mapped tasks), idle, experts.

The hourly flow chains ingest -> attribute (+ idle, in the same pass: both come from one sweep
and one conservation check) -> experts (``pipelines.experts.step.run_expert_hotness`` when that
module exists) -> report (``dashboards.report.write_report`` when ``pipelines.report_path`` is set). Windows are whole UTC hours: by default the last complete hour plus earlier
hours, within ``allowed_lateness_s``, that were never attributed or whose spans arrived after
their last run. The task runner is a setting: threads (default) or Dask through prefect-dask.

The logic lives in plain functions (``run_windows``) that take a ``map_fn``; the flows only
open the store, pick the task runner and map partitions onto Prefect tasks.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NONE
from prefect.utilities.annotations import quote

from pipelines.attribution import AttributionOptions, attribute_window
from pipelines.attribution.partition import PartitionResult, PartitionTask, run_partition
from pipelines.config import PipelineConfig
from pipelines.ingest import ingest_spool
from pipelines.window_io import (
    clusters_in,
    hourly_windows,
    load_window_inputs,
    new_run_version,
    windows_due,
    write_window,
)
from schemas import Store

log = logging.getLogger(__name__)
UTC = dt.UTC
MapFn = Callable[[Callable[[PartitionTask], PartitionResult], list[PartitionTask]], Iterable[PartitionResult]]
_PROGRESS: dict[str, Callable[[dict], None]] = {}


@dataclass
class WindowSummary:
    window_start: str
    window_end: str
    cluster: str
    run_version: int
    requests: int
    total_cost_usd: float
    attributed_cost_usd: float
    idle_cost_usd: float
    total_energy_j: float
    expert_rows: int | None


def options(cfg: PipelineConfig) -> AttributionOptions:
    return AttributionOptions(weighting=cfg.weighting, decode_weight=cfg.decode_weight,
                              request_id_pattern=cfg.request_id_pattern or None, partitions=cfg.partitions)


def run_experts_step(store: Store, window_start: dt.datetime, window_end: dt.datetime, run_version: int) -> int | None:
    """Call the experts engineer's step if it is part of this build; None when it is not."""
    try:
        from pipelines.experts.step import run_expert_hotness
    except ModuleNotFoundError as exc:
        if exc.name in ("pipelines.experts", "pipelines.experts.step"):
            return None
        raise
    return int(run_expert_hotness(store, window_start, window_end, run_version))


def run_report_step(store: Store, cfg: PipelineConfig) -> str | None:
    """Write the HTML report when ``pipelines.report_path`` is set and the report module exists."""
    if not cfg.report_path:
        return None
    try:
        from dashboards.report import write_report
    except ModuleNotFoundError as exc:
        if exc.name in ("dashboards", "dashboards.report"):
            return None
        raise
    return str(write_report(store, Path(cfg.report_path))["path"])


def attribute_one(store: Store, cluster: str, ws: dt.datetime, we: dt.datetime, cfg: PipelineConfig,
                  map_fn: MapFn | None = None) -> WindowSummary:
    """Attribute one cluster-window and replace its rows (raises ConservationError, writing nothing)."""
    inputs = load_window_inputs(store, cluster, ws, we)
    version = new_run_version()
    result = attribute_window(inputs, options(cfg), version, map_fn=map_fn)
    write_window(store, result, cluster, ws, we, version)
    t = result.totals
    return WindowSummary(ws.isoformat(), we.isoformat(), cluster, version, result.request_costs.height,
                         t.total_cost_usd, t.attributed_cost_usd, t.idle_cost_usd, t.total_energy_j, None)


def run_windows(store: Store, windows: list[tuple[dt.datetime, dt.datetime]], cfg: PipelineConfig,
                map_fn: MapFn | None = None, on_window: Callable[[dict], None] | None = None) -> list[WindowSummary]:
    out = []
    for ws, we in windows:
        summaries = [attribute_one(store, c, ws, we, cfg, map_fn) for c in clusters_in(store, ws, we)]
        experts = run_experts_step(store, ws, we, summaries[0].run_version if summaries else new_run_version())
        for s in summaries:
            s.expert_rows = experts
        out += summaries
        if on_window:
            on_window({"window_start": ws.isoformat(), "clusters": len(summaries)})
    return out


# ------------------------------------------------------------------ Prefect

@task(name="attribute-partition", cache_policy=NONE, persist_result=False)
def attribute_partition(partition: PartitionTask) -> PartitionResult:
    # the Dask runner may hand the quoted argument over still wrapped (as a 1-tuple)
    while not isinstance(partition, PartitionTask) and isinstance(partition, tuple) and len(partition) == 1:
        partition = partition[0]
    return run_partition(partition)


def prefect_map(fn: Callable, items: list[PartitionTask]) -> list[PartitionResult]:
    """Run partitions as Prefect tasks on the flow's task runner (quote: no input traversal)."""
    futures = [attribute_partition.submit(quote(item)) for item in items]
    return [f.result() for f in futures]


@task(name="ingest-spool", cache_policy=NONE, persist_result=False)
def ingest_task(store: Any, spool_dir: str) -> dict:
    return asdict(ingest_spool(store, Path(spool_dir)))


def _open(store_dsn: str) -> Store:
    store = Store.open(store_dsn)
    store.migrate()
    return store


def _parse_time(value: str | dt.datetime | None) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)
    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@flow(name="fleetledger-hourly", log_prints=False)
def hourly_flow(store_dsn: str, spool_dir: str | None = None, window_start: str | None = None,
                window_end: str | None = None, now: str | None = None, pipelines: dict | None = None,
                progress_token: str | None = None) -> dict:
    """ingest -> attribute (+ idle) -> experts, over explicit windows or those due now."""
    cfg = PipelineConfig(**(pipelines or {}))
    store = _open(store_dsn)
    try:
        ingested = ingest_task(quote(store), spool_dir) if spool_dir else None
        ws, we = _parse_time(window_start), _parse_time(window_end)
        if ws is not None:
            windows = hourly_windows(ws, we or ws + dt.timedelta(hours=1))
        else:
            windows = windows_due(store, _parse_time(now) or dt.datetime.now(UTC), cfg.allowed_lateness_s)
        summaries = run_windows(store, windows, cfg, map_fn=prefect_map,
                                on_window=_PROGRESS.get(progress_token) if progress_token else None)
        report = run_report_step(store, cfg) if summaries else None
    finally:
        store.close()
    return {"ingest": ingested, "windows": [asdict(s) for s in summaries], "report": report}


def task_runner(cfg: PipelineConfig) -> Any:
    if cfg.task_runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ModuleNotFoundError:
            raise RuntimeError("pipelines.task_runner = 'dask' needs the optional extra: pip install 'fleetledger[dask]'") from None
        return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.max_workers, "processes": False,
                                              "threads_per_worker": 1, "dashboard_address": None})
    from prefect.task_runners import ThreadPoolTaskRunner
    return ThreadPoolTaskRunner(max_workers=cfg.max_workers)


def run_hourly(store_dsn: str, cfg: PipelineConfig, *, spool_dir: Path | None = None,
               window_start: dt.datetime | None = None, window_end: dt.datetime | None = None,
               now: dt.datetime | None = None, on_window: Callable[[dict], None] | None = None) -> dict:
    """Run the hourly flow in this process with the configured task runner."""
    token = None
    if on_window is not None:
        token = f"p{id(on_window)}"
        _PROGRESS[token] = on_window
    try:
        configured = hourly_flow.with_options(task_runner=task_runner(cfg))
        return configured(
            store_dsn=store_dsn, spool_dir=str(spool_dir) if spool_dir else None,
            window_start=window_start.isoformat() if window_start else None,
            window_end=window_end.isoformat() if window_end else None,
            now=now.isoformat() if now else None, pipelines=cfg.model_dump(), progress_token=token,
        )
    finally:
        if token:
            _PROGRESS.pop(token, None)


def deployments(store_dsn: str, cfg: PipelineConfig, spool_dir: Path | None) -> list[Any]:
    """The scheduled deployment(s) `fleetledger serve` registers (cron from the settings)."""
    return [hourly_flow.to_deployment(
        name="fleetledger-hourly", cron=cfg.cron,
        parameters={"store_dsn": store_dsn, "spool_dir": str(spool_dir) if spool_dir else None,
                    "pipelines": cfg.model_dump()},
        description="ingest the spool, attribute due hours (late data included), expert hotness",
    )]
