"""`run_expert_hotness` on the real embedded store: loads, costs and placements in, hotness out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

from pipelines.experts.step import run_expert_hotness
from schemas.tables import TABLES
from tests.schemas.rows import sample_table

T0 = dt.datetime(2026, 11, 29, 0, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
INST = "sglang-deepseek-v3-0"


def rows(table: str, n: int, **columns) -> pa.Table:
    """Sample rows of ``table`` with the given columns replaced (values broadcast when scalar)."""
    t = sample_table(TABLES[table], n)
    for name, value in columns.items():
        values = value if isinstance(value, list) else [value] * n
        t = t.set_column(t.schema.get_field_index(name), name, pa.array(values, type=t.schema.field(name).type))
    return t


def insert_loads(store, window: int, counts: np.ndarray, instance: str = INST) -> None:
    layers, experts = counts.shape
    n = layers * experts
    store.insert("expert_loads", rows(
        "expert_loads", n, window_start=T0 + window * HOUR, window_end=T0 + (window + 1) * HOUR, cluster="c1",
        engine_instance=instance, model="deepseek-v3", source="sglang_stat",
        layer=np.repeat(np.arange(layers), experts).tolist(), expert=np.tile(np.arange(experts), layers).tolist(),
        tokens=counts.ravel().tolist(),
    ))


def test_hotness_written_with_costs_from_the_tables_and_rerun_replaces(store):
    rng = np.random.default_rng(0)
    layers, experts, k = 3, 16, 2
    planted = {w: [rng.choice(experts, size=k, replace=False).tolist() for _ in range(layers)] for w in range(2)}
    counts = {}
    for w in range(2):
        c = rng.poisson(20, size=(layers, experts))
        for layer in range(layers):
            c[layer, planted[w][layer]] += [3000, 2000]
        counts[w] = c
        insert_loads(store, w, c)
    insert_loads(store, 1, rng.poisson(20, size=(layers, experts)), instance="sglang-other-0")  # other instance
    # placements: the instance owns two GPUs; an unrelated GPU is idle too
    store.insert("engine_placements", rows(
        "engine_placements", 2, cluster="c1", engine_instance=[INST, "sglang-other-0"],
        gpu_uuids=[["GPU-a", "GPU-b"], ["GPU-z"]], valid_from=T0 - 24 * HOUR, valid_to=dt.datetime(2100, 1, 1, tzinfo=dt.UTC),
    ))
    # the same placement emitted again by a collector restart must not double the idle cost
    store.insert("engine_placements", rows(
        "engine_placements", 1, cluster="c1", engine_instance=INST, gpu_uuids=[["GPU-a", "GPU-b"]],
        valid_from=T0 - 2 * HOUR, valid_to=dt.datetime(2100, 1, 1, tzinfo=dt.UTC),
    ))
    store.insert("request_costs", rows(
        "request_costs", 3, window_start=[T0 + HOUR] * 3, cluster="c1", engine_instance=[INST, INST, "sglang-other-0"],
        span_id=["s1", "s2", "s3"], cost_usd=[30.0, 10.0, 999.0], run_version=1,
    ))
    store.insert("idle_costs_hourly", rows(
        "idle_costs_hourly", 3, hour=[T0 + HOUR] * 3, cluster="c1", gpu_uuid=["GPU-a", "GPU-b", "GPU-z"],
        reservation_id=["r1", "r1", "r2"], idle_cost_usd=[4.0, 6.0, 500.0], run_version=1,
    ))

    # hour 0 first (drift has no previous window), then hour 1
    assert run_expert_hotness(store, T0, T0 + HOUR, run_version=1, top_k=k) == layers
    assert run_expert_hotness(store, T0 + HOUR, T0 + 2 * HOUR, run_version=2, top_k=k) == 2 * layers

    got = store.query_rows(
        "SELECT toUnixTimestamp(window_start), layer, hot_experts, balancedness, max_vio, hot_drift, imbalance_tax_usd, "
        "total_tokens, run_version FROM expert_hotness FINAL WHERE engine_instance = {i:String} ORDER BY window_start, layer",
        {"i": INST},
    )
    assert len(got) == 2 * layers
    for ts, layer, hot, bal, vio, drift, tax, total, version in got:
        w = int((ts - T0.timestamp()) // 3600)
        c = counts[w][layer]
        assert list(hot) == planted[w][layer]
        assert bal == pytest.approx(c.mean() / c.max())
        assert vio == pytest.approx(c.max() / c.mean() - 1)
        assert total == c.sum()
        if w == 0:
            assert (drift, tax, version) == (0.0, 0.0, 1)  # no cost rows for hour 0
        else:
            a, b = set(planted[1][layer]), set(planted[0][layer])
            assert drift == pytest.approx(1 - len(a & b) / len(a | b))
            # instance cost in hour 1 = 30 + 10 (requests) + 4 + 6 (idle GPUs) = 50, over 3 layers
            assert tax == pytest.approx(50.0 / layers * (1 - bal))
            assert version == 2

    # re-running hour 1 replaces its rows instead of adding to them
    assert run_expert_hotness(store, T0 + HOUR, T0 + 2 * HOUR, run_version=3, top_k=k) == 2 * layers
    assert store.count("expert_hotness", final=True) == 3 * layers
    assert store.query_rows("SELECT max(run_version) FROM expert_hotness FINAL WHERE window_start = {t:DateTime64(3, 'UTC')}",
                            {"t": T0 + HOUR})[0][0] == 3


def test_no_loads_writes_nothing(store):
    assert run_expert_hotness(store, T0, T0 + HOUR, run_version=1) == 0
    assert store.count("expert_hotness") == 0
