"""Arrow schemas of the tables the flows write (costs, hotness, runs) and of the rollups that
materialized views fill. Part of the contract in ``schemas.tables``."""

from __future__ import annotations

import pyarrow as pa

from schemas.fields import STR, TS_MS, TS_US
from schemas.fields import field as _f

# ---------------------------------------------------------------- derived (written by flows)

REQUEST_COSTS = pa.schema([
    _f("window_start", TS_MS),
    _f("cluster", STR),
    _f("engine_instance", STR),
    _f("model", STR),
    _f("request_id", STR),
    _f("trace_id", STR),
    _f("span_id", STR),
    _f("workflow", STR),
    _f("tenant", STR),
    _f("route", STR),
    _f("reasoning_mode", STR),
    _f("request_class", STR),
    _f("start_ts", TS_US),
    _f("end_ts", TS_US),
    _f("prompt_tokens", pa.uint32()),
    _f("cached_tokens", pa.uint32()),
    _f("completion_tokens", pa.uint32()),
    _f("prefill_gpu_seconds", pa.float64()),
    _f("decode_gpu_seconds", pa.float64()),
    _f("gpu_seconds", pa.float64()),
    _f("energy_j", pa.float64()),
    _f("energy_source", STR),  # 'energy_counter' | 'power_samples' | 'none'
    _f("cost_usd", pa.float64()),
    _f("energy_cost_usd", pa.float64()),
    _f("weighting", STR),  # 'tokens' | 'time'
    _f("run_version", pa.uint64()),
    _f("computed_at", TS_MS),
])

WORKFLOW_COSTS_HOURLY = pa.schema([
    _f("hour", TS_MS),
    _f("cluster", STR),
    _f("model", STR),
    _f("workflow", STR),
    _f("tenant", STR),
    _f("route", STR),
    _f("reasoning_mode", STR),
    _f("requests", pa.uint64()),
    _f("prompt_tokens", pa.uint64()),
    _f("cached_tokens", pa.uint64()),
    _f("completion_tokens", pa.uint64()),
    _f("prefill_gpu_seconds", pa.float64()),
    _f("decode_gpu_seconds", pa.float64()),
    _f("gpu_seconds", pa.float64()),
    _f("energy_kwh", pa.float64()),
    _f("cost_usd", pa.float64()),
    _f("energy_cost_usd", pa.float64()),
    _f("usd_per_1m_tokens", pa.float64()),
    _f("run_version", pa.uint64()),
    _f("computed_at", TS_MS),
])

IDLE_COSTS_HOURLY = pa.schema([
    _f("hour", TS_MS),
    _f("cluster", STR),
    _f("reservation_id", STR),
    _f("owner_team", STR),
    _f("pricing_model", STR),
    _f("node", STR),
    _f("gpu_uuid", STR),
    _f("gpu_model", STR),
    _f("reserved_seconds", pa.float64()),
    _f("busy_seconds", pa.float64()),
    _f("idle_seconds", pa.float64()),
    _f("idle_energy_j", pa.float64()),
    _f("reserved_cost_usd", pa.float64()),
    _f("idle_cost_usd", pa.float64()),
    _f("run_version", pa.uint64()),
    _f("computed_at", TS_MS),
])

EXPERT_HOTNESS = pa.schema([
    _f("window_start", TS_MS),
    _f("window_end", TS_MS),
    _f("cluster", STR),
    _f("engine_instance", STR),
    _f("model", STR),
    _f("layer", pa.uint16()),
    _f("total_tokens", pa.uint64()),
    _f("balancedness", pa.float64()),  # mean / max, 1.0 is perfect
    _f("max_vio", pa.float64()),  # max / mean - 1
    _f("hot_experts", pa.list_(pa.uint32())),  # top-k by load, hottest first
    _f("hot_shares", pa.list_(pa.float64())),  # their share of the layer's tokens
    _f("hot_drift", pa.float64()),  # 1 - Jaccard(top-k, previous window's top-k)
    _f("imbalance_tax_usd", pa.float64()),
    _f("run_version", pa.uint64()),
    _f("computed_at", TS_MS),
])

ATTRIBUTION_RUNS = pa.schema([
    _f("run_version", pa.uint64()),
    _f("window_start", TS_MS),
    _f("window_end", TS_MS),
    _f("cluster", STR),
    _f("requests", pa.uint64()),
    _f("total_cost_usd", pa.float64()),
    _f("attributed_cost_usd", pa.float64()),
    _f("idle_cost_usd", pa.float64()),
    _f("total_energy_j", pa.float64()),
    _f("attributed_energy_j", pa.float64()),
    _f("idle_energy_j", pa.float64()),
    _f("conservation_ok", pa.bool_()),
    _f("status", STR),
    _f("computed_at", TS_MS),
])

# ---------------------------------------------------------------- rollups (filled by materialized views)

# 5-minute rollup of gpu_samples per (cluster, gpu_model, node), written only by the view
# gpu_samples_5m_mv on insert into gpu_samples (migration 0004). Averages are
# sum(x_sum) / sum(x_samples); x_samples counts the non-null readings of x.
GPU_SAMPLES_5M = pa.schema([
    _f("window_start", TS_MS),
    _f("cluster", STR),
    _f("gpu_model", STR),
    _f("node", STR),
    _f("samples", pa.uint64()),  # rows of gpu_samples in the window
    _f("sm_util_pct_sum", pa.float64()),
    _f("sm_util_pct_samples", pa.uint64()),
    _f("gr_engine_active_sum", pa.float64()),
    _f("gr_engine_active_samples", pa.uint64()),
    _f("mem_util_pct_sum", pa.float64()),
    _f("mem_util_pct_samples", pa.uint64()),
    _f("power_w_sum", pa.float64()),
    _f("power_w_samples", pa.uint64()),
    _f("temperature_c_sum", pa.float64()),
    _f("temperature_c_samples", pa.uint64()),
])
