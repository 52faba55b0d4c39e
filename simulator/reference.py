"""A naive reference of the batching model: one Python iteration per engine step, one per token.

Same rules as ``simulator.engine`` (read its docstring), written the obvious way: every step
walks the running batch and decrements each request's remaining tokens, and charges each
request its token share of the step. Far too slow for a fleet-hour; used by the tests to check
the block-based engine step by step, and by ``bench/simulator.py`` as the baseline.
"""

from __future__ import annotations

import numpy as np

from simulator.catalogue import GpuSpec, ModelSpec


def run_naive(arrival: np.ndarray, prefill_tokens: np.ndarray, completion_tokens: np.ndarray,
              model: ModelSpec, gpu: GpuSpec) -> dict[str, np.ndarray | float | int]:
    n = len(arrival)
    base, kp, kd = (model.step_base_s / gpu.speed, model.step_per_prefill_token_s / gpu.speed,
                    model.step_per_decode_seq_s / gpu.speed)
    t_admit, t_first, t_end, gpu_s = np.zeros(n), np.zeros(n), np.zeros(n), np.zeros(n)
    remaining: dict[int, int] = {}  # running request -> decode tokens still to produce
    t, h, steps, busy = 0.0, 0, 0, 0.0
    while h < n or remaining:
        if not remaining and arrival[h] > t:
            t = float(arrival[h])
        admitted: list[int] = []
        tok = 0
        while h < n and arrival[h] <= t and len(remaining) + len(admitted) < model.max_batch:
            p = int(prefill_tokens[h])
            if admitted and tok + p > model.max_batched_tokens:
                break
            admitted.append(h)
            tok += p
            h += 1
        if not admitted and not remaining:
            continue
        decoders = list(remaining)
        step = base + kp * tok + kd * len(decoders)
        total_tokens = tok + len(decoders)
        for i in decoders:  # one token each
            gpu_s[i] += step / total_tokens
            remaining[i] -= 1
        for i in admitted:
            gpu_s[i] += step * int(prefill_tokens[i]) / total_tokens
            t_admit[i], t_first[i] = t, t + step
            remaining[i] = int(completion_tokens[i]) - 1
        t += step
        steps += 1
        busy += step
        for i in [i for i, left in remaining.items() if left <= 0]:
            t_end[i] = t
            del remaining[i]
    return {"t_admit": t_admit, "t_first": t_first, "t_end": t_end, "gpu_seconds": gpu_s, "steps": steps,
            "busy_seconds": busy}
