"""Hand-computed attribution cases (DESIGN.md §4). Each test writes its arithmetic down.

Prices: $36/GPU-hour = $0.01/GPU-second, so dollars are easy to check by hand.
"""

from __future__ import annotations

import polars as pl
import pytest

from pipelines.attribution import AttributionOptions, ConservationError, attribute_window
from tests.pipelines.builders import inputs, placement, price, reservation, samples, span

TIME = AttributionOptions(weighting="time")


def by_request(result) -> dict[str, dict]:
    return {r["request_id"]: r for r in result.request_costs.iter_rows(named=True)}


def idle_by_gpu(result) -> dict[str, dict]:
    df = result.idle_costs_hourly.group_by("gpu_uuid", "reservation_id", "owner_team").agg(
        pl.col("reserved_seconds", "busy_seconds", "idle_seconds", "idle_cost_usd", "idle_energy_j").sum())
    return {r["gpu_uuid"]: r for r in df.iter_rows(named=True)}


def test_two_overlapping_requests_on_one_gpu_share_the_overlap():
    # R1 busy [10,50) (prefill 10-20, decode 20-50), R2 busy [30,70) (prefill 30-40, decode 40-70).
    # [10,30) R1 alone: 20 s * $0.01 = 0.20; [30,50) shared: 0.20/2 each; [50,70) R2 alone: 0.20.
    # R1 = 0.30 $, 30 GPU-s (prefill 10, decode 10 + 20/2 = 20); R2 the mirror. Idle [0,10)+[70,100) = 40 s.
    res = attribute_window(inputs(
        start=0, end=100,
        spans=[span("a", 10, prefill=10, decode=30, request_id="r1"), span("a", 30, prefill=10, decode=30, request_id="r2")],
        placements=[placement("a", ["g1"])], reservations=[reservation("res1", ["g1"], 36.0)],
    ), TIME, run_version=1)
    r = by_request(res)
    assert r["r1"]["cost_usd"] == pytest.approx(0.30, rel=1e-12)
    assert r["r2"]["cost_usd"] == pytest.approx(0.30, rel=1e-12)
    assert r["r1"]["prefill_gpu_seconds"] == pytest.approx(10.0)
    assert r["r1"]["decode_gpu_seconds"] == pytest.approx(20.0)
    assert r["r2"]["prefill_gpu_seconds"] == pytest.approx(5.0)  # [30,40) shared with R1's decode
    assert r["r2"]["decode_gpu_seconds"] == pytest.approx(25.0)  # [40,50) shared + [50,70) alone
    idle = idle_by_gpu(res)["g1"]
    assert idle["idle_seconds"] == pytest.approx(40.0)
    assert idle["busy_seconds"] == pytest.approx(60.0)
    assert idle["idle_cost_usd"] == pytest.approx(0.40)
    assert res.totals.total_cost_usd == pytest.approx(1.0)
    assert res.run["conservation_ok"][0] is True


def test_tp2_instance_charges_both_gpus_and_idles_each_gpu():
    # TP=2 on g1 ($0.01/s) and g2 ($0.02/s); one request busy [0,50) of a 100 s window.
    # cost = 50 * 0.03 = 1.50 $, gpu_seconds = 50 * 2 = 100; idle g1 50 s 0.50 $, g2 50 s 1.00 $.
    res = attribute_window(inputs(
        start=0, end=100, spans=[span("tp", 0, prefill=10, decode=40, request_id="r")],
        placements=[placement("tp", ["g1", "g2"])],
        reservations=[reservation("res1", ["g1"], 36.0), reservation("res2", ["g2"], 72.0)],
    ), TIME, run_version=1)
    r = by_request(res)["r"]
    assert r["cost_usd"] == pytest.approx(1.5)
    assert r["gpu_seconds"] == pytest.approx(100.0)
    idle = idle_by_gpu(res)
    assert idle["g1"]["idle_cost_usd"] == pytest.approx(0.5)
    assert idle["g2"]["idle_cost_usd"] == pytest.approx(1.0)
    assert idle["g2"]["reservation_id"] == "res2"


@pytest.mark.parametrize("via_catalog", [False, True])
def test_price_change_in_the_middle_of_a_request(via_catalog):
    # g1 costs $36/h until t=50, then $72/h. Request busy [20,80): 30 s * 0.01 + 30 s * 0.02 = 0.90 $.
    # Idle: [0,20) at 0.01 = 0.20 $ ; [80,100) at 0.02 = 0.40 $.
    if via_catalog:  # reservation without its own rate: the catalog's on_demand price applies
        reservations = [reservation("od", ["g1"], 0.0, pricing_model="on_demand")]
        prices = [price("p-old", "gpu", 36.0, end=50, pricing_model="on_demand", gpu_model="NVIDIA H100 80GB HBM3"),
                  price("p-new", "gpu", 72.0, start=50, pricing_model="on_demand", gpu_model="NVIDIA H100 80GB HBM3")]
    else:
        reservations = [reservation("old", ["g1"], 36.0, end=50), reservation("new", ["g1"], 72.0, start=50)]
        prices = []
    res = attribute_window(inputs(
        start=0, end=100, spans=[span("a", 20, prefill=10, decode=50, request_id="r")],
        placements=[placement("a", ["g1"])], reservations=reservations, prices=prices,
    ), TIME, run_version=1)
    assert by_request(res)["r"]["cost_usd"] == pytest.approx(0.90, rel=1e-12)
    assert res.idle_costs_hourly["idle_cost_usd"].sum() == pytest.approx(0.60)
    if not via_catalog:
        per_res = dict(res.idle_costs_hourly.select("reservation_id", "idle_cost_usd").iter_rows())
        assert per_res == pytest.approx({"old": 0.20, "new": 0.40})


def test_idle_gaps_between_requests_and_a_reserved_gpu_in_no_instance():
    # Requests busy [10,20) and [60,70) on g1: busy 20 s, idle 80 s (0.80 $) to team-a.
    # g3 is reserved by team-b but runs no engine: 100 s idle, 1.00 $.
    res = attribute_window(inputs(
        start=0, end=100,
        spans=[span("a", 10, prefill=5, decode=5, request_id="r1"), span("a", 60, prefill=5, decode=5, request_id="r2")],
        placements=[placement("a", ["g1"])],
        reservations=[reservation("res1", ["g1"], 36.0), reservation("spare", ["g3"], 36.0, owner="team-b")],
    ), TIME, run_version=1)
    idle = idle_by_gpu(res)
    assert idle["g1"]["idle_seconds"] == pytest.approx(80.0)
    assert idle["g1"]["busy_seconds"] == pytest.approx(20.0)
    assert idle["g3"]["idle_seconds"] == pytest.approx(100.0)
    assert idle["g3"]["idle_cost_usd"] == pytest.approx(1.0)
    assert idle["g3"]["owner_team"] == "team-b"
    assert res.totals.attributed_cost_usd == pytest.approx(0.20)
    assert res.totals.total_cost_usd == pytest.approx(2.0)


@pytest.mark.parametrize("decode_weight", [1.0, 10.0])
def test_prefill_and_decode_token_weights(decode_weight):
    # R1: prefill [0,10) 1000 tokens -> 100 tok/s; decode [10,50) 40 tokens -> 1 * dw tok/s.
    # R2: prefill [0,10) 100 tokens -> 10 tok/s;   decode [10,50) 400 tokens -> 10 * dw tok/s.
    # [0,10) costs 0.10 $: R1 100/110, R2 10/110.  [10,50) costs 0.40 $: R1 1/11, R2 10/11 (any dw).
    res = attribute_window(inputs(
        start=0, end=100,
        spans=[span("a", 0, prefill=10, decode=40, prompt=1000, completion=40, request_id="r1"),
               span("a", 0, prefill=10, decode=40, prompt=100, completion=400, request_id="r2")],
        placements=[placement("a", ["g1"])], reservations=[reservation("res1", ["g1"], 36.0)],
    ), AttributionOptions(weighting="tokens", decode_weight=decode_weight), run_version=1)
    r = by_request(res)
    assert r["r1"]["cost_usd"] == pytest.approx(0.1 * 100 / 110 + 0.4 / 11, rel=1e-9)
    assert r["r2"]["cost_usd"] == pytest.approx(0.1 * 10 / 110 + 0.4 * 10 / 11, rel=1e-9)
    assert r["r1"]["prefill_gpu_seconds"] == pytest.approx(10 * 100 / 110, rel=1e-9)


def test_mixed_prefill_decode_weights_depend_on_decode_weight():
    # R1 prefill [0,10) 1000 tokens (100 tok/s) overlaps R2 decode [0,10) 100 tokens (10 * dw tok/s).
    # dw=1: R1 gets 100/110 of 0.10 $; dw=10: 100/200.
    def r1_cost(dw):
        res = attribute_window(inputs(
            start=0, end=100,
            spans=[span("a", 0, prefill=10, decode=0, prompt=1000, completion=1, request_id="r1"),
                   span("a", 0, prefill=0.0, decode=10, prompt=1, completion=100, request_id="r2")],
            placements=[placement("a", ["g1"])], reservations=[reservation("res1", ["g1"], 36.0)],
        ), AttributionOptions(weighting="tokens", decode_weight=dw), run_version=1)
        return by_request(res)["r1"]["cost_usd"]

    assert r1_cost(1.0) == pytest.approx(0.1 * 100 / 110, rel=1e-6)
    assert r1_cost(10.0) == pytest.approx(0.1 * 100 / 200, rel=1e-6)


@pytest.mark.parametrize("counter", [True, False])
def test_energy_from_counter_or_power_samples(counter):
    # g1 draws 500 W, sampled every 10 s. Request busy [10,50) alone: 40 s * 500 W = 20 kJ; idle 60 s = 30 kJ.
    times = [float(t) for t in range(-10, 120, 10)]
    rows = samples("g1", times, watts=500.0) if counter else samples(
        "g1", times, energy_mj=[None] * len(times), power_w=[500.0] * len(times))
    res = attribute_window(inputs(
        start=0, end=100, spans=[span("a", 10, prefill=10, decode=30, request_id="r")],
        placements=[placement("a", ["g1"])], reservations=[reservation("res1", ["g1"], 36.0)], gpu_samples=rows,
        prices=[price("kwh", "energy", 0.36)],  # 0.36 $/kWh = 1e-7 $/J
    ), TIME, run_version=1)
    r = by_request(res)["r"]
    assert r["energy_j"] == pytest.approx(20_000.0)
    assert r["energy_cost_usd"] == pytest.approx(20_000.0 * 1e-7)
    assert r["energy_source"] == ("energy_counter" if counter else "power_samples")
    assert res.idle_costs_hourly["idle_energy_j"].sum() == pytest.approx(30_000.0)
    assert res.totals.total_energy_j == pytest.approx(50_000.0)


def test_request_crossing_windows_is_split_and_adds_up():
    spans = [span("a", 80, prefill=10, decode=40, request_id="long"), span("a", 95, prefill=2, decode=20, request_id="b")]
    kw = dict(spans=spans, placements=[placement("a", ["g1"])], reservations=[reservation("res1", ["g1"], 36.0)])
    whole = by_request(attribute_window(inputs(start=0, end=200, **kw), TIME, 1))
    first = by_request(attribute_window(inputs(start=0, end=100, **kw), TIME, 1))
    second = by_request(attribute_window(inputs(start=100, end=200, **kw), TIME, 1))
    for rid in ("long", "b"):
        assert first[rid]["cost_usd"] + second[rid]["cost_usd"] == pytest.approx(whole[rid]["cost_usd"], rel=1e-12)
    # [80,95) long alone 0.15; [95,117) shared 0.11 each; [117,130) long alone 0.13
    assert whole["long"]["cost_usd"] == pytest.approx(0.15 + 0.11 + 0.13)


def test_labels_from_span_trace_request_id_or_unlabelled():
    from tests.pipelines.builders import at
    trace = "ab" * 16
    res = attribute_window(inputs(
        start=0, end=100,
        spans=[span("a", 0, prefill=1, decode=1, workflow="chat", request_id="own"),
               span("a", 0, prefill=1, decode=1, trace_id=trace, request_id="via-trace"),
               span("a", 0, prefill=1, decode=1, request_id="summarize/acme/123"),
               span("a", 0, prefill=1, decode=1, request_id="chatcmpl-42")],
        trace_labels=[{"trace_id": trace, "span_id": "c1", "ts": at(0), "workflow": "rag", "tenant": "globex",
                       "route": "/v1/chat", "reasoning_mode": "on", "request_class": "batch", "received_at": at(1)}],
        placements=[placement("a", ["g1"])], reservations=[reservation("res1", ["g1"], 36.0)],
    ), TIME, run_version=1)
    r = by_request(res)
    assert r["own"]["workflow"] == "chat"
    assert (r["via-trace"]["workflow"], r["via-trace"]["tenant"], r["via-trace"]["request_class"]) == ("rag", "globex", "batch")
    assert (r["summarize/acme/123"]["workflow"], r["summarize/acme/123"]["tenant"]) == ("summarize", "acme")
    assert r["chatcmpl-42"]["workflow"] == "unlabelled"
    wf = set(res.workflow_costs_hourly["workflow"])
    assert wf == {"chat", "rag", "summarize", "unlabelled"}


def test_gpu_placed_in_two_instances_fails_conservation_loudly():
    with pytest.raises(ConservationError, match="nothing was written"):
        attribute_window(inputs(
            start=0, end=100,
            spans=[span("a", 0, prefill=10, decode=40), span("b", 0, prefill=10, decode=40)],
            placements=[placement("a", ["g1"]), placement("b", ["g1"])],
            reservations=[reservation("res1", ["g1"], 36.0)],
        ), TIME, run_version=1)


def test_workflow_hourly_sums_and_price_per_million_tokens():
    res = attribute_window(inputs(
        start=0, end=100,
        spans=[span("a", 0, prefill=10, decode=40, workflow="chat", prompt=600, completion=400),
               span("a", 50, prefill=10, decode=39, workflow="chat", prompt=600, completion=400)],
        placements=[placement("a", ["g1"])], reservations=[reservation("res1", ["g1"], 36.0)],
    ), TIME, run_version=7)
    row = res.workflow_costs_hourly.row(0, named=True)
    assert row["requests"] == 2 and row["prompt_tokens"] == 1200
    # busy [0,50) + [50,99) = 99 s * 0.01 $; a request ending at the window end (t=100) would not count
    assert row["cost_usd"] == pytest.approx(0.99)
    assert row["usd_per_1m_tokens"] == pytest.approx(0.99 * 1e6 / 2000)
    assert row["run_version"] == 7


def test_node_set_reservation_covers_the_gpus_seen_on_that_node_and_sample_order_does_not_matter():
    # reservation by node: g1 and g2 are on node-b (known from their samples, delivered out of order).
    # g1 runs request [0,50); 100 s window at $0.01/s per GPU: total 2.00 $, attributed 0.50 $, idle 1.50 $.
    rows = samples("g1", [float(t) for t in range(0, 120, 10)], watts=100.0, node="node-b") + samples(
        "g2", [float(t) for t in range(0, 120, 10)], watts=200.0, node="node-b")
    rows = rows[::-1]
    res = attribute_window(inputs(
        start=0, end=100, spans=[span("a", 0, prefill=10, decode=40, request_id="r")],
        placements=[placement("a", ["g1"], node="node-b")],
        reservations=[reservation("by-node", [], 36.0, nodes=["node-b"])], gpu_samples=rows,
    ), TIME, run_version=1)
    assert res.totals.total_cost_usd == pytest.approx(2.0)
    assert by_request(res)["r"]["cost_usd"] == pytest.approx(0.5)
    assert by_request(res)["r"]["energy_j"] == pytest.approx(50 * 100.0)
    idle = idle_by_gpu(res)
    assert idle["g2"]["idle_energy_j"] == pytest.approx(100 * 200.0)
    assert idle["g2"]["reservation_id"] == "by-node"
