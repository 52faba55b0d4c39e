"""Busy phases of each request and the weight it carries in each (DESIGN.md §4).

Prefill is ``[start + queue, start + queue + prefill)`` and decode ``[prefill end, end)``; when a
span reports no prefill time, prefill ends at ``start + ttft``. Weights are tokens processed per
second of the phase: ``(prompt - cached) / prefill_s`` and ``completion * decode_weight /
decode_s`` (at least one token, so a fully cached prefill still shares its time), or 1 in
``time`` mode. Times are integer microseconds since the epoch.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

MIN_PHASE_S = 1e-6


def phases(spans: pl.DataFrame, weighting: Literal["tokens", "time"], decode_weight: float) -> pl.DataFrame:
    """One row per span (same order): prefill_a/b, decode_a/b (µs) and w_prefill/w_decode."""
    fast = _phases_numpy(spans, weighting, decode_weight)
    if fast is not None:
        return fast
    start = pl.col("start_ts").dt.epoch("us")
    end = pl.max_horizontal(pl.col("end_ts").dt.epoch("us"), start)
    queue_us = (pl.col("queue_seconds").fill_null(0.0).clip(0.0) * 1e6).round().cast(pl.Int64)
    prefill_us = (pl.col("prefill_seconds").fill_null(0.0).clip(0.0) * 1e6).round().cast(pl.Int64)
    ttft_us = (pl.col("ttft_seconds").fill_null(0.0).clip(0.0) * 1e6).round().cast(pl.Int64)
    frame = spans.lazy().select(
        _s=start,
        _e=end,
        _pa=start + queue_us,
        _pb=pl.when(prefill_us > 0).then(start + queue_us + prefill_us).otherwise(start + ttft_us),
        _prompt=(pl.col("prompt_tokens").cast(pl.Int64) - pl.col("cached_tokens").cast(pl.Int64)).clip(1),
        _completion=pl.col("completion_tokens").cast(pl.Int64).clip(1),
    ).with_columns(
        prefill_a=pl.col("_pa").clip(pl.col("_s"), pl.col("_e")),
        prefill_b=pl.col("_pb").clip(pl.col("_pa").clip(pl.col("_s"), pl.col("_e")), pl.col("_e")),
    ).with_columns(decode_a=pl.col("prefill_b"), decode_b=pl.col("_e"))
    if weighting == "time":
        weights = [pl.lit(1.0).alias("w_prefill"), pl.lit(1.0).alias("w_decode")]
    else:
        dur = lambda a, b: ((pl.col(b) - pl.col(a)) / 1e6).clip(MIN_PHASE_S)  # noqa: E731
        weights = [
            (pl.col("_prompt") / dur("prefill_a", "prefill_b")).alias("w_prefill"),
            (pl.col("_completion") * decode_weight / dur("decode_a", "decode_b")).alias("w_decode"),
        ]
    cols = ("prefill_a", "prefill_b", "decode_a", "decode_b", "w_prefill", "w_decode")
    return frame.with_columns(weights).select(cols).collect()  # one lazy query: fused, not six eager passes


_SECONDS = ("queue_seconds", "prefill_seconds", "ttft_seconds")
_TOKENS = ("prompt_tokens", "cached_tokens", "completion_tokens")


def _phases_numpy(spans: pl.DataFrame, weighting: str, decode_weight: float) -> pl.DataFrame | None:
    """``phases`` in numpy for the common case (no nulls, finite Float64 seconds): the same
    arithmetic in the same order as the Polars query (which turns ``/ 1e6`` into ``* 1e-6``),
    so bit-identical; None sends the caller to the Polars query."""
    if any(spans[c].null_count() for c in ("start_ts", "end_ts", *_SECONDS, *_TOKENS)):
        return None
    if any(spans[c].dtype != pl.Float64 for c in _SECONDS):
        return None
    us = {}
    for c in _SECONDS:  # in place where possible: fresh arrays cost page faults
        x = spans[c].to_numpy()
        if not np.all(np.abs(x) < 1e12):  # nan/inf/absurd: the Polars path says what is wrong
            return None
        x = np.maximum(x, 0.0)
        x *= 1e6
        np.rint(x, out=x)
        us[c] = x.astype(np.int64)
    se = spans.select(pl.col("start_ts").dt.epoch("us"), pl.col("end_ts").dt.epoch("us"))
    s = se["start_ts"].to_numpy()
    e = np.maximum(se["end_ts"].to_numpy(), s)
    prefill_a = us["queue_seconds"]
    prefill_a += s  # start + queue
    pb = np.where(us["prefill_seconds"] > 0, prefill_a + us["prefill_seconds"], us["ttft_seconds"] + s)
    np.maximum(prefill_a, s, out=prefill_a)
    np.minimum(prefill_a, e, out=prefill_a)
    prefill_b = np.maximum(pb, prefill_a, out=pb)
    np.minimum(prefill_b, e, out=prefill_b)
    n = s.size
    if weighting == "time":
        w_prefill, w_decode = np.ones(n), np.ones(n)
    else:
        tok = {c: spans[c].cast(pl.Int64).to_numpy() for c in _TOKENS}
        prompt = np.subtract(tok["prompt_tokens"], tok["cached_tokens"])
        np.maximum(prompt, 1, out=prompt)
        completion = np.maximum(tok["completion_tokens"], 1)
        w_prefill = _per_second(prompt, prefill_b - prefill_a)
        w_decode = _per_second(completion * decode_weight if decode_weight != 1.0 else completion, e - prefill_b)
    return pl.DataFrame({"prefill_a": prefill_a, "prefill_b": prefill_b, "decode_a": prefill_b, "decode_b": e,
                         "w_prefill": w_prefill, "w_decode": w_decode})


def _per_second(amount: np.ndarray, dur_us: np.ndarray) -> np.ndarray:
    """``amount / max(dur_us * 1e-6, MIN_PHASE_S)``, reusing ``dur_us``'s buffer."""
    d = dur_us.astype(np.float64)
    d *= 1e-6
    np.maximum(d, MIN_PHASE_S, out=d)
    return np.divide(amount, d, out=d)
