"""Attribute one window of one cluster: plan partitions, run them, assemble and check the ledger.

``attribute_window`` is pure (Polars frames in, Polars frames out); the flows read the inputs
from the store, hand ``run_partition`` to a Prefect task runner through ``map_fn``, and write
the result. Requests crossing the window edges are charged only for their part inside the
window, so consecutive windows add up to the whole.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.attribution.conservation import Totals, check
from pipelines.attribution.idle import HOUR_US, gpu_idle
from pipelines.attribution.labels import DEFAULT_REQUEST_ID_PATTERN, resolve_labels
from pipelines.attribution.partition import (
    COST_USD,
    DECODE_GPU_S,
    ENERGY_COST_USD,
    ENERGY_J,
    N_CHARGES,
    PREFILL_GPU_S,
    InstanceTask,
    PartitionResult,
    PartitionTask,
    run_partition,
)
from pipelines.attribution.rates import PricingInputs, gpu_energy, gpu_prices, memberships
from pipelines.attribution.steps import Step, masked, step_sum
from pipelines.attribution.weights import phases

J_PER_KWH = 3_600_000.0
UTC = dt.UTC


@dataclass
class AttributionOptions:
    weighting: str = "tokens"
    decode_weight: float = 1.0
    request_id_pattern: str | None = DEFAULT_REQUEST_ID_PATTERN
    partitions: int = 1


@dataclass
class WindowInputs:
    cluster: str
    window_start: dt.datetime
    window_end: dt.datetime
    spans: pl.DataFrame  # request_spans rows overlapping the window
    trace_labels: pl.DataFrame
    placements: pl.DataFrame
    reservations: pl.DataFrame
    prices: pl.DataFrame
    samples: pl.DataFrame  # gpu_samples: ts, node, gpu_uuid, gpu_model, energy_mj, power_w


@dataclass
class WindowResult:
    request_costs: pl.DataFrame
    workflow_costs_hourly: pl.DataFrame
    idle_costs_hourly: pl.DataFrame
    run: pl.DataFrame
    totals: Totals


@dataclass
class WindowPlan:
    inputs: WindowInputs
    spans: pl.DataFrame  # spans with phase columns (labels are resolved in ``assemble``: the sweeps need none)
    pricing: PricingInputs
    energy: dict
    instances: dict
    gpu_nodes: dict[str, str]
    gpu_models: dict[str, str]
    tasks: list[PartitionTask]


def to_us(t: dt.datetime) -> int:
    """Microseconds since the epoch (naive datetimes are UTC)."""
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return int(t.replace(microsecond=0).timestamp()) * 1_000_000 + t.microsecond


def plan(inputs: WindowInputs, opts: AttributionOptions) -> WindowPlan:
    """Everything the sweeps need: phases, prices, energy, memberships, partitions."""
    ws, we = to_us(inputs.window_start), to_us(inputs.window_end)
    spans = pl.concat([inputs.spans, phases(inputs.spans, opts.weighting, opts.decode_weight)], how="horizontal")
    energy = gpu_energy(inputs.samples)
    gpu_nodes = {g: e.node for g, e in energy.items() if e.node}
    gpu_models = {g: e.gpu_model for g, e in energy.items() if e.gpu_model}
    instances = memberships(inputs.placements, inputs.cluster)
    for info in instances.values():
        for gpu in info.members:
            gpu_nodes.setdefault(gpu, info.node)
    gpus_of_node: dict[str, list[str]] = {}
    for gpu, node in gpu_nodes.items():
        gpus_of_node.setdefault(node, []).append(gpu)
    pricing = gpu_prices(inputs.reservations, inputs.prices, inputs.cluster, gpus_of_node, gpu_models)
    by_inst = spans.select("engine_instance").with_row_index("_row").sort("engine_instance", maintain_order=True)
    runs = by_inst.group_by("engine_instance", maintain_order=True).len()
    row_ids = by_inst["_row"].to_numpy().astype(np.int64)
    ends = np.cumsum(runs["len"].to_numpy())
    rows_by_instance = {name: row_ids[e - n:e] for name, n, e in zip(runs["engine_instance"].to_list(),
                                                                     runs["len"].to_list(), ends, strict=True)}
    cols = {c: spans[c].to_numpy() for c in ("prefill_a", "prefill_b", "decode_a", "decode_b", "w_prefill", "w_decode")}
    n_parts = max(1, min(opts.partitions, len(instances) or 1))
    tasks = [PartitionTask(f"{inputs.cluster}/{i}", ws, we, pricing.energy_price) for i in range(n_parts)]
    for i, name in enumerate(sorted(instances)):
        info = instances[name]
        rows = rows_by_instance.get(name, np.zeros(0, dtype=np.int64))
        tasks[i % n_parts].instances.append(InstanceTask(
            engine_instance=name, rows=rows,
            **{c: cols[c][rows] for c in cols},
            members=info.members,
            prices={g: pricing.gpus[g].price for g in info.members if g in pricing.gpus},
            energy={g: energy[g] for g in info.members if g in energy},
        ))
    return WindowPlan(inputs, spans, pricing, energy, instances, gpu_nodes, gpu_models, tasks)


def attribute_window(inputs: WindowInputs, opts: AttributionOptions, run_version: int,
                     map_fn: Callable[[Callable, list], Iterable[PartitionResult]] | None = None,
                     computed_at: dt.datetime | None = None) -> WindowResult:
    """Attribute the window; raise ConservationError (and return nothing) if it does not balance."""
    p = plan(inputs, opts)
    mapper = map_fn or (lambda fn, items: [fn(x) for x in items])
    results = list(mapper(run_partition, p.tasks))
    return assemble(p, results, opts, run_version, computed_at)


def assemble(p: WindowPlan, results: list[PartitionResult], opts: AttributionOptions, run_version: int,
             computed_at: dt.datetime | None = None) -> WindowResult:
    inputs = p.inputs
    ws, we = to_us(inputs.window_start), to_us(inputs.window_end)
    now = computed_at or dt.datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    charges = np.zeros((p.spans.height, N_CHARGES))
    sources: dict[str, str] = {}
    busy: dict[str, Step] = {}
    for r in results:
        charges[r.rows] = r.charges
        sources.update(r.energy_source)
        busy.update(r.busy)
    request_costs = _request_costs(p, charges, sources, opts, run_version, now, ws, we)
    idle, idle_totals = _idle_rows(p, busy, ws, we, run_version, now)
    totals = Totals(
        total_cost_usd=idle_totals[0],
        attributed_cost_usd=float(charges[:, COST_USD].sum()),
        idle_cost_usd=float(idle["idle_cost_usd"].sum()) if idle.height else 0.0,
        total_energy_j=idle_totals[1],
        attributed_energy_j=float(charges[:, ENERGY_J].sum()),
        idle_energy_j=float(idle["idle_energy_j"].sum()) if idle.height else 0.0,
    )
    check(totals, f"cluster {inputs.cluster!r} window {inputs.window_start.isoformat()}..{inputs.window_end.isoformat()}")
    run = pl.DataFrame({
        "run_version": [run_version], "window_start": [inputs.window_start], "window_end": [inputs.window_end],
        "cluster": [inputs.cluster], "requests": [request_costs.height],
        "total_cost_usd": [totals.total_cost_usd], "attributed_cost_usd": [totals.attributed_cost_usd],
        "idle_cost_usd": [totals.idle_cost_usd], "total_energy_j": [totals.total_energy_j],
        "attributed_energy_j": [totals.attributed_energy_j], "idle_energy_j": [totals.idle_energy_j],
        "conservation_ok": [totals.ok], "status": ["ok"], "computed_at": [now],
    })
    return WindowResult(request_costs, workflow_hourly(request_costs, run_version, now), idle, run, totals)


def _request_costs(p: WindowPlan, charges: np.ndarray, sources: dict[str, str], opts: AttributionOptions,
                   run_version: int, now: dt.datetime, ws: int, we: int) -> pl.DataFrame:
    labelled = resolve_labels(p.spans, p.inputs.trace_labels, opts.request_id_pattern)
    s = labelled.select(  # the span columns with labels resolved, then the phase columns
        *[c for c in labelled.columns if c not in p.spans.columns or c in p.inputs.spans.columns],
        *[c for c in p.spans.columns if c not in p.inputs.spans.columns],
    ).with_columns(
        prefill_gpu_seconds=pl.Series(charges[:, PREFILL_GPU_S]),
        decode_gpu_seconds=pl.Series(charges[:, DECODE_GPU_S]),
        cost_usd=pl.Series(charges[:, COST_USD]),
        energy_j=pl.Series(charges[:, ENERGY_J]),
        energy_cost_usd=pl.Series(charges[:, ENERGY_COST_USD]),
    )
    inst_model = {k: v.model for k, v in p.instances.items()}
    busy_a = pl.max_horizontal(pl.col("prefill_a"), pl.lit(ws))
    busy_b = pl.min_horizontal(pl.col("decode_b"), pl.lit(we))
    end_us = pl.col("end_ts").dt.epoch("us")
    in_window = (busy_a < busy_b) | ((end_us >= ws) & (end_us < we))
    return (
        s.filter(in_window)
        .with_columns(
            window_start=pl.lit(p.inputs.window_start).cast(pl.Datetime("ms", "UTC")),
            model=pl.when(pl.col("model") != "").then(pl.col("model"))
            .otherwise(pl.col("engine_instance").replace_strict(inst_model, default="")),
            gpu_seconds=pl.col("prefill_gpu_seconds") + pl.col("decode_gpu_seconds"),
            energy_source=pl.col("engine_instance").replace_strict(sources, default="none"),
            weighting=pl.lit(opts.weighting),
            run_version=pl.lit(run_version, dtype=pl.UInt64),
            computed_at=pl.lit(now).cast(pl.Datetime("ms", "UTC")),
            hour=pl.from_epoch((busy_a // HOUR_US) * HOUR_US, time_unit="us").dt.replace_time_zone("UTC")
            .cast(pl.Datetime("ms", "UTC")),
            finished=(end_us >= ws) & (end_us < we),
        )
    )


def workflow_hourly(request_costs: pl.DataFrame, run_version: int, now: dt.datetime) -> pl.DataFrame:
    """Per hour and label set: requests finished, their tokens, and all GPU-s, kWh and $ served."""
    fin = pl.col("finished")
    tokens = lambda c: pl.col(c).cast(pl.UInt64).filter(fin).sum()  # noqa: E731
    keys = ["hour", "cluster", "model", "workflow", "tenant", "route", "reasoning_mode"]
    return (
        request_costs.lazy()
        .group_by(keys)
        .agg(
            requests=fin.sum().cast(pl.UInt64),
            prompt_tokens=tokens("prompt_tokens"),
            cached_tokens=tokens("cached_tokens"),
            completion_tokens=tokens("completion_tokens"),
            prefill_gpu_seconds=pl.col("prefill_gpu_seconds").sum(),
            decode_gpu_seconds=pl.col("decode_gpu_seconds").sum(),
            gpu_seconds=pl.col("gpu_seconds").sum(),
            energy_kwh=pl.col("energy_j").sum() / J_PER_KWH,
            cost_usd=pl.col("cost_usd").sum(),
            energy_cost_usd=pl.col("energy_cost_usd").sum(),
        )
        .with_columns(
            usd_per_1m_tokens=pl.when((pl.col("prompt_tokens") + pl.col("completion_tokens")) > 0)
            .then((pl.col("cost_usd") + pl.col("energy_cost_usd")) * 1e6
                  / (pl.col("prompt_tokens") + pl.col("completion_tokens")))
            .otherwise(0.0),
            run_version=pl.lit(run_version, dtype=pl.UInt64),
            computed_at=pl.lit(now).cast(pl.Datetime("ms", "UTC")),
        )
        .sort(keys)
        .collect()
    )


def _idle_rows(p: WindowPlan, busy: dict[str, Step], ws: int, we: int, run_version: int,
               now: dt.datetime) -> tuple[pl.DataFrame, tuple[float, float]]:
    per_gpu_busy: dict[str, list[Step]] = {}
    for name, info in p.instances.items():
        b = busy.get(name)
        if b is None:
            continue
        for gpu, member in info.members.items():
            per_gpu_busy.setdefault(gpu, []).append(masked(member, b, ws, we))
    universe = sorted(set(p.pricing.gpus) | set(per_gpu_busy) | set(p.energy)
                      | {g for i in p.instances.values() for g in i.members})
    res = p.pricing.reservations
    cols: dict[str, list] = {k: [] for k in (
        "hour", "reservation", "gpu_uuid", "reserved_seconds", "busy_seconds", "idle_seconds", "idle_energy_j",
        "reserved_cost_usd", "idle_cost_usd")}
    total_cost = total_energy = 0.0
    for gpu in universe:  # one numpy pass per GPU (hundreds to a few thousand), never per request
        g = gpu_idle(ws, we, p.pricing.gpus.get(gpu), p.energy.get(gpu), step_sum(per_gpu_busy.get(gpu, [])),
                     p.pricing.energy_price)
        total_cost += float(g.reserved_cost_usd.sum())
        total_energy += g.total_energy_j
        keep = (g.reserved_seconds > 0) | (g.idle_energy_j != 0) | (g.busy_seconds > 0)
        cols["hour"].append(g.hour_us[keep])
        cols["reservation"].append(g.reservation[keep])
        cols["gpu_uuid"].append(np.full(int(keep.sum()), gpu, dtype=object))
        for k in ("reserved_seconds", "busy_seconds", "idle_seconds", "idle_energy_j", "reserved_cost_usd",
                  "idle_cost_usd"):
            cols[k].append(getattr(g, k)[keep])
    if not universe:
        from schemas.tables import empty_table
        return pl.from_arrow(empty_table("idle_costs_hourly")), (0.0, 0.0)  # type: ignore[return-value]
    flat = {k: np.concatenate(v) for k, v in cols.items()}
    idx = flat.pop("reservation").astype(np.int64)
    lookup = lambda key, default="": [res[i][key] if i >= 0 else default for i in idx]  # noqa: E731
    frame = pl.DataFrame({
        "hour": pl.Series(flat.pop("hour"), dtype=pl.Int64),
        "cluster": p.inputs.cluster,
        "reservation_id": pl.Series(lookup("reservation_id"), dtype=pl.String),
        "owner_team": pl.Series(lookup("owner_team"), dtype=pl.String),
        "pricing_model": pl.Series(lookup("pricing_model", "unreserved"), dtype=pl.String),
        "gpu_uuid": pl.Series(flat.pop("gpu_uuid").tolist(), dtype=pl.String),
        **{k: pl.Series(v, dtype=pl.Float64) for k, v in flat.items()},
    }).with_columns(
        hour=pl.from_epoch("hour", time_unit="us").dt.replace_time_zone("UTC").cast(pl.Datetime("ms", "UTC")),
        node=pl.col("gpu_uuid").replace_strict(p.gpu_nodes, default=""),
        gpu_model=pl.col("gpu_uuid").replace_strict(p.gpu_models, default=""),
        run_version=pl.lit(run_version, dtype=pl.UInt64),
        computed_at=pl.lit(now).cast(pl.Datetime("ms", "UTC")),
    )
    return frame, (total_cost, total_energy)
