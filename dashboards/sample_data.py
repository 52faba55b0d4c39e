"""Synthetic, internally consistent rows for the tables the dashboards read.

Used by the dashboard tests and ``bench/dashboards.py`` while the real flows are built. The
generator keeps the ledger balanced the way the attribution does: per (hour, cluster, model)
the attributed workflow cost equals the busy cost of that model's GPUs, and every GPU-hour is
split into busy and idle cost of its reservation. Everything is vectorised with numpy; rows are
built as Arrow tables with the contract schemas (``schemas.tables.conform``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa

from schemas.tables import conform, schema_for

HOUR_MS = 3_600_000
GPU_MODELS = ("NVIDIA H100 80GB HBM3", "NVIDIA H200", "NVIDIA A100-SXM4-80GB")
GPU_RATES = {"NVIDIA H100 80GB HBM3": 2.40, "NVIDIA H200": 3.10, "NVIDIA A100-SXM4-80GB": 1.40}
LIST_RATES = {"NVIDIA H100 80GB HBM3": 4.10, "NVIDIA H200": 5.20, "NVIDIA A100-SXM4-80GB": 2.90}
PRICING_CYCLE = ("reserved", "reserved", "on_demand", "reserved", "spot", "reserved")
SPOT_FACTOR = 0.45
ON_DEMAND_FACTOR = LIST_RATES["NVIDIA H100 80GB HBM3"] / GPU_RATES["NVIDIA H100 80GB HBM3"]


@dataclass
class FleetSpec:
    """Size and shape of the synthetic fleet."""

    gpus: int = 256
    days: int = 30
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    cluster: str = "default"
    gpus_per_node: int = 8
    nodes_per_reservation: int = 4
    idle_node_every: int = 6  # every Nth node runs no engine (reserved but idle)
    models: tuple[str, ...] = ("llama3-8b", "llama3-70b", "deepseek-v3")
    workflows: tuple[str, ...] = ("chat", "rag", "summarise", "codegen", "agent", "batch-eval", "translate", "unlabelled")
    tenants: tuple[str, ...] = ("acme", "globex", "initech", "umbrella", "hooli")
    routes: tuple[str, ...] = ("/v1/chat/completions", "/v1/completions")
    reasoning_modes: tuple[str, ...] = ("off", "on")
    moe_layers: int = 58
    experts: int = 256
    hot_k: int = 8
    sample_interval_s: int = 60
    xids_per_day: int = 6
    seed: int = 7
    teams: tuple[str, ...] = field(default=("search", "assistant", "platform", "research"))

    @property
    def hours(self) -> int:
        return self.days * 24

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


@dataclass
class FleetLayout:
    nodes: list[str]
    gpu_uuids: list[str]
    gpu_node: np.ndarray  # node index per GPU
    gpu_model: list[str]  # per GPU
    gpu_rate: np.ndarray  # $/GPU-hour per GPU
    gpu_reservation: np.ndarray  # reservation index per GPU
    gpu_engine_model: np.ndarray  # model index per GPU, -1 when no engine runs on it
    reservations: list[dict]


def layout(spec: FleetSpec) -> FleetLayout:
    n_nodes = max(1, spec.gpus // spec.gpus_per_node)
    nodes = [f"node-{i:03d}" for i in range(n_nodes)]
    uuids = [f"GPU-{i:08x}-{spec.seed:04x}-4000-8000-{i * 7919:012x}" for i in range(n_nodes * spec.gpus_per_node)]
    gpu_node = np.repeat(np.arange(n_nodes), spec.gpus_per_node)
    res_of_node = np.arange(n_nodes) // spec.nodes_per_reservation
    reservations = []
    for r in range(int(res_of_node.max()) + 1):
        gpu_model = GPU_MODELS[r % len(GPU_MODELS)]
        pricing = PRICING_CYCLE[r % len(PRICING_CYCLE)]
        rate = GPU_RATES[gpu_model] * {"reserved": 1.0, "on_demand": ON_DEMAND_FACTOR, "spot": SPOT_FACTOR}[pricing]
        res_nodes = [nodes[i] for i in np.flatnonzero(res_of_node == r)]
        reservations.append({
            "reservation_id": f"res-{r:03d}", "provider": "coreweave" if r % 2 else "aws", "pricing_model": pricing,
            "gpu_model": gpu_model, "cluster": spec.cluster, "nodes": res_nodes, "gpu_uuids": [],
            "gpu_count": len(res_nodes) * spec.gpus_per_node, "usd_per_gpu_hour": round(rate, 4),
            "owner_team": spec.teams[r % len(spec.teams)], "valid_from": spec.start, "valid_to": spec.end,
            "loaded_at": spec.start,
        })
    gpu_res = res_of_node[gpu_node]
    node_model = np.array([
        -1 if (i % spec.idle_node_every == spec.idle_node_every - 1) else i % len(spec.models) for i in range(n_nodes)
    ])
    return FleetLayout(
        nodes=nodes, gpu_uuids=uuids, gpu_node=gpu_node,
        gpu_model=[reservations[r]["gpu_model"] for r in gpu_res],
        gpu_rate=np.array([reservations[r]["usd_per_gpu_hour"] for r in gpu_res]),
        gpu_reservation=gpu_res, gpu_engine_model=node_model[gpu_node], reservations=reservations,
    )


def _ts(ms: np.ndarray) -> pa.Array:
    return pa.array(ms.astype("int64"), pa.timestamp("ms", tz="UTC"))


def _pick(values: list[str] | tuple[str, ...], idx: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(idx.astype("int32")), pa.array(list(values))).cast(pa.string())


def reservations_table(spec: FleetSpec, lay: FleetLayout) -> pa.Table:
    return conform("reservations", pa.Table.from_pylist(lay.reservations))


def prices_table(spec: FleetSpec) -> pa.Table:
    rows = [{
        "price_id": f"list-{i}", "kind": "gpu", "provider": "list", "pricing_model": "on_demand", "gpu_model": m,
        "region": "", "cluster": "", "usd_per_unit": LIST_RATES[m], "unit": "gpu-hour",
        "valid_from": spec.start - timedelta(days=365), "valid_to": datetime(2100, 1, 1, tzinfo=UTC),
        "loaded_at": spec.start,
    } for i, m in enumerate(GPU_MODELS[:2])]  # A100 has no list price: ListCost falls back to the rate
    rows.append({
        "price_id": "energy-0", "kind": "energy", "provider": "utility", "pricing_model": "on_demand",
        "gpu_model": "", "region": "", "cluster": "", "usd_per_unit": 0.12, "unit": "kWh",
        "valid_from": spec.start - timedelta(days=365), "valid_to": datetime(2100, 1, 1, tzinfo=UTC),
        "loaded_at": spec.start,
    })
    return conform("prices", pa.Table.from_pylist(rows))


def placements_table(spec: FleetSpec, lay: FleetLayout) -> pa.Table:
    rows = []
    for n, node in enumerate(lay.nodes):
        gpus = [lay.gpu_uuids[g] for g in np.flatnonzero(lay.gpu_node == n)]
        m = int(lay.gpu_engine_model[gpus and np.flatnonzero(lay.gpu_node == n)[0]])
        if m < 0:
            continue
        rows.append({
            "cluster": spec.cluster, "engine_instance": f"vllm-{spec.models[m]}-{n}", "node": node, "gpu_uuids": gpus,
            "engine_kind": "vllm", "model": spec.models[m], "tp": len(gpus), "pp": 1, "ep": 1, "dp": 1,
            "valid_from": spec.start, "valid_to": datetime(2100, 1, 1, tzinfo=UTC), "source": "config",
            "updated_at": spec.start,
        })
    return conform("engine_placements", pa.Table.from_pylist(rows))


def _busy_fraction(spec: FleetSpec, lay: FleetLayout, rng: np.random.Generator) -> np.ndarray:
    """[hours, gpus] busy share of each GPU-hour: a diurnal curve per node, 0 without an engine."""
    hours = np.arange(spec.hours)
    diurnal = 0.55 + 0.3 * np.sin((hours % 24 - 8) / 24 * 2 * np.pi)
    n_nodes = len(lay.nodes)
    node_busy = np.clip(diurnal[:, None] + rng.normal(0, 0.08, (spec.hours, n_nodes)), 0.02, 0.98)
    busy = node_busy[:, lay.gpu_node]
    busy[:, lay.gpu_engine_model < 0] = 0.0
    return busy


def derived_tables(spec: FleetSpec, lay: FleetLayout, run_version: int = 1) -> dict[str, pa.Table]:
    """idle_costs_hourly, workflow_costs_hourly, expert_hotness and attribution_runs."""
    rng = np.random.default_rng(spec.seed)
    n_gpus = len(lay.gpu_uuids)
    busy = _busy_fraction(spec, lay, rng)
    hour_ms = spec.start_ms + np.arange(spec.hours) * HOUR_MS
    computed = _ts(np.full(1, spec.start_ms))[0]

    # idle_costs_hourly: one row per GPU-hour
    h_idx = np.repeat(np.arange(spec.hours), n_gpus)
    g_idx = np.tile(np.arange(n_gpus), spec.hours)
    busy_s = busy.ravel() * 3600.0
    rate = lay.gpu_rate[g_idx]
    reserved_cost = rate * 1.0
    idle_cost = rate * (3600.0 - busy_s) / 3600.0
    res = lay.reservations
    idle = pa.table({
        "hour": _ts(hour_ms[h_idx]), "cluster": pa.array([spec.cluster] * len(h_idx)),
        "reservation_id": _pick([r["reservation_id"] for r in res], lay.gpu_reservation[g_idx]),
        "owner_team": _pick([r["owner_team"] for r in res], lay.gpu_reservation[g_idx]),
        "pricing_model": _pick([r["pricing_model"] for r in res], lay.gpu_reservation[g_idx]),
        "node": _pick(lay.nodes, lay.gpu_node[g_idx]), "gpu_uuid": _pick(lay.gpu_uuids, g_idx),
        "gpu_model": _pick([r["gpu_model"] for r in res], lay.gpu_reservation[g_idx]),
        "reserved_seconds": np.full(len(h_idx), 3600.0), "busy_seconds": busy_s, "idle_seconds": 3600.0 - busy_s,
        "idle_energy_j": (3600.0 - busy_s) * 75.0, "reserved_cost_usd": reserved_cost, "idle_cost_usd": idle_cost,
        "run_version": np.full(len(h_idx), run_version, dtype=np.uint64),
        "computed_at": pa.array([computed] * len(h_idx), pa.timestamp("ms", tz="UTC")),
    })

    # workflow_costs_hourly: busy cost of each model's GPUs, shared among label combos
    busy_cost = (busy * lay.gpu_rate[None, :])
    n_models = len(spec.models)
    model_cost = np.stack([busy_cost[:, lay.gpu_engine_model == m].sum(axis=1) for m in range(n_models)], axis=1)
    model_gpu_s = np.stack([(busy[:, lay.gpu_engine_model == m] * 3600).sum(axis=1) for m in range(n_models)], axis=1)
    combos = np.array(np.meshgrid(
        np.arange(len(spec.workflows)), np.arange(len(spec.tenants)), np.arange(len(spec.routes)),
        np.arange(len(spec.reasoning_modes)), indexing="ij")).reshape(4, -1).T
    n_combo = len(combos)
    base_w = rng.gamma(0.6, 1.0, size=(n_models, n_combo))
    weights = base_w[None, :, :] * rng.uniform(0.7, 1.3, size=(spec.hours, n_models, n_combo))
    weights /= weights.sum(axis=2, keepdims=True)
    cost = (model_cost[:, :, None] * weights).ravel()
    gpu_s = (model_gpu_s[:, :, None] * weights).ravel()
    hh, mm, cc = (a.ravel() for a in np.meshgrid(np.arange(spec.hours), np.arange(n_models), np.arange(n_combo), indexing="ij"))
    tokens_per_gpu_s = np.array([2400.0, 700.0, 350.0])[mm % 3] * np.where(combos[cc, 3] == 1, 0.6, 1.0)
    tokens = gpu_s * tokens_per_gpu_s
    prompt = np.floor(tokens * 0.7).astype(np.uint64)
    completion = np.floor(tokens * 0.3).astype(np.uint64)
    requests = np.maximum(np.floor(tokens / 900.0), (cost > 0).astype(float)).astype(np.uint64)
    energy_kwh = gpu_s * 550.0 / 3.6e6
    wf = pa.table({
        "hour": _ts(hour_ms[hh]), "cluster": pa.array([spec.cluster] * len(hh)), "model": _pick(spec.models, mm),
        "workflow": _pick(spec.workflows, combos[cc, 0]), "tenant": _pick(spec.tenants, combos[cc, 1]),
        "route": _pick(spec.routes, combos[cc, 2]), "reasoning_mode": _pick(spec.reasoning_modes, combos[cc, 3]),
        "requests": requests, "prompt_tokens": prompt, "cached_tokens": (prompt // 4).astype(np.uint64),
        "completion_tokens": completion, "prefill_gpu_seconds": gpu_s * 0.35, "decode_gpu_seconds": gpu_s * 0.65,
        "gpu_seconds": gpu_s, "energy_kwh": energy_kwh, "cost_usd": cost, "energy_cost_usd": energy_kwh * 0.12,
        "usd_per_1m_tokens": np.where(tokens > 0, cost / np.maximum(prompt + completion, 1) * 1e6, 0.0),
        "run_version": np.full(len(hh), run_version, dtype=np.uint64),
        "computed_at": pa.array([computed] * len(hh), pa.timestamp("ms", tz="UTC")),
    })

    runs = pa.table({
        "run_version": np.full(spec.hours, run_version, dtype=np.uint64), "window_start": _ts(hour_ms),
        "window_end": _ts(hour_ms + HOUR_MS), "cluster": pa.array([spec.cluster] * spec.hours),
        "requests": requests.reshape(spec.hours, -1).sum(axis=1),
        "total_cost_usd": np.full(spec.hours, lay.gpu_rate.sum()),
        "attributed_cost_usd": busy_cost.sum(axis=1), "idle_cost_usd": lay.gpu_rate.sum() - busy_cost.sum(axis=1),
        "total_energy_j": np.zeros(spec.hours), "attributed_energy_j": np.zeros(spec.hours),
        "idle_energy_j": np.zeros(spec.hours), "conservation_ok": np.ones(spec.hours, dtype=bool),
        "status": pa.array(["ok"] * spec.hours), "computed_at": _ts(hour_ms + HOUR_MS),
    })
    return {
        "idle_costs_hourly": conform("idle_costs_hourly", idle),
        "workflow_costs_hourly": conform("workflow_costs_hourly", wf),
        "expert_hotness": expert_hotness_table(spec, lay, busy_cost, rng, run_version),
        "attribution_runs": conform("attribution_runs", runs),
    }


def expert_hotness_table(spec: FleetSpec, lay: FleetLayout, busy_cost: np.ndarray, rng: np.random.Generator,
                         run_version: int) -> pa.Table:
    """Hourly hot experts of every MoE (deepseek*) instance: top-k with Zipf-like shares."""
    moe = [m for m, name in enumerate(spec.models) if name.startswith("deepseek")]
    nodes = [n for n in range(len(lay.nodes)) if int(lay.gpu_engine_model[n * spec.gpus_per_node]) in moe]
    if not nodes:
        return schema_for("expert_hotness").empty_table()
    n_rows = spec.hours * len(nodes) * spec.moe_layers
    hh = np.repeat(np.arange(spec.hours), len(nodes) * spec.moe_layers)
    nn = np.tile(np.repeat(np.arange(len(nodes)), spec.moe_layers), spec.hours)
    ll = np.tile(np.arange(spec.moe_layers), spec.hours * len(nodes))
    layer_bias = rng.permutation(spec.experts)[: spec.hot_k * 4]
    hot = np.empty((n_rows, spec.hot_k), dtype=np.uint32)
    for k in range(spec.hot_k):
        hot[:, k] = layer_bias[(ll * 3 + k + (hh // 6 + k) % 3) % len(layer_bias)]
    zipf = 1.0 / np.arange(1, spec.hot_k + 1) ** 0.8
    shares = (zipf / zipf.sum() * 0.35)[None, :] * rng.uniform(0.8, 1.2, size=(n_rows, spec.hot_k))
    balanced = np.clip(0.55 + 0.2 * np.sin(hh / 24 * 2 * np.pi) + rng.normal(0, 0.05, n_rows) - ll * 0.002, 0.1, 0.98)
    node_gpus = np.array(nodes) * spec.gpus_per_node
    inst_cost = busy_cost[hh, node_gpus[nn]] * spec.gpus_per_node
    hour_ms = spec.start_ms + hh * HOUR_MS
    names = [f"vllm-{spec.models[int(lay.gpu_engine_model[n * spec.gpus_per_node])]}-{n}" for n in nodes]
    models = [spec.models[int(lay.gpu_engine_model[n * spec.gpus_per_node])] for n in nodes]
    offsets = np.arange(0, n_rows * spec.hot_k + 1, spec.hot_k, dtype=np.int32)
    table = pa.table({
        "window_start": _ts(hour_ms), "window_end": _ts(hour_ms + HOUR_MS),
        "cluster": pa.array([spec.cluster] * n_rows), "engine_instance": _pick(names, nn), "model": _pick(models, nn),
        "layer": ll.astype(np.uint16), "total_tokens": (inst_cost * 1e5).astype(np.uint64),
        "balancedness": balanced, "max_vio": 1.0 / balanced - 1.0,
        "hot_experts": pa.ListArray.from_arrays(pa.array(offsets), pa.array(hot.ravel())),
        "hot_shares": pa.ListArray.from_arrays(pa.array(offsets), pa.array(shares.ravel())),
        "hot_drift": rng.uniform(0, 0.4, n_rows),
        "imbalance_tax_usd": inst_cost / spec.moe_layers * (1.0 / balanced - 1.0) * 0.1,
        "run_version": np.full(n_rows, run_version, dtype=np.uint64),
        "computed_at": _ts(hour_ms + HOUR_MS),
    })
    return conform("expert_hotness", table)


def gpu_sample_days(spec: FleetSpec, lay: FleetLayout) -> Iterator[pa.Table]:
    """gpu_samples, one day per table, every ``sample_interval_s`` seconds per GPU."""
    rng = np.random.default_rng(spec.seed + 1)
    busy = _busy_fraction(spec, lay, np.random.default_rng(spec.seed))
    n_gpus = len(lay.gpu_uuids)
    per_day = 86400 // spec.sample_interval_s
    energy = np.zeros(n_gpus)
    for day in range(spec.days):
        t = spec.start_ms + day * 86_400_000 + np.arange(per_day) * spec.sample_interval_s * 1000
        hour_of = (t - spec.start_ms) // HOUR_MS
        util = np.clip(busy[hour_of][:, :] * 100 + rng.normal(0, 5, (per_day, n_gpus)), 0, 100)
        power = 80.0 + util * 5.2
        energy_steps = np.cumsum(power * spec.sample_interval_s * 1000, axis=0) + energy[None, :]
        energy = energy_steps[-1]
        g = np.tile(np.arange(n_gpus), per_day)
        yield conform("gpu_samples", pa.table({
            "ts": _ts(np.repeat(t, n_gpus)), "cluster": pa.array([spec.cluster] * len(g)),
            "node": _pick(lay.nodes, lay.gpu_node[g]), "gpu_uuid": _pick(lay.gpu_uuids, g),
            "gpu_index": (g % spec.gpus_per_node).astype(np.uint16), "gpu_model": _pick(lay.gpu_model, g),
            "mig_profile": pa.array([""] * len(g)), "mig_instance": pa.array([""] * len(g)),
            "sm_util_pct": util.ravel().astype(np.float32), "mem_util_pct": (util.ravel() * 0.6).astype(np.float32),
            "memory_used_bytes": (util.ravel() * 7e8).astype(np.uint64),
            "memory_total_bytes": np.full(len(g), 80 * 2**30, dtype=np.uint64),
            "power_w": power.ravel(), "energy_mj": energy_steps.ravel().astype(np.uint64),
            "sm_clock_mhz": np.full(len(g), 1980, dtype=np.uint32), "mem_clock_mhz": np.full(len(g), 2619, dtype=np.uint32),
            "temperature_c": (35 + util.ravel() * 0.4).astype(np.float32),
            "throttle_reasons": np.zeros(len(g), dtype=np.uint64), "ecc_sbe_total": np.zeros(len(g), dtype=np.uint64),
            "ecc_dbe_total": np.zeros(len(g), dtype=np.uint64), "source": pa.array(["nvml"] * len(g)),
        }))


def gpu_events_table(spec: FleetSpec, lay: FleetLayout) -> pa.Table:
    rng = np.random.default_rng(spec.seed + 2)
    n = spec.xids_per_day * spec.days
    g = rng.integers(0, len(lay.gpu_uuids), n)
    t = spec.start_ms + np.sort(rng.integers(0, spec.days * 86_400_000, n))
    xid = rng.choice(np.array([13, 31, 43, 48, 63, 79, 94], dtype=np.uint32), n, p=[.25, .3, .15, .05, .1, .05, .1])
    return conform("gpu_events", pa.table({
        "ts": _ts(t), "cluster": pa.array([spec.cluster] * n), "node": _pick(lay.nodes, lay.gpu_node[g]),
        "gpu_uuid": _pick(lay.gpu_uuids, g), "gpu_index": (g % spec.gpus_per_node).astype(np.uint16),
        "event_kind": pa.array(["xid"] * n), "xid": xid, "detail": pa.array([f"Xid {x}" for x in xid]),
        "source": pa.array(["nvml"] * n),
    }))


def populate(store, spec: FleetSpec, *, with_samples: bool = True,
             progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Insert the whole synthetic fleet into ``store``; returns rows per table.

    The 5-minute rollup ``gpu_samples_5m`` is never written here: its materialized view fills
    it from each ``gpu_samples`` insert, exactly as in production.
    """
    lay = layout(spec)
    counts: dict[str, int] = {}

    def put(table: str, data: pa.Table) -> None:
        step = 500_000
        for off in range(0, max(data.num_rows, 1), step):
            n = store.insert(table, data.slice(off, step))
            counts[table] = counts.get(table, 0) + n
            if progress:
                progress(table, n)

    put("reservations", reservations_table(spec, lay))
    put("prices", prices_table(spec))
    put("engine_placements", placements_table(spec, lay))
    for name, table in derived_tables(spec, lay).items():
        put(name, table)
    put("gpu_events", gpu_events_table(spec, lay))
    if with_samples:
        for day in gpu_sample_days(spec, lay):
            put("gpu_samples", day)
    return counts
