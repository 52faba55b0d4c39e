"""The sweep core: exact integer weight totals, busy by count, window clipping."""

from __future__ import annotations

import numpy as np
import pytest

from pipelines.attribution.steps import Step
from pipelines.attribution.sweep import quantise, sweep

S = 1_000_000  # µs per second


def test_tiny_weight_alone_after_huge_ones_gets_the_whole_segment():
    # Phases: A [0,10) w=1e9, B [0,10) w=3e8, C [0,20) w=1e-3. [10,20): C alone must get all 10 s * $1/s.
    # A float running sum of weights leaves ~1e-7 of A and B behind, which would lose a noticeable share.
    res = sweep(0, 20 * S, np.array([0, 0, 0]), np.array([10 * S, 10 * S, 20 * S]),
                np.array([1e9, 3e8, 1e-3]), [Step(np.array([0]), np.array([1.0]))])
    c = res.charges[:, 0]
    assert c[2] == pytest.approx(10.0 + 10.0 * 1e-3 / (1.3e9 + 1e-3), rel=1e-9)
    assert c.sum() == pytest.approx(20.0, rel=1e-12)
    assert res.busy_integrals[0] == pytest.approx(20.0)


def test_zero_weight_sum_cannot_happen_and_idle_is_decided_by_count():
    res = sweep(0, 30 * S, np.array([5 * S, 20 * S]), np.array([10 * S, 25 * S]), np.array([1.0, 1.0]),
                [Step(np.array([0]), np.array([2.0]))])
    assert res.charges[:, 0] == pytest.approx([10.0, 10.0])
    # busy exactly on [5,10) and [20,25)
    assert res.busy.at(np.array([0, 5, 9, 10, 20, 24, 25]) * S).tolist() == [0, 1, 1, 0, 1, 1, 0]


def test_quantised_weights_keep_ratios_and_fit_int64_sums():
    w = np.array([1e-6, 1.0, 3.0, 1e12])
    q = quantise(w)
    assert q.dtype == np.int64 and q.sum() < 2**53
    assert q[2] / q[1] == pytest.approx(3.0, rel=1e-6)
    assert q.min() >= 1


def test_short_heavy_phase_inside_a_long_light_one_keeps_its_share():
    # Found by the conservation property test: L [0, 100 s) w=0.01 light, H [50 s, 50 s + 10 µs) w=4e8
    # heavy. F(b) - F(a) of two large running totals loses H's share in the last bits unless the
    # rounding error of the running sum is carried along.
    ten_us = 10
    res = sweep(0, 100 * S, np.array([0, 50 * S]), np.array([100 * S, 50 * S + ten_us]),
                np.array([0.01, 4e8]), [Step(np.array([0]), np.array([1.0]))])
    h, light = res.charges[1, 0], res.charges[0, 0]
    exact_h = 1e-5 * 4e8 / (4e8 + 0.01)
    assert h == pytest.approx(exact_h, rel=1e-12)
    assert light == pytest.approx(100.0 - exact_h, rel=1e-12)
    assert h + light == pytest.approx(100.0, rel=1e-15)
