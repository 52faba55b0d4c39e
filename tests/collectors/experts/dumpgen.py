"""Builders of SGLang expert-distribution dumps with planted hot experts (the exact formats of
interfaces.md), shared by the collector tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def skewed_counts(rng: np.random.Generator, layers: int, experts: int, hot: dict[int, list[int]], base: int = 100,
                  factor: int = 40) -> np.ndarray:
    """Poisson base load with ``hot[layer]`` experts ``factor`` times hotter; int64 [layers, experts]."""
    counts = rng.poisson(base, size=(layers, experts)).astype(np.int64)
    for layer, ids in hot.items():
        counts[layer, ids] += base * factor
    return counts


def plant(rng: np.random.Generator, layers: int, experts: int, k: int) -> dict[int, list[int]]:
    return {layer: sorted(rng.choice(experts, size=k, replace=False).tolist()) for layer in range(layers)}


def stat_dump(counts: np.ndarray, steps: int, rng: np.random.Generator, rank: int = 0) -> dict:
    """Split ``counts[L, E]`` over ``steps`` buffer steps: logical_count [steps, L, E]."""
    parts = np.zeros((steps, *counts.shape), dtype=np.int64)
    for s in range(steps - 1):
        take = rng.integers(0, counts // steps + 1)
        parts[s] = take
    parts[-1] = counts - parts[:-1].sum(axis=0)
    assert (parts >= 0).all()
    return {"rank": rank, "logical_count": parts.tolist(), "average_utilization_rate_over_window": 0.8}


def per_pass_dump(counts: np.ndarray, phys2log: np.ndarray, passes: int, rng: np.random.Generator, rank: int = 0) -> dict:
    """Spread logical ``counts[L, E]`` over the physical replicas of ``phys2log[L, P]`` and
    over ``passes`` forward-pass records."""
    layers, physical = phys2log.shape
    phys = np.zeros((layers, physical), dtype=np.int64)
    for layer in range(layers):
        for expert in range(counts.shape[1]):
            slots = np.flatnonzero(phys2log[layer] == expert)
            share = rng.multinomial(counts[layer, expert], np.ones(len(slots)) / len(slots))
            phys[layer, slots] = share
    records = []
    remaining = phys.copy()
    for _ in range(passes - 1):
        take = rng.integers(0, remaining // passes + 1)
        records.append({"global_physical_count": take.tolist()})
        remaining -= take
    records.append({"global_physical_count": remaining.tolist()})
    return {"rank": rank, "records": records, "last_physical_to_logical_map": phys2log.tolist()}


def write_json(directory: Path, ts_ms: int, obj: dict, rank: int | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    suffix = f"_{rank}" if rank is not None else ""
    path = directory / f"expert_distribution_recorder_{ts_ms}{suffix}.json"
    path.write_text(json.dumps(obj))
    return path
