"""One simulated window of the whole fleet: every instance's batching run and the ground truth.

``run_fleet(fleet)`` generates the requests, runs continuous batching per instance
(``simulator.engine``) and keeps, per GPU, piecewise-linear cumulative curves of busy time and
busy energy; telemetry (``simulator.telemetry``) samples those curves, and the idle ground truth
integrates them. The truth is computed here from the simulator's own step records only.

GPU energy model: a GPU draws its idle power (catalogue value +-4 %, fixed per GPU) whenever
no step of its instance runs, and idle + dynamic power while one runs; so per GPU
``energy(t) = idle_w * (t - busy(t)) + busy_energy(t)`` and idle energy = idle_w * idle seconds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
import pyarrow as pa

from simulator.engine import InstanceRun, attach_truth, run_batching, set_block_energy
from simulator.fleet import Fleet
from simulator.workload import Requests, generate_requests


def gpu_idle_power_w(uuid: str, catalogue_idle_w: float) -> float:
    h = int(hashlib.sha1(uuid.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return round(catalogue_idle_w * (0.96 + 0.08 * h), 3)


@dataclass
class GpuCurve:
    """Breakpoints of cumulative busy seconds and busy energy (J) of one GPU, from the window start."""

    t: np.ndarray
    busy_s: np.ndarray
    busy_energy_j: np.ndarray
    idle_w: float

    def busy_at(self, t: np.ndarray | float) -> np.ndarray:
        return np.interp(t, self.t, self.busy_s)

    def energy_at(self, t: np.ndarray | float) -> np.ndarray:
        """Total energy (J) drawn since the window start."""
        busy = np.interp(t, self.t, self.busy_s)
        return self.idle_w * (np.asarray(t, dtype=np.float64) - busy) + np.interp(t, self.t, self.busy_energy_j)


@dataclass
class FleetRun:
    fleet: Fleet
    requests: Requests  # sorted by (instance, arrival)
    runs: list[InstanceRun]
    bounds: list[tuple[int, int]]  # request slice of each engine
    curves: dict[str, GpuCurve] = field(default_factory=dict)

    @property
    def n_requests(self) -> int:
        return len(self.requests)

    def instance_of_gpu(self, uuid: str) -> int | None:
        for i, e in enumerate(self.fleet.engines):
            if uuid in e.gpu_uuids:
                return i
        return None

    def request_truth(self) -> pa.Table:
        """``ground_truth_requests.parquet`` (interfaces.md columns, then extra detail columns)."""
        r = self.requests
        n = len(r)
        t_admit, t_first, t_end, pf_s, dc_s, en, cost = (np.zeros(n) for _ in range(7))
        for (a, b), run in zip(self.bounds, self.runs, strict=True):
            t_admit[a:b], t_first[a:b], t_end[a:b] = run.t_admit, run.t_first, run.t_end
            pf_s[a:b], dc_s[a:b], en[a:b], cost[a:b] = run.prefill_gpu_seconds, run.decode_gpu_seconds, run.energy_j, run.cost_usd
        start_us = int(self.fleet.start.timestamp() * 1_000_000)
        names = np.array([e.instance for e in self.fleet.engines], dtype=object)
        kwh = float(self.fleet.option("energy_usd_per_kwh", 0.12))

        def ts(x: np.ndarray) -> pa.Array:
            return pa.array(start_us + np.rint(x * 1e6).astype(np.int64), pa.timestamp("us", tz="UTC"))

        return pa.table({
            "request_id": pa.array(r.request_id, pa.string()),
            "trace_id": pa.array(r.trace_id, pa.string()),
            "engine_instance": pa.array(names[r.instance], pa.string()),
            "workflow": pa.array(r.workflow, pa.string()),
            "tenant": pa.array(r.tenant, pa.string()),
            "route": pa.array(r.route, pa.string()),
            "reasoning_mode": pa.array(r.reasoning_mode, pa.string()),
            "start_ts": ts(r.arrival),
            "end_ts": ts(t_end),
            "gpu_seconds": pf_s + dc_s,
            "energy_j": en,
            "cost_usd": cost,
            "energy_cost_usd": en / 3.6e6 * kwh,
            "prefill_gpu_seconds": pf_s,
            "decode_gpu_seconds": dc_s,
            "label_source": pa.array(r.label_source, pa.string()),
            "prompt_tokens": r.prompt_tokens.astype(np.uint32),
            "cached_tokens": r.cached_tokens.astype(np.uint32),
            "completion_tokens": r.completion_tokens.astype(np.uint32),
            "finish_reason": pa.array(r.finish_reason, pa.string()),
            "queue_seconds": t_admit - r.arrival,
            "ttft_seconds": t_first - r.arrival,
            "prefill_seconds": t_first - t_admit,
            "decode_seconds": t_end - t_first,
            "e2e_seconds": t_end - r.arrival,
        })

    def idle_truth(self) -> pa.Table:
        """``ground_truth_idle.parquet``: idle seconds, cost and energy per reservation, GPU and hour.

        A GPU is idle when its instance runs no step (or it has no instance)."""
        f = self.fleet
        hour0 = f.start.replace(minute=0, second=0, microsecond=0)
        first = (hour0 - f.start).total_seconds()
        edges = np.arange(first, f.duration_s + 3600.0, 3600.0)
        cols: dict[str, list] = {k: [] for k in (
            "reservation_id", "gpu_uuid", "node", "hour", "wall_seconds", "busy_seconds", "idle_seconds",
            "idle_cost_usd", "idle_energy_j")}
        for g in f.gpus:
            curve = self.curves[g.uuid]
            for a, b, usd_s, res in f.rate_segments(g.uuid):
                cuts = np.unique(np.clip(np.concatenate(([a, b], edges)), a, b))
                lo, hi = cuts[:-1], cuts[1:]
                busy = curve.busy_at(hi) - curve.busy_at(lo)
                idle = (hi - lo) - busy
                hours = np.floor((lo - first) / 3600.0).astype(int)
                for k in range(len(lo)):
                    cols["reservation_id"].append(res.reservation_id)
                    cols["gpu_uuid"].append(g.uuid)
                    cols["node"].append(g.node)
                    cols["hour"].append(hour0 + timedelta(hours=int(hours[k])))
                    cols["wall_seconds"].append(float(hi[k] - lo[k]))
                    cols["busy_seconds"].append(float(busy[k]))
                    cols["idle_seconds"].append(float(idle[k]))
                    cols["idle_cost_usd"].append(float(idle[k] * usd_s))
                    cols["idle_energy_j"].append(float(idle[k] * curve.idle_w))
        t = pa.table(cols)
        keys = ["reservation_id", "gpu_uuid", "node", "hour"]
        agg = t.group_by(keys, use_threads=False).aggregate([(c, "sum") for c in cols if c not in keys])
        agg = agg.rename_columns([c.removesuffix("_sum") for c in agg.column_names])
        agg = agg.select(["reservation_id", "gpu_uuid", "hour", "idle_seconds", "idle_cost_usd", "idle_energy_j",
                          "node", "wall_seconds", "busy_seconds"])
        return agg.cast(agg.schema.set(2, pa.field("hour", pa.timestamp("ms", tz="UTC")))).sort_by(
            [("gpu_uuid", "ascending"), ("hour", "ascending"), ("reservation_id", "ascending")])


def instance_rate(fleet: Fleet, gpu_uuids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of the cumulative $ of a set of GPUs over the window (piecewise linear)."""
    segs = [fleet.rate_segments(u) for u in gpu_uuids]
    t = np.unique(np.array([0.0, fleet.duration_s] + [x for s in segs for a, b, _, _ in s for x in (a, b)]))
    total = np.zeros(len(t))
    for s in segs:
        rate = np.zeros(len(t) - 1)
        for a, b, usd_s, _ in s:
            rate[(t[:-1] >= a) & (t[1:] <= b)] = usd_s
        total += np.concatenate(([0.0], np.cumsum(rate * np.diff(t))))
    # steps may run a little past the window end: extend at the last rate
    last = (total[-1] - total[-2]) / (t[-1] - t[-2]) if len(t) > 1 else 0.0
    return np.append(t, t[-1] + 86400.0), np.append(total, total[-1] + last * 86400.0)


def run_fleet(fleet: Fleet) -> FleetRun:
    reqs = generate_requests(fleet)
    starts = np.searchsorted(reqs.instance, np.arange(len(fleet.engines) + 1))
    bounds = [(int(starts[i]), int(starts[i + 1])) for i in range(len(fleet.engines))]
    idle_w = {g.uuid: gpu_idle_power_w(g.uuid, g.spec.idle_power_w) for g in fleet.gpus}
    runs, curves = [], {}
    uncached = reqs.uncached_tokens
    for e, (a, b) in zip(fleet.engines, bounds, strict=True):
        gpu = fleet.gpu(e.gpu_uuids[0]).spec
        run = run_batching(reqs.arrival[a:b], uncached[a:b], reqs.completion_tokens[a:b], e.spec, gpu)
        set_block_energy(run, [idle_w[u] for u in e.gpu_uuids])
        attach_truth(run, uncached[a:b], len(e.gpu_uuids), *instance_rate(fleet, e.gpu_uuids))
        runs.append(run)
        m = len(run.block_time)
        x = np.empty(2 * m)
        x[0::2], x[1::2] = run.block_start, run.block_start + run.block_time
        cum_t = np.cumsum(run.block_time)
        bt = np.empty(2 * m)
        bt[0::2], bt[1::2] = cum_t - run.block_time, cum_t
        for u in e.gpu_uuids:
            per_gpu = run.block_time * (idle_w[u] + run.block_dyn_power_w)
            cum_e = np.cumsum(per_gpu)
            be = np.empty(2 * m)
            be[0::2], be[1::2] = cum_e - per_gpu, cum_e
            curves[u] = GpuCurve(np.concatenate(([0.0], x)), np.concatenate(([0.0], bt)),
                                 np.concatenate(([0.0], be)), idle_w[u])
    for g in fleet.gpus:
        if g.uuid not in curves:
            z = np.zeros(1)
            curves[g.uuid] = GpuCurve(z, z, z, idle_w[g.uuid])
    return FleetRun(fleet, reqs, runs, bounds, curves)
