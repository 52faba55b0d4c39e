"""Piecewise-constant functions of time (rates, memberships, busy flags) on integer microseconds.

A ``Step`` holds ``values[i]`` on ``[times[i], times[i+1])``; before ``times[0]`` it is 0 and the
last value holds to +inf (close a function with a trailing 0). Every rate the attribution
integrates (GPU $/s, energy W, $ of energy per s, GPU membership of an instance, busy flags) is
such a function, so sums, products and integrals are a few ``np.searchsorted`` calls, never a
loop over seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

US = 1_000_000  # microseconds per second


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """Sorted distinct int64 values (sort-based; numpy's hash-based ``unique`` is slower here)."""
    x = np.sort(np.asarray(values, dtype=np.int64))
    if x.size == 0:
        return x
    keep = np.empty(x.size, dtype=bool)
    keep[0] = True
    np.not_equal(x[1:], x[:-1], out=keep[1:])
    return x[keep]


@dataclass(frozen=True)
class Step:
    times: np.ndarray  # int64 µs, strictly increasing
    values: np.ndarray  # float64, same length

    @staticmethod
    def zero() -> Step:
        return Step(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))

    @staticmethod
    def box(start: int, end: int, value: float) -> Step:
        """``value`` on [start, end), 0 elsewhere."""
        if end <= start:
            return Step.zero()
        return Step(np.array([start, end], dtype=np.int64), np.array([value, 0.0]))

    def at(self, points: np.ndarray) -> np.ndarray:
        """Values at ``points`` (right-continuous)."""
        if self.times.size == 0:
            return np.zeros(len(points), dtype=np.float64)
        idx = np.searchsorted(self.times, points, side="right") - 1
        out = self.values[np.clip(idx, 0, None)]
        return np.where(idx >= 0, out, 0.0)

    def integral(self, start: int, end: int) -> float:
        """∫ over [start, end) in value·seconds."""
        pts = sorted_unique(np.concatenate([[start, end], self.times[(self.times > start) & (self.times < end)]]))
        return float(np.sum(self.at(pts[:-1]) * (np.diff(pts) / US)))


def _union(steps: Iterable[Step], extra: Iterable[np.ndarray] = ()) -> np.ndarray:
    arrays = [s.times for s in steps] + list(extra)
    if not arrays:
        return np.zeros(0, dtype=np.int64)
    return sorted_unique(np.concatenate(arrays))


def compact(times: np.ndarray, values: np.ndarray) -> Step:
    """Drop breakpoints where the value does not change."""
    if times.size == 0:
        return Step.zero()
    keep = np.ones(times.size, dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    keep[0] = True
    return Step(times[keep], values[keep])


def step_sum(steps: list[Step]) -> Step:
    steps = [s for s in steps if s.times.size]
    if not steps:
        return Step.zero()
    if len(steps) == 1:
        return steps[0]
    first = steps[0].times
    same_grid = all(s.times is first or np.array_equal(s.times, first) for s in steps[1:])
    times = first if same_grid else _union(steps)  # GPUs sampled together share one grid
    total = np.zeros(times.size, dtype=np.float64)
    for s in steps:
        total += s.values if same_grid else s.at(times)
    return Step(times, total)


def step_product(a: Step, b: Step) -> Step:
    if a.times.size == 0 or b.times.size == 0:
        return Step.zero()
    times = _union([a, b])
    return Step(times, a.at(times) * b.at(times))


def step_clip(a: Step, lo: float = 0.0, hi: float = 1.0) -> Step:
    return Step(a.times, np.clip(a.values, lo, hi))


def covers(step: Step, start: int, end: int) -> bool:
    """True when ``step`` is exactly 1 on all of [start, end) (a membership spanning the window)."""
    t, v = step.times, step.values
    if t.size == 0 or t[0] > start:
        return False
    i = int(np.searchsorted(t, start, side="right")) - 1
    j = int(np.searchsorted(t, end, side="left"))
    return bool(np.all(v[i:j] == 1.0))


def masked(member: Step, other: Step, start: int, end: int) -> Step:
    """``member * other`` where member is a 0/1 step; skips the product when member covers [start, end)."""
    return other if covers(member, start, end) else step_product(member, other)
