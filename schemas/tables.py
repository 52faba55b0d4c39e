"""Arrow schemas of every fleetledger table: the single source of truth for names and types.

Collectors build record batches with these schemas, the spool stores them, the Store inserts
them, and the ClickHouse migrations in ``schemas/migrations`` must agree with them column by
column (``tests/schemas/test_schema_agreement.py`` proves it on the real engine).

Conventions (DESIGN.md §3): column names carry their unit (``power_w``, ``energy_mj``,
``gpu_seconds``, ``cost_usd``); times are UTC; labels keep one name everywhere. Nullable
columns are the ones a source may not report (NVML ``NOT_SUPPORTED`` becomes null).
"""

from __future__ import annotations

import pyarrow as pa

from schemas.derived_tables import (  # noqa: F401 - re-exported: the contract lives here
    ATTRIBUTION_RUNS,
    EXPERT_HOTNESS,
    GPU_SAMPLES_5M,
    IDLE_COSTS_HOURLY,
    REQUEST_COSTS,
    WORKFLOW_COSTS_HOURLY,
)
from schemas.fields import LABELS, STR, STR_LIST, TS_MS, TS_US, UTC  # noqa: F401 - re-exported
from schemas.fields import field as _f
from schemas.fields import nullable as _n

# ---------------------------------------------------------------- raw (written by collectors)

GPU_SAMPLES = pa.schema([
    _f("ts", TS_MS),
    _f("cluster", STR),
    _f("node", STR),
    _f("gpu_uuid", STR),
    _f("gpu_index", pa.uint16()),
    _f("gpu_model", STR),
    _f("mig_profile", STR),  # '' when the GPU is not MIG-partitioned
    _f("mig_instance", STR),  # GPU instance / compute instance id, '' when not MIG
    _n("sm_util_pct", pa.float32()),  # NVML utilization.gpu or DCGM_FI_DEV_GPU_UTIL
    _n("gr_engine_active", pa.float32()),  # DCGM_FI_PROF_GR_ENGINE_ACTIVE, ratio 0..1
    _n("mem_util_pct", pa.float32()),
    _n("memory_used_bytes", pa.uint64()),
    _n("memory_total_bytes", pa.uint64()),
    _n("power_w", pa.float64()),
    _n("energy_mj", pa.uint64()),  # monotonic total energy counter since driver load
    _n("sm_clock_mhz", pa.uint32()),
    _n("mem_clock_mhz", pa.uint32()),
    _n("temperature_c", pa.float32()),
    _n("throttle_reasons", pa.uint64()),  # NVML clock-event reasons bitmask
    _n("ecc_sbe_total", pa.uint64()),  # corrected (single-bit) volatile ECC errors
    _n("ecc_dbe_total", pa.uint64()),  # uncorrected (double-bit) volatile ECC errors
    _f("source", STR),  # 'nvml' | 'dcgm'
])

GPU_EVENTS = pa.schema([
    _f("ts", TS_MS),
    _f("cluster", STR),
    _f("node", STR),
    _f("gpu_uuid", STR),
    _n("gpu_index", pa.uint16()),
    _f("event_kind", STR),  # 'xid' | 'gpu_lost' | 'collector_error' | 'ecc' | ...
    _n("xid", pa.uint32()),
    _f("detail", STR),
    _f("source", STR),
])

GPU_PROCESSES = pa.schema([
    _f("ts", TS_MS),
    _f("cluster", STR),
    _f("node", STR),
    _f("gpu_uuid", STR),
    _f("pid", pa.uint32()),
    _f("process_name", STR),
    _f("container_id", STR),
    _f("pod", STR),
    _f("namespace", STR),
    _f("container", STR),
    _n("used_memory_bytes", pa.uint64()),
    _n("sm_util_pct", pa.float32()),
    _f("source", STR),
])

ENGINE_PLACEMENTS = pa.schema([
    _f("cluster", STR),
    _f("engine_instance", STR),
    _f("node", STR),
    _f("gpu_uuids", STR_LIST),
    _f("engine_kind", STR),  # 'vllm' | 'sglang' | other
    _f("model", STR),
    _f("tp", pa.uint16()),
    _f("pp", pa.uint16()),
    _f("ep", pa.uint16()),
    _f("dp", pa.uint16()),
    _f("valid_from", TS_MS),
    _f("valid_to", TS_MS),  # open-ended placements use 2100-01-01
    _f("source", STR),  # 'config' | 'registration' | 'discovery'
    _f("updated_at", TS_MS),
])

REQUEST_SPANS = pa.schema([
    _f("trace_id", STR),  # lowercase hex
    _f("span_id", STR),
    _f("parent_span_id", STR),
    _f("request_id", STR),
    _f("engine_kind", STR),
    _f("engine_instance", STR),
    _f("cluster", STR),
    _f("node", STR),
    _f("model", STR),
    _f("start_ts", TS_US),
    _f("end_ts", TS_US),
    _f("queue_seconds", pa.float64()),
    _f("ttft_seconds", pa.float64()),
    _f("prefill_seconds", pa.float64()),
    _f("decode_seconds", pa.float64()),
    _f("inference_seconds", pa.float64()),
    _f("e2e_seconds", pa.float64()),
    _f("prompt_tokens", pa.uint32()),
    _f("cached_tokens", pa.uint32()),
    _f("completion_tokens", pa.uint32()),
    _n("max_tokens", pa.uint32()),
    _f("finish_reason", STR),
    _f("workflow", STR),  # '' when the span itself carries no label
    _f("tenant", STR),
    _f("route", STR),
    _f("reasoning_mode", STR),
    _f("request_class", STR),
    _f("attributes", LABELS),
    _f("received_at", TS_MS),
])

TRACE_LABELS = pa.schema([
    _f("trace_id", STR),
    _f("span_id", STR),
    _f("ts", TS_US),
    _f("workflow", STR),
    _f("tenant", STR),
    _f("route", STR),
    _f("reasoning_mode", STR),
    _f("request_class", STR),
    _f("received_at", TS_MS),
])

ENGINE_METRICS = pa.schema([
    _f("ts", TS_MS),
    _f("cluster", STR),
    _f("node", STR),
    _f("engine_kind", STR),
    _f("engine_instance", STR),
    _f("metric", STR),  # e.g. 'vllm:prompt_tokens_total', 'vllm:e2e_request_latency_seconds_bucket'
    _f("labels", LABELS),
    _f("labels_key", STR),  # canonical 'k=v,k=v' of labels, part of the sort key
    _f("value", pa.float64()),
])

EXPERT_LOADS = pa.schema([
    _f("window_start", TS_MS),
    _f("window_end", TS_MS),
    _f("cluster", STR),
    _f("engine_instance", STR),
    _f("model", STR),
    _f("layer", pa.uint16()),
    _f("expert", pa.uint32()),  # logical expert id
    _f("tokens", pa.uint64()),  # tokens routed to the expert in the window
    _f("source", STR),  # 'sglang_stat' | 'sglang_per_pass' | 'push' | ...
])

EXPERT_BALANCE_SAMPLES = pa.schema([
    _f("ts", TS_MS),
    _f("cluster", STR),
    _f("engine_instance", STR),
    _f("model", STR),
    _f("layer", pa.int32()),  # -1 when the source reports the whole model
    _n("avg_tokens", pa.float64()),
    _n("max_tokens", pa.float64()),
    _f("balancedness", pa.float64()),
    _f("source", STR),  # 'vllm_eplb_log' | 'sglang_metric'
])

RESERVATIONS = pa.schema([
    _f("reservation_id", STR),
    _f("provider", STR),
    _f("pricing_model", STR),  # 'reserved' | 'on_demand' | 'spot' | 'serverless'
    _f("gpu_model", STR),
    _f("cluster", STR),
    _f("nodes", STR_LIST),  # node set: every GPU of these nodes, unless ...
    _f("gpu_uuids", STR_LIST),  # ... an explicit GPU set is given, which is then exact
    _f("gpu_count", pa.uint32()),
    _f("usd_per_gpu_hour", pa.float64()),
    _f("owner_team", STR),
    _f("valid_from", TS_MS),
    _f("valid_to", TS_MS),
    _f("loaded_at", TS_MS),
])

PRICES = pa.schema([
    _f("price_id", STR),
    _f("kind", STR),  # 'gpu' (unit gpu-hour) | 'energy' (unit kWh)
    _f("provider", STR),
    _f("pricing_model", STR),
    _f("gpu_model", STR),  # '' for energy prices
    _f("region", STR),
    _f("cluster", STR),  # '' applies to every cluster
    _f("usd_per_unit", pa.float64()),
    _f("unit", STR),  # 'gpu-hour' | 'kWh'
    _f("valid_from", TS_MS),
    _f("valid_to", TS_MS),
    _f("loaded_at", TS_MS),
])

SPOOL_SEGMENTS = pa.schema([
    _f("segment_id", STR),
    _f("table_name", STR),
    _f("node", STR),
    _f("rows", pa.uint64()),
    _f("ingested_at", TS_MS),
    _n("data_start", TS_MS),  # earliest data time in the segment (ts, start_ts, window_start...)
    _n("data_end", TS_MS),  # latest data time in the segment
])

RAW_TABLES: dict[str, pa.Schema] = {
    "gpu_samples": GPU_SAMPLES,
    "gpu_events": GPU_EVENTS,
    "gpu_processes": GPU_PROCESSES,
    "engine_placements": ENGINE_PLACEMENTS,
    "request_spans": REQUEST_SPANS,
    "trace_labels": TRACE_LABELS,
    "engine_metrics": ENGINE_METRICS,
    "expert_loads": EXPERT_LOADS,
    "expert_balance_samples": EXPERT_BALANCE_SAMPLES,
    "reservations": RESERVATIONS,
    "prices": PRICES,
    "spool_segments": SPOOL_SEGMENTS,
}

DERIVED_TABLES: dict[str, pa.Schema] = {
    "request_costs": REQUEST_COSTS,
    "workflow_costs_hourly": WORKFLOW_COSTS_HOURLY,
    "idle_costs_hourly": IDLE_COSTS_HOURLY,
    "expert_hotness": EXPERT_HOTNESS,
    "attribution_runs": ATTRIBUTION_RUNS,
}

# Filled by the engine itself (materialized views); nothing of ours inserts into them.
ROLLUP_TABLES: dict[str, pa.Schema] = {
    "gpu_samples_5m": GPU_SAMPLES_5M,
}

TABLES: dict[str, pa.Schema] = {**RAW_TABLES, **DERIVED_TABLES, **ROLLUP_TABLES}

# Tables the sidecar may write through the spool (the rest are written by flows or the CLI).
SPOOLABLE_TABLES = frozenset({
    "gpu_samples", "gpu_events", "gpu_processes", "engine_placements", "request_spans",
    "trace_labels", "engine_metrics", "expert_loads", "expert_balance_samples",
})


# Where each raw table keeps the time its rows describe: (earliest column, latest column). The
# ingest step records this range per spool segment, so late data re-attributes its windows.
DATA_TIME: dict[str, tuple[str, str]] = {
    "gpu_samples": ("ts", "ts"),
    "gpu_events": ("ts", "ts"),
    "gpu_processes": ("ts", "ts"),
    "request_spans": ("start_ts", "end_ts"),
    "trace_labels": ("ts", "ts"),
    "engine_metrics": ("ts", "ts"),
    "expert_loads": ("window_start", "window_end"),
    "expert_balance_samples": ("ts", "ts"),
}


class UnknownTableError(KeyError):
    """A table name that is not part of the data contract."""


def schema_for(table: str) -> pa.Schema:
    """The Arrow schema of ``table``; raises UnknownTableError naming the valid tables."""
    try:
        return TABLES[table]
    except KeyError:
        raise UnknownTableError(
            f"unknown table {table!r}; fleetledger tables are: {', '.join(sorted(TABLES))}"
        ) from None


def empty_table(table: str) -> pa.Table:
    """A zero-row Arrow table with the schema of ``table``."""
    return schema_for(table).empty_table()


def conform(table: str, data: pa.Table) -> pa.Table:
    """Select and cast ``data`` to the contract schema of ``table`` (column order, types).

    Missing nullable columns are filled with nulls; a missing non-nullable column or an
    impossible cast raises ValueError naming the table and column.
    """
    schema = schema_for(table)
    columns = []
    for field in schema:
        if field.name in data.column_names:
            col = data.column(field.name)
            if not col.type.equals(field.type):
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise ValueError(f"{table}.{field.name}: cannot cast {col.type} to {field.type}: {exc}") from exc
            columns.append(col)
        elif field.nullable:
            columns.append(pa.nulls(data.num_rows, field.type))
        else:
            raise ValueError(f"{table}: required column {field.name!r} is missing")
    return pa.Table.from_arrays(columns, schema=schema)
