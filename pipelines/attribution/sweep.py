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


def _rank_between(events: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """``_rank`` of integer events all in [lo, hi], by one plain sort of (event - lo, index) packed
    into one int64 (a plain sort is several times cheaper than an argsort); ``_rank`` when they do not fit."""
    bits = max(1, int(events.size - 1).bit_length())
    if events.dtype != np.int64 or events.size == 0 or hi < lo or int(hi - lo).bit_length() + bits > 62:
        return _rank(events)
    packed = events - lo
    packed <<= bits
    packed |= np.arange(events.size, dtype=np.int64)
    packed.sort()
    order = packed & ((1 << bits) - 1)
    packed >>= bits  # the sorted events, less lo
    new = np.empty(packed.size, dtype=bool)
    new[0] = True
    np.not_equal(packed[1:], packed[:-1], out=new[1:])
    rank = np.empty(events.size, dtype=np.int64)
    rank[order] = np.cumsum(new) - 1
    pts = packed[new]
    pts += lo
    return pts, rank


def _rounding_carry(F: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Running sum of the rounding errors of ``F = cumsum(x)`` (TwoSum per step), aligned with F.

    ``F[b] - F[a]`` alone loses a phase whose share is below F's last bits (a huge weight on a
    short segment after long light ones); ``(F[b] - F[a]) + (lo[b] - lo[a])`` keeps it, which is
    what keeps attributed + idle equal to the total at 1e-9 on such workloads.
    """
    s, a = F[1:], F[:-1]
    bv = s - a
    err = s - bv  # in place below: err = (a - (s - bv)) + (x - bv)
    np.subtract(a, err, out=err)
    np.subtract(x, bv, out=bv)
    err += bv
    lo = np.zeros(F.size)
    np.cumsum(err, out=lo[1:])
    return lo


def _inside(times: np.ndarray, ws: int, we: int) -> tuple[int, int]:
    """Index range of the breakpoints strictly inside (ws, we)."""
    lo = int(np.searchsorted(times, ws, side="right"))
    return lo, max(lo, int(np.searchsorted(times, we, side="left")))


def _rate_at_left(c: Step, lo: int, hi: int, ranks: np.ndarray, n_left: int) -> np.ndarray | float:
    """``c.at(left)`` without a search: the value in force at ws, carried forward from each of the
    channel's breakpoints ``c.times[lo:hi]`` (found at ``ranks`` among the sweep's points)."""
    if hi == lo:
        return float(c.values[lo - 1]) if lo else 0.0  # constant in the window: a scalar
    idx = np.full(n_left, -1, dtype=np.int64)
    idx[0] = lo - 1  # the breakpoint in force at ws (-1: none, the step is 0 there)
    idx[ranks] = np.arange(lo, hi)
    np.maximum.accumulate(idx, out=idx)
    return np.concatenate([[0.0], c.values])[idx + 1]


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
    return sweep_chain(ws, we, [starts, ends], [weights], channels, extra_points)


def sweep_chain(ws: int, we: int, edges: list[np.ndarray], weights: list[np.ndarray],
                channels: list[Step], extra_points: np.ndarray | None = None) -> SweepResult:
    """``sweep`` of requests made of consecutive phases, each shared edge ranked once.

    Phase j of request i is ``[edges[j][i], edges[j + 1][i])`` with weight ``weights[j][i]``
    (edges non-decreasing per request, as ``weights.phases`` makes them); charges come back
    phase-major (all phase-0 rows, then phase-1 rows, ...), exactly as ``sweep`` on the
    concatenated phases would return them.
    """
    edges = [np.asarray(x) for x in edges]
    k, n = len(weights), edges[0].size
    inside = [_inside(c.times, ws, we) for c in channels]  # each channel's breakpoints in (ws, we)
    extra = None if extra_points is None else extra_points[(extra_points > ws) & (extra_points < we)]
    tail = [np.array([ws, we], dtype=np.int64), *(c.times[lo:hi] for c, (lo, hi) in zip(channels, inside, strict=True))]
    if extra is not None:
        tail.append(extra)
    # every event in one array, written in place: the clipped phase edges (each edge at least the
    # one before it), the window edges, then the channels' (and extra) breakpoints inside the window
    events = np.empty((k + 1) * n + sum(x.size for x in tail), dtype=np.result_type(*edges, *tail))
    np.clip(edges[0], ws, we, out=events[:n])
    for j, x in enumerate(edges[1:], start=1):
        cur = events[j * n:(j + 1) * n]
        np.clip(x, ws, we, out=cur)
        np.maximum(events[(j - 1) * n:j * n], cur, out=cur)
    np.concatenate(tail, out=events[(k + 1) * n:])
    w = quantise(np.concatenate([np.asarray(x, dtype=np.float64) for x in weights]))
    wq = [w[j * n:(j + 1) * n] for j in range(k)]
    pts, rank = _rank_between(events, ws, we)
    r = [rank[j * n:(j + 1) * n] for j in range(k + 1)]  # index of each edge in pts
    left = pts[:-1]
    dt = np.diff(pts).astype(np.float64)
    dt /= 1e6
    # exact weight total on [pts[j], pts[j+1]): one bincount of every edge's weight change (an inner
    # edge ends phase j - 1 and starts phase j). The changes' absolute values add up to at most twice
    # the quantised total (< 2**53), so the float sums hold exact integers.
    n_pts = pts.size
    delta = np.empty((k + 1) * n)
    delta[:n] = wq[0]
    for j in range(1, k):
        np.subtract(wq[j], wq[j - 1], out=delta[j * n:(j + 1) * n])
    np.negative(wq[k - 1], out=delta[k * n:])
    total_w = np.cumsum(np.bincount(rank[:(k + 1) * n], weights=delta, minlength=n_pts).astype(np.int64))[:-1]
    # busy = at least one active phase; each active phase adds its quantised weight (>= 1) to the
    # exact integer total, so the count of active phases is > 0 exactly where total_w is
    busy = total_w > 0
    busy_dt = dt
    busy_dt[~busy] = 0.0
    share_dt = busy_dt / np.maximum(total_w, 1)  # seconds per weight unit, 0 when idle
    wf = w.astype(np.float64)
    charges = np.zeros((k * n, len(channels)))
    busy_integrals = np.zeros(len(channels))

    def shares(x: np.ndarray) -> np.ndarray:
        """Per phase: its weight times the integral of ``x`` (per weight unit) over the phase."""
        F = np.zeros(left.size + 1)
        np.cumsum(x, out=F[1:])
        F_lo = _rounding_carry(F, x)
        out = np.empty(k * n)
        for j in range(k):
            b_, a_ = r[j + 1], r[j]
            out[j * n:(j + 1) * n] = wf[j * n:(j + 1) * n] * ((F[b_] - F[a_]) + (F_lo[b_] - F_lo[a_]))
        return out

    unit = None  # shares of a rate of 1, shared by every channel constant in the window
    offset = (k + 1) * n + 2  # where the channels' breakpoints start among the ranked events
    for c_i, c in enumerate(channels):  # a handful of channels, each one vectorised pass
        lo, hi = inside[c_i]
        if c.times.size:
            rate = _rate_at_left(c, lo, hi, rank[offset:offset + hi - lo], left.size)
            if np.ndim(rate) == 0:
                unit = shares(share_dt) if unit is None else unit
                charges[:, c_i] = rate * unit
            else:
                charges[:, c_i] = shares(rate * share_dt)
            busy_integrals[c_i] = float(np.sum(rate * busy_dt))  # not np.dot: BLAS threads cost ms per call
        offset += hi - lo
    return SweepResult(charges=charges, busy=_busy_step(left, busy, we), busy_integrals=busy_integrals)


def _busy_step(left: np.ndarray, busy: np.ndarray, we: int) -> Step:
    """The 0/1 busy step on the segments starting at ``left``, closed with 0 at ``we`` (only where it changes)."""
    if left.size == 0:
        return compact(np.array([we], dtype=np.int64), np.array([0.0]))
    idx = np.flatnonzero(np.r_[True, busy[1:] != busy[:-1]])
    times, values = left[idx], busy[idx].astype(np.float64)
    if busy[-1]:
        times, values = np.r_[times, we], np.r_[values, 0.0]
    return Step(times, values)
