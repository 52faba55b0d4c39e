"""Busy phases of each request and the weight it carries in each (DESIGN.md §4).

Prefill is ``[start + queue, start + queue + prefill)`` and decode ``[prefill end, end)``; when a
span reports no prefill time, prefill ends at ``start + ttft``. Weights are tokens processed per
second of the phase: ``(prompt - cached) / prefill_s`` and ``completion * decode_weight /
decode_s`` (at least one token, so a fully cached prefill still shares its time), or 1 in
``time`` mode. Times are integer microseconds since the epoch.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

MIN_PHASE_S = 1e-6


def phases(spans: pl.DataFrame, weighting: Literal["tokens", "time"], decode_weight: float) -> pl.DataFrame:
    """One row per span (same order): prefill_a/b, decode_a/b (µs) and w_prefill/w_decode."""
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
