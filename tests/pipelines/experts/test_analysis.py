"""Balance, hot experts, drift and imbalance tax on loads with planted hot experts."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from pipelines.experts.analysis import expert_hotness_frame, layer_stats, window_costs

T0 = dt.datetime(2026, 11, 29, 0, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


def planted_loads(rng, instances, windows, layers, experts, k):
    """Loads with k planted hot experts (distinct loads, hottest first) per instance/window/layer."""
    frames, planted, counts = [], {}, {}
    for inst in instances:
        for w in range(windows):
            c = rng.poisson(50, size=(layers, experts)).astype(np.int64)
            for layer in range(layers):
                hot = rng.choice(experts, size=k, replace=False)
                c[layer, hot] += 5000 * np.arange(k, 0, -1)
                planted[(inst, w, layer)] = hot.tolist()
            counts[(inst, w)] = c
            frames.append(pl.DataFrame({
                "window_start": [T0 + w * HOUR] * (layers * experts),
                "window_end": [T0 + (w + 1) * HOUR] * (layers * experts),
                "cluster": "c1", "engine_instance": inst, "model": "deepseek-v3",
                "layer": np.repeat(np.arange(layers, dtype=np.uint16), experts),
                "expert": np.tile(np.arange(experts, dtype=np.uint32), layers),
                "tokens": c.ravel().astype(np.uint64),
            }))
    loads = pl.concat(frames).with_columns(pl.col("window_start", "window_end").dt.cast_time_unit("ms"))
    return loads, planted, counts


def test_planted_hot_experts_balance_and_drift_are_found():
    rng = np.random.default_rng(42)
    instances, windows, layers, experts, k = ["sglang-a-0", "sglang-a-1"], 3, 4, 32, 3
    loads, planted, counts = planted_loads(rng, instances, windows, layers, experts, k)
    out = expert_hotness_frame(loads, top_k=k)
    assert out.height == len(instances) * windows * layers
    for row in out.iter_rows(named=True):
        w = int((row["window_start"] - T0) / HOUR)
        key = (row["engine_instance"], w, row["layer"])
        assert row["hot_experts"] == planted[key]  # hottest first
        c = counts[(row["engine_instance"], w)][row["layer"]]
        assert row["total_tokens"] == c.sum()
        assert row["balancedness"] == pytest.approx(c.mean() / c.max())
        assert row["max_vio"] == pytest.approx(c.max() / c.mean() - 1)
        assert row["hot_shares"] == pytest.approx((c[planted[key]] / c.sum()).tolist())
        if w == 0:
            assert row["hot_drift"] == 0.0
        else:
            a, b = set(planted[key]), set(planted[(row["engine_instance"], w - 1, row["layer"])])
            assert row["hot_drift"] == pytest.approx(1 - len(a & b) / len(a | b))
        assert row["imbalance_tax_usd"] == 0.0  # no costs given


def test_sparse_push_averages_over_all_experts_and_empty_layers_are_balanced():
    ws, we = T0, T0 + HOUR
    loads = pl.DataFrame({
        "window_start": [ws] * 4, "window_end": [we] * 4, "cluster": "c", "engine_instance": "x-0", "model": "m",
        "layer": [0, 0, 1, 1], "expert": [7, 2, 0, 1], "tokens": [300, 100, 0, 0],
    }).with_columns(pl.col("window_start", "window_end").dt.cast_time_unit("ms"))
    stats = layer_stats(loads, top_k=4).sort("layer")
    # the model has 8 experts (ids 0..7): mean of layer 0 = 400 / 8
    assert stats["balancedness"][0] == pytest.approx(50 / 300)
    assert stats["max_vio"][0] == pytest.approx(300 / 50 - 1)
    assert stats["hot_experts"][0].to_list() == [7, 2]
    assert stats["hot_experts"][1].to_list() == [] and stats["balancedness"][1] == 1.0 and stats["max_vio"][1] == 0.0


def test_previous_windows_from_an_earlier_run_feed_the_drift():
    rng = np.random.default_rng(1)
    loads, planted, _ = planted_loads(rng, ["i-0"], 1, 2, 16, 2)
    previous = pl.DataFrame({"model": ["deepseek-v3"] * 2, "engine_instance": ["i-0"] * 2, "cluster": ["c1"] * 2,
                             "layer": pl.Series([0, 1], dtype=pl.UInt16),
                             "prev_hot": [planted[("i-0", 0, 0)], [99, 98]]})
    out = expert_hotness_frame(loads, previous=previous, top_k=2).sort("layer")
    assert out["hot_drift"].to_list() == [0.0, 1.0]


def test_imbalance_tax_prorates_hourly_instance_cost_over_the_window_and_layers():
    # a 90-minute window from 00:30 to 02:00 overlaps hour 0 by 30 min and hour 1 fully
    ws, we = T0 + HOUR / 2, T0 + 2 * HOUR
    loads = pl.DataFrame({
        "window_start": [ws] * 4, "window_end": [we] * 4, "cluster": "c", "engine_instance": "x-0", "model": "m",
        "layer": [0, 0, 1, 1], "expert": [0, 1, 0, 1], "tokens": [300, 100, 200, 200],
    }).with_columns(pl.col("window_start", "window_end").dt.cast_time_unit("ms"))
    costs = pl.DataFrame({
        "cluster": ["c", "c", "c", "c"], "engine_instance": ["x-0", "x-0", "x-0", "other"],
        "hour": [T0, T0 + HOUR, T0 + 2 * HOUR, T0 + HOUR], "cost_usd": [10.0, 40.0, 1000.0, 500.0],
    }).with_columns(pl.col("hour").dt.cast_time_unit("ms"))
    wc = window_costs(loads, costs)
    assert wc["window_cost_usd"].to_list() == [pytest.approx(10.0 / 2 + 40.0)]
    out = expert_hotness_frame(loads, costs, top_k=2).sort("layer")
    # layer 0: balancedness 200/300; layer 1 perfectly balanced; cost shared over 2 layers
    assert out["imbalance_tax_usd"].to_list() == [pytest.approx(45.0 / 2 * (1 - 2 / 3)), 0.0]


def test_rows_of_one_expert_from_two_sources_are_summed():
    ws, we = T0, T0 + HOUR
    loads = pl.DataFrame({
        "window_start": [ws] * 4, "window_end": [we] * 4, "cluster": "c", "engine_instance": "x-0", "model": "m",
        "layer": [0, 0, 0, 0], "expert": [0, 1, 1, 2], "tokens": [50, 40, 40, 60],
    }).with_columns(pl.col("window_start", "window_end").dt.cast_time_unit("ms"))
    stats = layer_stats(loads, top_k=2)
    assert stats["hot_experts"][0].to_list() == [1, 2]  # 80 tokens for expert 1 once summed
    assert stats["total_tokens"][0] == 190
    assert stats["hot_shares"][0].to_list() == pytest.approx([80 / 190, 60 / 190])
    # ties go to the lower expert id
    tie = loads.with_columns(tokens=pl.lit(10, dtype=pl.UInt64))
    assert layer_stats(tie, top_k=2, unique_experts=True)["hot_experts"][0].to_list() == [0, 1]
