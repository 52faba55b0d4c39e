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
