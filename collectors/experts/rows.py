"""Builders of contract rows (``expert_loads``, ``expert_balance_samples``) from parsed inputs.

Vectorised: a dump of L layers x E experts becomes L*E rows through numpy repeat/tile, never a
Python loop over experts. Every table is conformed to the schema in ``schemas.tables``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from schemas.tables import EXPERT_BALANCE_SAMPLES, TS_MS, conform


def expert_load_rows(
    counts: np.ndarray,
    *,
    window_start_ms: int,
    window_end_ms: int,
    cluster: str,
    engine_instance: str,
    model: str,
    source: str,
) -> pa.Table:
    """One row per (layer, expert) of ``counts[layers, experts]``, zero counts included (a
    complete layer lets the analysis see every expert, cold ones too)."""
    layers, experts = counts.shape
    n = layers * experts
    data = pa.table({
        "window_start": pa.array(np.full(n, window_start_ms, dtype=np.int64), type=pa.int64()).cast(TS_MS),
        "window_end": pa.array(np.full(n, window_end_ms, dtype=np.int64), type=pa.int64()).cast(TS_MS),
        "cluster": pa.array([cluster]).take(np.zeros(n, dtype=np.int64)),
        "engine_instance": pa.array([engine_instance]).take(np.zeros(n, dtype=np.int64)),
        "model": pa.array([model]).take(np.zeros(n, dtype=np.int64)),
        "layer": pa.array(np.repeat(np.arange(layers, dtype=np.uint16), experts)),
        "expert": pa.array(np.tile(np.arange(experts, dtype=np.uint32), layers)),
        "tokens": pa.array(np.ascontiguousarray(counts, dtype=np.uint64).ravel()),
        "source": pa.array([source]).take(np.zeros(n, dtype=np.int64)),
    })
    return conform("expert_loads", data)


def balance_rows(
    ts_ms: Sequence[int],
    avg_tokens: Sequence[float | None],
    max_tokens: Sequence[float | None],
    balancedness: Sequence[float],
    models: Sequence[str],
    *,
    cluster: str,
    engine_instance: str,
    source: str,
    layer: int = -1,
) -> pa.Table:
    """Rows of ``expert_balance_samples`` (whole-model samples have layer -1)."""
    n = len(ts_ms)
    data = pa.table(
        {
            "ts": pa.array(list(ts_ms), type=pa.int64()).cast(TS_MS),
            "cluster": pa.array([cluster] * n),
            "engine_instance": pa.array([engine_instance] * n),
            "model": pa.array(list(models), type=pa.string()),
            "layer": pa.array([layer] * n, type=pa.int32()),
            "avg_tokens": pa.array(list(avg_tokens), type=pa.float64()),
            "max_tokens": pa.array(list(max_tokens), type=pa.float64()),
            "balancedness": pa.array(list(balancedness), type=pa.float64()),
            "source": pa.array([source] * n),
        },
        schema=EXPERT_BALANCE_SAMPLES,
    )
    return conform("expert_balance_samples", data)
