"""The dump-folder watcher: windows, planted skew through to rows, rejects, retries, lifecycle."""

from __future__ import annotations

import os
import time

import numpy as np
import pyarrow as pa

from collectors.component import MemoryConsumer, TransientError
from collectors.experts.watcher import ExpertDumpWatcher
from collectors.telemetry import Telemetry
from tests.collectors.experts.dumpgen import per_pass_dump, plant, skewed_counts, stat_dump, write_json

T0 = 1_795_000_000_000  # ms
HOUR = 3_600_000


def _watcher(directory, consumer, telemetry, **kw):
    kw.setdefault("settle_s", 0.0)
    return ExpertDumpWatcher(directory, engine_instance="sglang-deepseek-v3-0", model="deepseek-v3", cluster="c1",
                             consumer=consumer, telemetry=telemetry, **kw)


def _counts_of(table: pa.Table, window_end_ms: int, layers: int, experts: int) -> np.ndarray:
    ends = table["window_end"].cast(pa.int64()).to_numpy()
    sel = ends == window_end_ms
    out = np.zeros((layers, experts), dtype=np.uint64)
    out[table["layer"].to_numpy()[sel], table["expert"].to_numpy()[sel]] = table["tokens"].to_numpy()[sel]
    return out


def test_stat_dumps_become_chained_windows_with_the_planted_hot_experts(tmp_path):
    rng = np.random.default_rng(3)
    layers, experts = 5, 24
    hots, counts = [], []
    for i in range(3):
        hot = plant(rng, layers, experts, k=2)
        c = skewed_counts(rng, layers, experts, hot)
        write_json(tmp_path, T0 + i * HOUR, stat_dump(c, 3, rng))
        hots.append(hot)
        counts.append(c)
    consumer, tel = MemoryConsumer(), Telemetry()
    w = _watcher(tmp_path, consumer, tel)
    assert w.poll_once() == 3 * layers * experts
    rows = consumer.table("expert_loads")
    assert rows.schema.field("tokens").type == pa.uint64()
    assert set(rows["source"].to_pylist()) == {"sglang_stat"}
    assert set(rows["cluster"].to_pylist()) == {"c1"}
    windows = sorted(set(zip(rows["window_start"].cast(pa.int64()).to_pylist(), rows["window_end"].cast(pa.int64()).to_pylist(), strict=True)))
    assert windows == [(T0 - HOUR, T0), (T0, T0 + HOUR), (T0 + HOUR, T0 + 2 * HOUR)]
    for i in range(3):
        got = _counts_of(rows, T0 + i * HOUR, layers, experts)
        np.testing.assert_array_equal(got, counts[i])
        top = [sorted(np.argsort(-row, kind="stable")[:2].tolist()) for row in got]
        assert top == [hots[i][layer] for layer in range(layers)]
    assert tel.value("expert_dumps_collected") == 3
    assert w.poll_once() == 0  # nothing new: nothing re-sent


def test_malformed_dumps_are_rejected_counted_and_collection_goes_on(tmp_path):
    rng = np.random.default_rng(4)
    good = stat_dump(skewed_counts(rng, 2, 8, {}), 2, rng)
    write_json(tmp_path, T0, good)
    write_json(tmp_path, T0 + HOUR, {"rank": "zero", "logical_count": good["logical_count"]})
    write_json(tmp_path, T0 + 2 * HOUR, {"rank": 0, "logical_count": [[[1, -1]]]})
    (tmp_path / f"expert_distribution_recorder_{T0 + 3 * HOUR}.json").write_text('{"rank": 0, "logical_cou')
    write_json(tmp_path, T0 + 4 * HOUR, {"rank": 0, "logical_count": [[1, 2]]})
    write_json(tmp_path, T0 + 5 * HOUR, good)
    (tmp_path / "notes.txt").write_text("not a dump")
    consumer, tel = MemoryConsumer(), Telemetry()
    w = _watcher(tmp_path, consumer, tel)
    assert w.poll_once() == 2 * 2 * 8
    assert tel.value("expert_dumps_rejected", reason="wrong_rank") == 1
    assert tel.value("expert_dumps_rejected", reason="negative_count") == 1
    assert tel.value("expert_dumps_rejected", reason="invalid_json") == 1
    assert tel.value("expert_dumps_rejected", reason="wrong_shape") == 1
    ends = set(consumer.table("expert_loads")["window_end"].cast(pa.int64()).to_pylist())
    assert ends == {T0, T0 + 5 * HOUR}
    # the good dump after the bad ones still gets the window since the previous dump file
    starts = set(consumer.table("expert_loads")["window_start"].cast(pa.int64()).to_pylist())
    assert T0 + 4 * HOUR in starts
    w.poll_once()
    assert tel.value("expert_dumps_rejected") == 4  # rejected once, never retried


def test_per_pass_rank_files_of_one_dump_are_summed(tmp_path):
    rng = np.random.default_rng(9)
    layers, experts = 3, 8
    phys2log = np.stack([np.concatenate([np.arange(experts), [0, 1]]) for _ in range(layers)])
    per_rank = [skewed_counts(rng, layers, experts, {0: [5]}) for _ in range(2)]
    write_json(tmp_path, T0, per_pass_dump(per_rank[0], phys2log, 2, rng, rank=0), rank=0)
    write_json(tmp_path, T0 + 40, per_pass_dump(per_rank[1], phys2log, 2, rng, rank=1), rank=1)
    consumer, tel = MemoryConsumer(), Telemetry()
    w = _watcher(tmp_path, consumer, tel)
    assert w.poll_once() == layers * experts
    rows = consumer.table("expert_loads")
    assert set(rows["source"].to_pylist()) == {"sglang_per_pass"}
    np.testing.assert_array_equal(_counts_of(rows, T0 + 40, layers, experts), per_rank[0] + per_rank[1])
    # a rank file of the same dump arriving after the window was sent is refused, not merged twice
    write_json(tmp_path, T0 + 80, per_pass_dump(per_rank[1], phys2log, 1, rng, rank=2), rank=2)
    assert w.poll_once() == 0
    assert tel.value("expert_dumps_rejected", reason="late_rank") == 1


def test_dump_still_being_written_waits_for_settle(tmp_path):
    rng = np.random.default_rng(2)
    path = write_json(tmp_path, T0, stat_dump(skewed_counts(rng, 2, 4, {}), 1, rng))
    consumer, tel = MemoryConsumer(), Telemetry()
    w = _watcher(tmp_path, consumer, tel, settle_s=30.0)
    assert w.poll_once() == 0
    old = time.time() - 60
    os.utime(path, (old, old))
    assert w.poll_once() == 8


def test_transient_consumer_error_keeps_the_dump_pending(tmp_path):
    rng = np.random.default_rng(6)
    write_json(tmp_path, T0, stat_dump(skewed_counts(rng, 2, 4, {}), 1, rng))

    class FlakyConsumer(MemoryConsumer):
        fail = True

        def consume(self, table, data):
            if self.fail:
                raise TransientError("spool disk full for now")
            super().consume(table, data)

    consumer, tel = FlakyConsumer(), Telemetry()
    w = _watcher(tmp_path, consumer, tel, interval_s=0.5)
    assert w.poll_once() == 0
    assert tel.value("expert_dumps_deferred") == 1
    assert w.next_wait_s() > 0.5 * 0.5  # backing off (jittered, at least half of 2 x interval)
    consumer.fail = False
    assert w.poll_once() == 8
    assert consumer.rows("expert_loads") == 8
    assert w.next_wait_s() == 0.5


def test_read_existing_false_skips_old_dumps(tmp_path):
    rng = np.random.default_rng(8)
    write_json(tmp_path, T0, stat_dump(skewed_counts(rng, 2, 4, {}), 1, rng))
    consumer, tel = MemoryConsumer(), Telemetry()
    w = _watcher(tmp_path, consumer, tel, read_existing=False)
    assert w.poll_once() == 0
    write_json(tmp_path, T0 + HOUR, stat_dump(skewed_counts(rng, 2, 4, {}), 1, rng))
    assert w.poll_once() == 8
    assert set(consumer.table("expert_loads")["window_start"].cast(pa.int64()).to_pylist()) == {T0}


def test_thread_lifecycle_picks_up_new_files_and_stops(tmp_path):
    rng = np.random.default_rng(10)
    consumer, tel = MemoryConsumer(), Telemetry()
    w = _watcher(tmp_path / "later", consumer, tel, interval_s=0.02)  # folder does not exist yet
    w.start()
    w.start()  # idempotent
    try:
        write_json(tmp_path / "later", T0, stat_dump(skewed_counts(rng, 2, 4, {}), 1, rng))
        deadline = time.monotonic() + 10
        while consumer.rows("expert_loads") < 8 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert consumer.rows("expert_loads") == 8
    finally:
        w.shutdown(2.0)
        w.shutdown(2.0)
    assert w._thread is None


def test_poll_errors_do_not_kill_the_thread(tmp_path):
    consumer, tel = MemoryConsumer(), Telemetry()
    w = _watcher(tmp_path, consumer, tel, interval_s=0.01)
    calls = []

    def boom():
        calls.append(1)
        raise RuntimeError("disk vanished")

    w.poll_once = boom
    w.start()
    deadline = time.monotonic() + 5
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    w.shutdown(2.0)
    assert len(calls) >= 3
    assert tel.value("poll_errors") >= 3


def test_pt_dumps_without_torch_are_skipped_and_counted(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    rng = np.random.default_rng(13)
    (tmp_path / f"expert_distribution_recorder_{T0}.pt").write_bytes(b"\x80\x02torch bytes")
    write_json(tmp_path, T0 + HOUR, stat_dump(skewed_counts(rng, 2, 4, {}), 1, rng))
    consumer, tel = MemoryConsumer(), Telemetry()
    w = _watcher(tmp_path, consumer, tel)
    assert w.poll_once() == 8
    assert tel.value("expert_dumps_skipped", reason="torch_missing") == 1
    assert tel.value("expert_dumps_rejected") == 0
