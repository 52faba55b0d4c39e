"""Continuous batching of one engine instance, and the ground truth of who used its GPU time.

The model (vLLM / SGLang style, one scheduler per instance):

* The engine runs *steps* back to back while it has running requests. A step's duration is
  ``(base + k_prefill * prefill_tokens + k_decode * decode_batch) / gpu_speed``.
* At each step boundary, waiting requests (FIFO, arrived by then) are admitted while the running
  batch is below ``max_batch`` and the step's prefill-token budget holds (at least one request is
  admitted when there is room). An admitted request's prefill runs in that one step: it
  processes its uncached prompt tokens (``prompt - cached``, at least 1) and produces its first
  token at the end of the step. It then decodes one token per step until ``completion`` tokens
  exist. Requests that arrive while the batch is full wait in the queue.
* Timings per request follow vLLM's definitions: queue = admitted - arrived, prefill = the
  admission step, ttft = first token - arrived, decode = end - first token, e2e = end - arrived.

Between two events (an admission, a completion, an arrival that can be admitted) every step is
an identical decode step, so the simulation handles such a run of steps as one *block*: the
event loop costs O(requests log batch), never O(tokens).

Ground truth (the definition tests and the accuracy figures rely on): a step's GPU time, energy
and cost are shared among the requests in it **in proportion to the tokens each processes in
the step**: its uncached prompt tokens in its prefill step, 1 token in each decode step. Shares
of one step sum to 1, so per instance the requests' GPU time sums exactly (to float rounding)
to the instance's busy time; ``gpu_seconds`` counts GPUs, i.e. share x step time x number of
GPUs of the instance. Energy is shared the same way with the step's energy (all GPUs of the
instance), cost with the integral of the instance's $ rate (the sum of its GPUs' reservation
rates, which may change inside the window) over the step. Time with no step running is idle.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

import numpy as np

from simulator.catalogue import GpuSpec, ModelSpec


@dataclass
class InstanceRun:
    """Per-request timings and per-block records of one instance, plus the ground truth."""

    # per request, in arrival order (seconds from the window start)
    t_admit: np.ndarray
    t_first: np.ndarray
    t_end: np.ndarray
    admit_block: np.ndarray
    finish_block: np.ndarray
    # per block (a run of identical steps)
    block_start: np.ndarray
    block_time: np.ndarray
    block_decoders: np.ndarray  # requests decoding in each step of the block
    block_prefill_tokens: np.ndarray  # 0 for pure decode blocks
    block_steps: np.ndarray
    block_dyn_power_w: np.ndarray  # power above idle of each GPU while the block runs
    block_energy_j: np.ndarray | None = None  # all GPUs of the instance (set by set_block_energy)
    # ground truth per request
    prefill_gpu_seconds: np.ndarray | None = None
    decode_gpu_seconds: np.ndarray | None = None
    energy_j: np.ndarray | None = None
    cost_usd: np.ndarray | None = None

    @property
    def busy_seconds(self) -> float:
        return float(self.block_time.sum())

    @property
    def steps(self) -> int:
        return int(self.block_steps.sum())


def run_batching(arrival: np.ndarray, prefill_tokens: np.ndarray, completion_tokens: np.ndarray,
                 model: ModelSpec, gpu: GpuSpec) -> InstanceRun:
    """Simulate continuous batching over requests sorted by ``arrival`` (seconds)."""
    n = len(arrival)
    speed = gpu.speed
    base, kp, kd = model.step_base_s / speed, model.step_per_prefill_token_s / speed, model.step_per_decode_seq_s / speed
    max_batch, budget = model.max_batch, model.max_batched_tokens
    arr, pfl, outl = arrival.tolist(), prefill_tokens.tolist(), completion_tokens.tolist()
    ta, tf, te = [0.0] * n, [0.0] * n, [0.0] * n
    ab, fb = [0] * n, [0] * n
    b_t0: list[float] = []
    b_T: list[float] = []
    b_B: list[int] = []
    b_pf: list[int] = []
    b_n: list[int] = []
    heap: list[tuple[int, int]] = []
    push, pop = heapq.heappush, heapq.heappop
    K = 0  # steps run so far; a request admitted when K == s finishes when K reaches s + completion
    t = 0.0
    h = 0  # first request not yet admitted
    running = 0
    while h < n or running:
        if running == 0 and arr[h] > t:
            t = arr[h]
        k = len(b_t0)
        if h < n and arr[h] <= t and running < max_batch:
            cap = h + max_batch - running
            tok = 0
            j = h
            while j < n and j < cap and arr[j] <= t:
                p = pfl[j]
                if j > h and tok + p > budget:
                    break
                tok += p
                j += 1
            T = base + kp * tok + kd * running
            t1 = t + T
            b_t0.append(t)
            b_T.append(T)
            b_B.append(running)
            b_pf.append(tok)
            b_n.append(1)
            for i in range(h, j):
                ta[i] = t
                tf[i] = t1
                ab[i] = k
                if outl[i] <= 1:
                    te[i] = t1
                    fb[i] = k
                else:
                    push(heap, (K + outl[i], i))
                    running += 1
            h = j
            K += 1
            t = t1
        else:
            d = base + kd * running
            steps = heap[0][0] - K
            if running < max_batch and h < n:
                steps = min(steps, max(1, math.ceil((arr[h] - t) / d)))
            T = steps * d
            b_t0.append(t)
            b_T.append(T)
            b_B.append(running)
            b_pf.append(0)
            b_n.append(steps)
            K += steps
            t += T
        while heap and heap[0][0] <= K:
            _, i = pop(heap)
            te[i] = t
            fb[i] = k
            running -= 1
    block_time = np.asarray(b_T)
    decoders = np.asarray(b_B, dtype=np.int64)
    pf_tok = np.asarray(b_pf, dtype=np.int64)
    steps_arr = np.asarray(b_n, dtype=np.int64)
    tokens_per_step = pf_tok + decoders
    return InstanceRun(
        t_admit=np.asarray(ta), t_first=np.asarray(tf), t_end=np.asarray(te),
        admit_block=np.asarray(ab, dtype=np.int64), finish_block=np.asarray(fb, dtype=np.int64),
        block_start=np.asarray(b_t0), block_time=block_time, block_decoders=decoders,
        block_prefill_tokens=pf_tok, block_steps=steps_arr,
        block_dyn_power_w=_dynamic_power_w(gpu, model, tokens_per_step),
    )


def _dynamic_power_w(gpu: GpuSpec, model: ModelSpec, tokens_per_step: np.ndarray) -> np.ndarray:
    """Power of one GPU above idle while a step runs: a share of the headroom that grows with the
    tokens of the step (memory-bound small decode batches draw less)."""
    activity = np.minimum(1.0, 0.3 + 0.7 * tokens_per_step / model.saturation_tokens)
    return (0.92 * gpu.power_limit_w - gpu.idle_power_w) * activity


def set_block_energy(run: InstanceRun, idle_power_w: list[float]) -> None:
    """Energy of each block over all GPUs of the instance (each GPU: its idle power + dynamic)."""
    run.block_energy_j = run.block_time * (sum(idle_power_w) + len(idle_power_w) * run.block_dyn_power_w)


def attach_truth(run: InstanceRun, prefill_tokens: np.ndarray, n_gpus: int,
                 rate_t: np.ndarray, rate_cum_usd: np.ndarray) -> None:
    """Per-request GPU-seconds, energy and cost by token share of each step (module docstring).

    ``rate_t`` / ``rate_cum_usd``: breakpoints of the cumulative $ of the instance (all its GPUs)
    from the window start, piecewise linear between them."""
    if len(run.block_time) == 0:
        z = np.zeros(0)
        run.prefill_gpu_seconds = run.decode_gpu_seconds = run.energy_j = run.cost_usd = z
        return
    block_end = run.block_start + run.block_time
    block_cost = np.interp(block_end, rate_t, rate_cum_usd) - np.interp(run.block_start, rate_t, rate_cum_usd)
    denom = (run.block_prefill_tokens + run.block_decoders).astype(np.float64)
    pf = np.maximum(prefill_tokens, 1).astype(np.float64)
    a, f = run.admit_block, run.finish_block

    def shares(per_block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        per_token = per_block / denom  # what one token of one request gets in the block
        cum = np.concatenate(([0.0], np.cumsum(per_token)))
        prefill = per_token[a] * pf
        decode = cum[f + 1] - cum[a + 1]
        return prefill, decode

    p_t, d_t = shares(run.block_time)
    run.prefill_gpu_seconds = p_t * n_gpus
    run.decode_gpu_seconds = d_t * n_gpus
    p_e, d_e = shares(run.block_energy_j)
    run.energy_j = p_e + d_e
    p_c, d_c = shares(block_cost)
    run.cost_usd = p_c + d_c
