"""Continuous batching: exact agreement with a per-token reference, and ground-truth conservation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from simulator.catalogue import GPUS, MODELS
from simulator.engine import attach_truth, run_batching, set_block_energy
from simulator.reference import run_naive


@pytest.mark.parametrize("max_batch", [4, 256])
def test_block_engine_matches_per_token_reference(max_batch):
    rng = np.random.default_rng(3)
    n = 300
    arrival = np.sort(rng.uniform(0, 60, n))
    prefill = np.maximum(1, rng.lognormal(np.log(600), 0.8, n).astype(int))
    completion = np.maximum(1, rng.lognormal(np.log(80), 0.9, n).astype(int))
    model = replace(MODELS["llama3-8b"], max_batch=max_batch)
    run = run_batching(arrival, prefill, completion, model, GPUS["H100"])
    set_block_energy(run, [70.0])
    attach_truth(run, prefill, 1, np.array([0.0, 1e6]), np.array([0.0, 1e6 / 3600]))
    ref = run_naive(arrival, prefill, completion, model, GPUS["H100"])
    assert run.steps == ref["steps"]
    for k in ("t_admit", "t_first", "t_end"):
        np.testing.assert_allclose(getattr(run, k), ref[k], rtol=0, atol=1e-9)
    np.testing.assert_allclose(run.prefill_gpu_seconds + run.decode_gpu_seconds, ref["gpu_seconds"], atol=1e-12)
    queue = run.t_admit - arrival
    assert (queue >= 0).all() and (run.t_first > run.t_admit).all() and (run.t_end >= run.t_first).all()
    if max_batch == 4:
        assert queue.max() > 1.0  # a full batch makes requests wait


def test_truth_sums_to_busy_time_energy_and_cost_per_instance(small_sim):
    fleet, run = small_sim.fleet, small_sim.run
    truth = small_sim.request_truth()
    inst = truth.column("engine_instance").to_numpy(zero_copy_only=False)
    gs = truth.column("gpu_seconds").to_numpy()
    energy = truth.column("energy_j").to_numpy()
    for e, r in zip(fleet.engines, run.runs, strict=True):
        sel = inst == e.instance
        assert sel.sum() > 0
        busy_gpu_seconds = r.busy_seconds * len(e.gpu_uuids)
        assert gs[sel].sum() == pytest.approx(busy_gpu_seconds, rel=1e-12)
        assert energy[sel].sum() == pytest.approx(r.block_energy_j.sum(), rel=1e-12)
    assert (gs > 0).all() and (energy > 0).all()


def test_idle_plus_busy_is_wall_time_per_gpu_and_cost_adds_up(small_sim):
    fleet, run = small_sim.fleet, small_sim.run
    idle = small_sim.idle_truth().to_pylist()
    per_gpu: dict[str, float] = {}
    for row in idle:
        assert row["idle_seconds"] >= -1e-9
        assert row["idle_seconds"] + row["busy_seconds"] == pytest.approx(row["wall_seconds"], abs=1e-6)
        per_gpu[row["gpu_uuid"]] = per_gpu.get(row["gpu_uuid"], 0.0) + row["wall_seconds"]
    assert set(per_gpu) == {g.uuid for g in fleet.gpus}
    assert all(v == pytest.approx(fleet.duration_s) for v in per_gpu.values())
    # the GPU with no engine is idle all the time and its whole cost is idle cost
    used = {u for e in fleet.engines for u in e.gpu_uuids}
    spare = [g.uuid for g in fleet.gpus if g.uuid not in used]
    assert spare
    spare_idle = sum(r["idle_seconds"] for r in idle if r["gpu_uuid"] == spare[0])
    assert spare_idle == pytest.approx(fleet.duration_s)
    # total cost of the window = request cost inside the window + idle cost (requests ending in-window)
    total = sum(sum(usd * (b - a) for a, b, usd, _ in fleet.rate_segments(g.uuid)) for g in fleet.gpus)
    idle_cost = sum(r["idle_cost_usd"] for r in idle)
    busy_cost = 0.0
    for e, r in zip(fleet.engines, run.runs, strict=True):
        from simulator.fleetrun import instance_rate

        t, cum = instance_rate(fleet, e.gpu_uuids)
        ends = np.minimum(r.block_start + r.block_time, fleet.duration_s)
        starts = np.minimum(r.block_start, fleet.duration_s)
        busy_cost += float((np.interp(ends, t, cum) - np.interp(starts, t, cum)).sum())
    assert idle_cost + busy_cost == pytest.approx(total, rel=1e-9)


def test_request_timings_are_consistent(small_sim):
    t = small_sim.request_truth().to_pydict()
    for q, ttft, pf, dc, e2e in zip(t["queue_seconds"], t["ttft_seconds"], t["prefill_seconds"],
                                     t["decode_seconds"], t["e2e_seconds"], strict=True):
        assert q >= 0 and pf > 0 and dc >= 0
        assert ttft == pytest.approx(q + pf) and e2e == pytest.approx(ttft + dc)
    assert set(t["label_source"]) == {"caller", "engine_span", "none"}
    assert set(t["finish_reason"]) <= {"stop", "length"}
