"""Property: on any workload, attributed + idle == total cost and energy (relative 1e-9)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.attribution import AttributionOptions, attribute_window
from tests.pipelines.builders import at, inputs, placement, reservation, samples, span

request = st.tuples(
    st.integers(0, 2),  # instance
    st.floats(-60, 140, allow_nan=False),  # start
    st.floats(0, 5),  # queue
    st.floats(0, 20),  # prefill
    st.floats(0, 60),  # decode
    st.integers(0, 50_000),  # prompt
    st.integers(0, 4000),  # completion
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    reqs=st.lists(request, min_size=0, max_size=40),
    rates=st.lists(st.floats(0.5, 100.0), min_size=6, max_size=6),
    change_at=st.floats(-10, 110),
    watts=st.lists(st.floats(50, 700), min_size=6, max_size=6),
    weighting=st.sampled_from(["tokens", "time"]),
    decode_weight=st.floats(0.1, 20.0),
)
def test_conservation_on_random_workloads(reqs, rates, change_at, watts, weighting, decode_weight):
    gpus = [f"g{i}" for i in range(6)]  # a: g0,g1 (TP=2); b: g2; c: g3..g4; g5 in no instance
    placements = [placement("a", gpus[0:2]), placement("b", gpus[2:3]), placement("c", gpus[3:5], start=30.0)]
    reservations = []
    for i, g in enumerate(gpus):  # each GPU's price changes once, at change_at
        reservations.append(reservation(f"r{i}a", [g], rates[i], end=change_at))
        reservations.append(reservation(f"r{i}b", [g], rates[(i + 1) % 6], start=change_at, owner="team-b"))
    rows = []
    for i, g in enumerate(gpus):
        rows += samples(g, [float(t) for t in range(-20, 130, 7 + i)], watts=watts[i])
    spans = [
        span("abc"[k], s, queue=q, prefill=p, decode=d, prompt=pt, cached=pt // 3, completion=c)
        for k, s, q, p, d, pt, c in reqs
    ]
    res = attribute_window(
        inputs(start=0, end=100, spans=spans, placements=placements, reservations=reservations, gpu_samples=rows),
        AttributionOptions(weighting=weighting, decode_weight=decode_weight, partitions=2), run_version=1,
    )
    t = res.totals
    assert t.ok
    assert t.attributed_cost_usd + t.idle_cost_usd == pytest.approx(t.total_cost_usd, rel=1e-9, abs=1e-12)
    assert t.attributed_energy_j + t.idle_energy_j == pytest.approx(t.total_energy_j, rel=1e-9, abs=1e-9)
    assert res.request_costs["cost_usd"].min() is None or res.request_costs["cost_usd"].min() >= -1e-12
    # the total is what the reservations say, independently of any request: rate x overlap with [0, 100)
    ws, we = at(0), at(100)
    expected = sum(
        r["usd_per_gpu_hour"] / 3600 * max(0.0, (min(we, r["valid_to"]) - max(ws, r["valid_from"])).total_seconds())
        for r in reservations
    )
    assert t.total_cost_usd == pytest.approx(expected, rel=1e-9)
