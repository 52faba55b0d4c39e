"""Tiny, explicit inputs for attribution tests: rows of the contract tables from a few numbers.

Times are seconds after ``T0`` (2026-11-29 00:00 UTC) so hand computations stay readable.
"""

from __future__ import annotations

import datetime as dt
import itertools

import polars as pl
import pyarrow as pa

from pipelines.attribution import WindowInputs
from schemas.tables import schema_for

T0 = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
FAR = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
_ids = itertools.count(1)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def frame(table: str, rows: list[dict]) -> pl.DataFrame:
    return pl.from_arrow(pa.Table.from_pylist(rows, schema=schema_for(table)))  # type: ignore[return-value]


def span(instance: str, start: float, *, queue: float = 0.0, prefill: float, decode: float, prompt: int = 100,
         cached: int = 0, completion: int = 100, workflow: str = "", tenant: str = "", trace_id: str | None = None,
         request_id: str | None = None, cluster: str = "default", received: float = 0.0) -> dict:
    n = next(_ids)
    e2e = queue + prefill + decode
    return {
        "trace_id": trace_id or f"{n:032x}", "span_id": f"{n:016x}", "parent_span_id": "",
        "request_id": request_id or f"req-{n}", "engine_kind": "vllm", "engine_instance": instance,
        "cluster": cluster, "node": "node-a", "model": "llama3-8b", "start_ts": at(start), "end_ts": at(start + e2e),
        "queue_seconds": queue, "ttft_seconds": queue + prefill, "prefill_seconds": prefill,
        "decode_seconds": decode, "inference_seconds": prefill + decode, "e2e_seconds": e2e,
        "prompt_tokens": prompt, "cached_tokens": cached, "completion_tokens": completion, "max_tokens": None,
        "finish_reason": "stop", "workflow": workflow, "tenant": tenant, "route": "", "reasoning_mode": "",
        "request_class": "", "attributes": [], "received_at": at(received),
    }


def placement(instance: str, gpus: list[str], *, start: float = -86400.0, cluster: str = "default",
              node: str = "node-a") -> dict:
    return {
        "cluster": cluster, "engine_instance": instance, "node": node, "gpu_uuids": gpus, "engine_kind": "vllm",
        "model": "llama3-8b", "tp": len(gpus), "pp": 1, "ep": 1, "dp": 1, "valid_from": at(start), "valid_to": FAR,
        "source": "config", "updated_at": at(start),
    }


def reservation(rid: str, gpus: list[str], usd_per_gpu_hour: float, *, start: float = -86400.0, end: float | None = None,
                owner: str = "team-a", pricing_model: str = "reserved", cluster: str = "default",
                nodes: list[str] | None = None, gpu_model: str = "NVIDIA H100 80GB HBM3") -> dict:
    return {
        "reservation_id": rid, "provider": "aws", "pricing_model": pricing_model, "gpu_model": gpu_model,
        "cluster": cluster, "nodes": nodes or [], "gpu_uuids": gpus, "gpu_count": len(gpus),
        "usd_per_gpu_hour": usd_per_gpu_hour, "owner_team": owner, "valid_from": at(start),
        "valid_to": at(end) if end is not None else FAR, "loaded_at": at(-86400),
    }


def price(pid: str, kind: str, usd_per_unit: float, *, start: float = -86400.0, end: float | None = None,
          pricing_model: str = "", gpu_model: str = "", cluster: str = "") -> dict:
    return {
        "price_id": pid, "kind": kind, "provider": "", "pricing_model": pricing_model, "gpu_model": gpu_model,
        "region": "", "cluster": cluster, "usd_per_unit": usd_per_unit,
        "unit": "gpu-hour" if kind == "gpu" else "kWh", "valid_from": at(start),
        "valid_to": at(end) if end is not None else FAR, "loaded_at": at(-86400),
    }


def samples(gpu: str, times: list[float], *, watts: float | None = None, energy_mj: list[int | None] | None = None,
            power_w: list[float | None] | None = None, node: str = "node-a") -> list[dict]:
    """1 sample per time; a constant ``watts`` gives a matching energy counter and power."""
    rows = []
    for i, t in enumerate(times):
        e = energy_mj[i] if energy_mj is not None else (int(round(watts * 1000 * (t - times[0]))) if watts else None)
        p = power_w[i] if power_w is not None else watts
        rows.append({
            "ts": at(t), "cluster": "default", "node": node, "gpu_uuid": gpu, "gpu_index": 0,
            "gpu_model": "NVIDIA H100 80GB HBM3", "mig_profile": "", "mig_instance": "", "sm_util_pct": None,
            "gr_engine_active": None, "mem_util_pct": None, "memory_used_bytes": None, "memory_total_bytes": None,
            "power_w": p, "energy_mj": e, "sm_clock_mhz": None, "mem_clock_mhz": None, "temperature_c": None,
            "throttle_reasons": None, "ecc_sbe_total": None, "ecc_dbe_total": None, "source": "nvml",
        })
    return rows


def inputs(*, start: float, end: float, spans=(), placements=(), reservations=(), prices=(), gpu_samples=(),
           trace_labels=(), cluster: str = "default") -> WindowInputs:
    return WindowInputs(
        cluster=cluster, window_start=at(start), window_end=at(end),
        spans=frame("request_spans", list(spans)), trace_labels=frame("trace_labels", list(trace_labels)),
        placements=frame("engine_placements", list(placements)),
        reservations=frame("reservations", list(reservations)), prices=frame("prices", list(prices)),
        samples=frame("gpu_samples", list(gpu_samples)),
    )
