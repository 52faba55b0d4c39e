"""The 5-minute rollup gpu_samples_5m (migration 0004), filled by its materialized view on insert
into gpu_samples: hourly averages equal the raw table's, before and after merges; nulls and
deduplicated re-sends are handled as the raw table handles them."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

START_MS = int(datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp() * 1000)
GPUS = [("node-a", "GPU-a0", "NVIDIA H100 80GB HBM3"), ("node-a", "GPU-a1", "NVIDIA H100 80GB HBM3"),
        ("node-b", "GPU-b0", "NVIDIA H200"), ("node-c", "GPU-c0", "NVIDIA H100 80GB HBM3")]


def _samples(rng: np.random.Generator, first_s: int, last_s: int, batch: int = 0) -> pa.Table:
    """Samples of every GPU at irregular times (about every 9 s) with some null readings; the
    millisecond is ``batch`` mod 3, so batches never repeat a (GPU, ts) that FINAL would collapse."""
    rows = []
    for node, uuid, model in GPUS:
        t = np.unique(rng.integers(first_s * 333, last_s * 333, size=(last_s - first_s) // 9)) * 3 + batch
        for ts in t:
            util = float(rng.uniform(0, 100))
            rows.append({
                "ts": datetime.fromtimestamp((START_MS + int(ts)) / 1000, UTC), "cluster": "c1", "node": node,
                "gpu_uuid": uuid, "gpu_index": 0, "gpu_model": model, "mig_profile": "", "mig_instance": "",
                "sm_util_pct": None if rng.random() < 0.1 else util,
                "power_w": None if rng.random() < 0.05 else 80 + util * 5.2 + float(rng.normal(0, 3)),
                "temperature_c": 30 + util * 0.5, "source": "nvml",
            })
    return pa.Table.from_pylist(rows)


RAW_HOURLY = """
SELECT toStartOfHour(ts) AS hour, gpu_model, node,
       avg(sm_util_pct) AS util, avg(power_w) AS power, avg(temperature_c) AS temp, count() AS n
FROM gpu_samples FINAL
GROUP BY hour, gpu_model, node ORDER BY hour, gpu_model, node"""

ROLLUP_HOURLY = """
SELECT toStartOfHour(window_start) AS hour, gpu_model, node,
       sum(sm_util_pct_sum) / nullIf(sum(sm_util_pct_samples), 0) AS util,
       sum(power_w_sum) / nullIf(sum(power_w_samples), 0) AS power,
       sum(temperature_c_sum) / nullIf(sum(temperature_c_samples), 0) AS temp, sum(samples) AS n
FROM gpu_samples_5m
GROUP BY hour, gpu_model, node ORDER BY hour, gpu_model, node"""


def _assert_same_hourly(store) -> list[tuple]:
    raw, rollup = store.query_rows(RAW_HOURLY), store.query_rows(ROLLUP_HOURLY)
    assert [r[:3] for r in rollup] == [r[:3] for r in raw]
    for r, u in zip(raw, rollup, strict=True):
        assert u[6] == r[6], (r, u)
        for i in (3, 4, 5):
            if r[i] is None or u[i] is None:  # no reading at all in the hour: NULL in both
                assert r[i] is None and u[i] is None, (i, r, u)
                continue
            assert abs(u[i] - r[i]) <= 1e-9 * max(1.0, abs(r[i])), (i, r, u)
    return raw


def test_rollup_hourly_averages_equal_the_raw_table_before_and_after_merges(store):
    rng = np.random.default_rng(11)
    # three inserts whose time ranges overlap: the same 5-minute windows land in several parts
    for batch, (first_s, last_s) in enumerate(((0, 4000), (3000, 7200), (100, 7000))):
        store.insert("gpu_samples", _samples(rng, first_s, last_s, batch))
    raw = _assert_same_hourly(store)
    assert len(raw) == 2 * 3 and sum(r[6] for r in raw) == store.count("gpu_samples")
    unmerged = store.count("gpu_samples_5m")
    store.command("OPTIMIZE TABLE gpu_samples_5m FINAL")
    merged = store.count("gpu_samples_5m")
    assert merged < unmerged  # summing merges really collapsed rows ...
    assert merged == 3 * 24  # ... to one per (node, model, 5-minute window)
    _assert_same_hourly(store)  # ... and the averages did not move


def test_null_readings_count_as_the_raw_avg_counts_them(store):
    t = pa.array([START_MS, START_MS + 1000, START_MS + 2000], pa.timestamp("ms", tz="UTC"))
    store.insert("gpu_samples", pa.table({
        "ts": t, "cluster": ["c1"] * 3, "node": ["n"] * 3, "gpu_uuid": ["g"] * 3, "gpu_index": [0] * 3,
        "gpu_model": ["m"] * 3, "mig_profile": [""] * 3, "mig_instance": [""] * 3,
        "sm_util_pct": [None, 40.0, 60.0], "power_w": [None, None, None], "source": ["nvml"] * 3,
    }))
    row = store.query_rows("SELECT samples, sm_util_pct_sum, sm_util_pct_samples, power_w_sum, power_w_samples "
                           "FROM gpu_samples_5m")
    assert row == [(3, 100.0, 2, 0.0, 0)]
    _assert_same_hourly(store)


def test_a_deduplicated_resend_is_not_rolled_up_twice(store):
    data = _samples(np.random.default_rng(3), 0, 900)
    store.insert("gpu_samples", data, dedup_token="segment-1")
    store.insert("gpu_samples", data, dedup_token="segment-1")  # at-least-once shipping sends it again
    assert store.query_rows("SELECT sum(samples) FROM gpu_samples_5m") == [(data.num_rows,)]
    _assert_same_hourly(store)


def test_distinct_segments_with_identical_rollup_rows_are_both_kept(store):
    # other GPUs of the same node and model, same readings: different raw rows, the very same
    # rollup block; the rollup's deduplication must not take the second segment for a re-send
    first = _samples(np.random.default_rng(5), 0, 600)
    second = first.set_column(first.schema.get_field_index("gpu_uuid"), "gpu_uuid",
                              pa.array([u + "-twin" for u in first.column("gpu_uuid").to_pylist()]))
    store.insert("gpu_samples", first, dedup_token="segment-1")
    store.insert("gpu_samples", second, dedup_token="segment-2")
    assert store.query_rows("SELECT sum(samples) FROM gpu_samples_5m") == [(2 * first.num_rows,)]
    _assert_same_hourly(store)
