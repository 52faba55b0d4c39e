"""The prefix-sum sweep of one engine instance (DESIGN.md §4), fully vectorised.

Boundary points are the union of the phase edges of the instance's requests, the breakpoints
of its rate functions and the hour edges, clipped to the window. Between two points everything
is constant: the integer count of active phases decides busy or idle, and the weight total
``W`` is an exact int64 prefix sum (weights are quantised to integers scaled so the instance's
total fits in 2**52), so W is never a drifting float. ``F(t) = ∫ rate / W`` is a cumulative
sum over busy segments, and a phase of weight ``w`` on ``[a, b)`` is charged ``w · (F(b) - F(a))``.
Cost: O(N log N) in phases and rate breakpoints, independent of concurrency.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.attribution.steps import Step, compact

MAX_W_BITS = 52
MAX_SCALE = float(2**30)


def quantise(weights: np.ndarray) -> np.ndarray:
    """Integer weights preserving ratios; their sum is < 2**52 so int64 prefix sums are exact."""
    if weights.size == 0:
        return np.zeros(0, dtype=np.int64)
    total = float(np.sum(weights))
    scale = MAX_SCALE if total <= 0 else min(MAX_SCALE, 2.0 ** np.floor(np.log2(2.0**MAX_W_BITS / (total * 1.01))))
    return np.maximum(1, np.rint(weights * scale)).astype(np.int64)


def _rank(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of ``events`` and, for each event, its index among them (one argsort)."""
    order = np.argsort(events)
    ordered = events[order]
    new = np.empty(ordered.size, dtype=bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    rank = np.empty(events.size, dtype=np.int64)
    rank[order] = np.cumsum(new) - 1
    return ordered[new], rank


@dataclass
class SweepResult:
    charges: np.ndarray  # (phases, channels) charged integrals
    busy: Step  # 1 where at least one phase is active, inside the window
    busy_integrals: np.ndarray  # (channels,) ∫ rate over busy segments (what the charges must add to)


def sweep(ws: int, we: int, starts: np.ndarray, ends: np.ndarray, weights: np.ndarray,
          channels: list[Step], extra_points: np.ndarray | None = None) -> SweepResult:
    """Share each channel's rate among the active phases in proportion to their weight.

    ``starts``/``ends``: phase edges (µs); ``weights``: float weight rates; ``channels``: rate
    steps (e.g. GPUs, $/s, W, $ of energy/s). Phases are clipped to [ws, we).
    """
    a = np.clip(starts, ws, we)
    b = np.clip(ends, ws, we)
    b = np.maximum(a, b)
    w = quantise(np.asarray(weights, dtype=np.float64))
    parts = [a, b, np.array([ws, we], dtype=np.int64)]
    parts += [c.times[(c.times > ws) & (c.times < we)] for c in channels]
    if extra_points is not None:
        parts.append(extra_points[(extra_points > ws) & (extra_points < we)])
    pts, rank = _rank(np.concatenate(parts))
    ia, ib = rank[:a.size], rank[a.size:2 * a.size]  # index of each phase edge in pts
    left = pts[:-1]
    dt = np.diff(pts) / 1e6
    # active count and exact weight total on [pts[j], pts[j+1]): edges at or before pts[j].
    # Quantised weights sum to < 2**53, so the float bincounts hold exact integers.
    n_pts = pts.size
    count = np.cumsum(np.bincount(ia, minlength=n_pts) - np.bincount(ib, minlength=n_pts))[:-1]
    busy = count > 0  # integer count of active phases > 0
    dw = np.bincount(ia, weights=w, minlength=n_pts).astype(np.int64)
    dw -= np.bincount(ib, weights=w, minlength=n_pts).astype(np.int64)
    total_w = np.cumsum(dw)[:-1]  # exact int64
    busy_dt = np.where(busy, dt, 0.0)
    share_dt = busy_dt / np.maximum(total_w, 1)  # seconds per weight unit, 0 when idle
    wf = w.astype(np.float64)
    charges = np.zeros((a.size, len(channels)))
    busy_integrals = np.zeros(len(channels))
    F = np.zeros(left.size + 1)
    for k, c in enumerate(channels):  # a handful of channels, each one vectorised pass
        if c.times.size == 0:
            continue
        inside = (c.times > ws) & (c.times < we)
        rate = c.at(left) if inside.any() else c.at(np.array([ws]))[0]  # constant in the window: a scalar
        np.cumsum(rate * share_dt, out=F[1:])
        charges[:, k] = wf * (F[ib] - F[ia])
        busy_integrals[k] = float(np.sum(rate * busy_dt))  # not np.dot: BLAS threads cost ms per call
    busy_step = compact(np.concatenate([left, [we]]), np.concatenate([busy.astype(np.float64), [0.0]]))
    return SweepResult(charges=charges, busy=busy_step, busy_integrals=busy_integrals)
