"""Idle time per GPU and hour, charged to the reservation that covers the GPU.

A GPU is busy while an instance owning it has at least one active request (the busy steps the
sweep returns); every other covered second is idle: the idle time of instances and all time of
GPUs that belong to no instance. Per GPU the step functions (price, reservation, energy,
busy) are evaluated on their union of breakpoints plus hour edges, then summed per
(hour, reservation) with ``np.bincount``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipelines.attribution.rates import GpuEnergy, GpuPrice
from pipelines.attribution.steps import US, Step, sorted_unique

HOUR_US = 3600 * US


def hour_edges(ws: int, we: int) -> np.ndarray:
    first = (ws // HOUR_US + 1) * HOUR_US
    return np.arange(first, we, HOUR_US, dtype=np.int64)


@dataclass
class GpuIdle:
    """Per (hour, reservation) sums of one GPU; arrays share one index."""

    hour_us: np.ndarray
    reservation: np.ndarray  # index into the cluster's reservation list, -1 = uncovered
    reserved_seconds: np.ndarray
    busy_seconds: np.ndarray
    idle_seconds: np.ndarray
    idle_energy_j: np.ndarray
    reserved_cost_usd: np.ndarray
    idle_cost_usd: np.ndarray
    idle_energy_cost_usd: np.ndarray
    total_energy_j: float
    total_energy_cost_usd: float


def gpu_idle(ws: int, we: int, price: GpuPrice | None, energy: GpuEnergy | None, busy: Step,
             energy_price: Step) -> GpuIdle:
    """Reserved, busy and idle seconds, $ and J of one GPU in [ws, we), per hour and reservation."""
    steps = [busy, energy_price]
    if price is not None:
        steps += [price.price, price.covered, price.reservation]
    if energy is not None:
        steps.append(energy.watts)
    parts = [np.array([ws, we], dtype=np.int64), hour_edges(ws, we)]
    parts += [s.times[(s.times > ws) & (s.times < we)] for s in steps]
    pts = sorted_unique(np.concatenate(parts))
    left, dt = pts[:-1], np.diff(pts) / 1e6
    zeros = np.zeros(left.size)
    rate = price.price.at(left) if price is not None else zeros
    cov = price.covered.at(left) if price is not None else zeros
    res = np.rint(price.reservation.at(left)).astype(np.int64) if price is not None else np.full(left.size, -1)
    res = np.where(cov > 0, res, -1)
    watts = energy.watts.at(left) if energy is not None else zeros
    busy_v = np.clip(busy.at(left), 0.0, 1.0)
    idle_v = 1.0 - busy_v
    usd_per_joule = energy_price.at(left)
    hour_index = (left // HOUR_US) - ws // HOUR_US
    n_res = int(res.max()) + 2 if res.size else 1
    key = hour_index * n_res + (res + 1)
    uniq = sorted_unique(key)
    inv = np.searchsorted(uniq, key)
    n = uniq.size
    hour_us = (uniq // n_res + ws // HOUR_US) * HOUR_US
    reservation = uniq % n_res - 1

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(inv, weights=values, minlength=n)

    energy_j = watts * dt
    return GpuIdle(
        hour_us=hour_us,
        reservation=reservation,
        reserved_seconds=total(cov * dt),
        busy_seconds=total(busy_v * dt),
        idle_seconds=total(cov * idle_v * dt),
        idle_energy_j=total(energy_j * idle_v),
        reserved_cost_usd=total(rate * dt),
        idle_cost_usd=total(rate * idle_v * dt),
        idle_energy_cost_usd=total(energy_j * idle_v * usd_per_joule),
        total_energy_j=float(energy_j.sum()),
        total_energy_cost_usd=float((energy_j * usd_per_joule).sum()),
    )
