"""Simulator speed: wall time of a 16-GPU fleet-hour (requests, batching, ground truth) and
simulated requests per wall second, against a naive per-token Python loop of the same batching
model (``simulator.reference``) on a slice of one instance's requests, measured in the same run."""

from __future__ import annotations

import time

import numpy as np

from bench.common import emit, log, parser
from simulator.fleet import load_fleet
from simulator.fleetrun import run_fleet
from simulator.reference import run_naive


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__).parse_args(argv)
    hours = 0.25 if args.quick else 1.0
    fleet = load_fleet(nodes=2, hours=hours, seed=42, start="2026-11-29T12:00:00Z")  # busy afternoon hours
    t0 = time.perf_counter()
    run = run_fleet(fleet)
    truth = run.request_truth()
    idle = run.idle_truth()
    wall = time.perf_counter() - t0
    n = run.n_requests
    steps = sum(r.steps for r in run.runs)
    log(f"{n} requests, {steps} engine steps, {truth.num_rows} truth rows, {idle.num_rows} idle rows in {wall:.2f} s")

    # baseline: the per-token loop on the first `slice_n` requests of the busiest dense instance
    e_idx = max((i for i, e in enumerate(fleet.engines) if e.spec.moe is None),
                key=lambda i: run.bounds[i][1] - run.bounds[i][0])
    a, b = run.bounds[e_idx]
    slice_n = min(b - a, 300 if args.quick else 1500)
    e = fleet.engines[e_idx]
    r = run.requests
    sl = slice(a, a + slice_n)
    tb = time.perf_counter()
    ref = run_naive(r.arrival[sl], r.uncached_tokens[sl], r.completion_tokens[sl], e.spec, fleet.gpu(e.gpu_uuids[0]).spec)
    base_wall = time.perf_counter() - tb
    base_rps = slice_n / base_wall
    ours_rps = n / wall
    log(f"naive loop: {slice_n} requests ({ref['steps']} steps) of {e.instance} in {base_wall:.2f} s")
    emit("simulator", "requests_per_wall_s", ours_rps, "requests/s", baseline=round(base_rps, 1),
         ratio=round(ours_rps / base_rps, 2), gpus=len(fleet.gpus), virtual_hours=hours, requests=n,
         baseline_kind="per-token Python loop, same model, one instance slice")
    # fleet-hour wall time; the baseline extrapolates the naive loop's per-request cost to the same requests
    scale = 1.0 / hours
    base_fleet_hour = n * scale / base_rps
    emit("simulator", "fleet_hour_wall_s", wall * scale, "s", baseline=round(base_fleet_hour, 2),
         ratio=round(base_fleet_hour / (wall * scale), 2), gpus=len(fleet.gpus), target_s=10.0,
         measured_hours=hours, steps_per_wall_s=round(steps / wall))
    tokens = float(r.uncached_tokens.sum() + r.completion_tokens.sum())
    base_tokens = float(r.uncached_tokens[sl].sum() + r.completion_tokens[sl].sum())
    emit("simulator", "tokens_per_wall_s", tokens / wall, "tokens/s", baseline=round(base_tokens / base_wall),
         ratio=round((tokens / wall) / (base_tokens / base_wall), 2))
    err = max(abs(float(np.sum(x.prefill_gpu_seconds + x.decode_gpu_seconds)) - x.busy_seconds * len(fe.gpu_uuids))
              for x, fe in zip(run.runs, fleet.engines, strict=True))
    emit("simulator", "truth_conservation_abs_err_gpu_s", err, "gpu-s")


if __name__ == "__main__":
    main()
