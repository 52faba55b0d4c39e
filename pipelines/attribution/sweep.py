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

from pipelines.attribution.steps import Step, compact, sorted_unique

MAX_W_BITS = 52
MAX_SCALE = float(2**30)


def quantise(weights: np.ndarray) -> np.ndarray:
    """Integer weights preserving ratios; their sum is < 2**52 so int64 prefix sums are exact."""
    if weights.size == 0:
        return np.zeros(0, dtype=np.int64)
    total = float(np.sum(weights))
    scale = MAX_SCALE if total <= 0 else min(MAX_SCALE, 2.0 ** np.floor(np.log2(2.0**MAX_W_BITS / (total * 1.01))))
    return np.maximum(1, np.rint(weights * scale)).astype(np.int64)


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
    pts = sorted_unique(np.concatenate(parts))
    left = pts[:-1]
    dt = np.diff(pts) / 1e6
    order_a = np.argsort(a, kind="stable")
    order_b = np.argsort(b, kind="stable")
    sa, sb = a[order_a], b[order_b]
    cw_a = np.concatenate([[0], np.cumsum(w[order_a])])
    cw_b = np.concatenate([[0], np.cumsum(w[order_b])])
    n_started = np.searchsorted(sa, left, side="right")
    n_ended = np.searchsorted(sb, left, side="right")
    busy = n_started > n_ended  # integer count of active phases > 0
    total_w = cw_a[n_started] - cw_b[n_ended]  # exact int64
    busy_dt = np.where(busy, dt, 0.0)
    share_dt = busy_dt / np.maximum(total_w, 1)  # seconds per weight unit, 0 when idle
    ia = np.empty(a.size, dtype=np.int64)  # sorted keys search much faster than scattered ones
    ia[order_a] = np.searchsorted(pts, sa)
    ib = np.empty(b.size, dtype=np.int64)
    ib[order_b] = np.searchsorted(pts, sb)
    wf = w.astype(np.float64)
    charges = np.zeros((a.size, len(channels)))
    busy_integrals = np.zeros(len(channels))
    F = np.zeros(left.size + 1)
    for k, c in enumerate(channels):  # a handful of channels, each one vectorised pass
        if c.times.size == 0:
            continue
        rate = c.at(left)
        np.cumsum(rate * share_dt, out=F[1:])
        charges[:, k] = wf * (F[ib] - F[ia])
        busy_integrals[k] = float(np.dot(rate, busy_dt))
    busy_step = compact(np.concatenate([left, [we]]), np.concatenate([busy.astype(np.float64), [0.0]]))
    return SweepResult(charges=charges, busy=busy_step, busy_integrals=busy_integrals)
