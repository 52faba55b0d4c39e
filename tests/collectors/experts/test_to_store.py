"""End to end on real parts: TOML config -> dump watcher + EPLB tailer -> spool segments -> chDB store
-> `run_expert_hotness` finds the planted hot experts."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pyarrow as pa

from collectors.experts.factory import create_components
from collectors.experts.watcher import ExpertDumpWatcher
from collectors.telemetry import Telemetry
from fleetledger.settings import load_settings
from pipelines.experts.step import run_expert_hotness
from schemas.spool import list_segments, read_segment, write_segment
from tests.collectors.experts.dumpgen import plant, skewed_counts, stat_dump, write_json

T0 = dt.datetime(2026, 11, 29, 1, 0, tzinfo=dt.UTC)
T0_MS = int(T0.timestamp() * 1000)


class SegmentConsumer:
    """Writes each consumed table as one spool segment (the spool's on-disk format)."""

    def __init__(self, directory):
        self.directory = directory
        self.seq = itertools.count()

    def consume(self, table: str, data: pa.Table) -> None:
        write_segment(self.directory, table, data, "node-a", 1_000 + next(self.seq), next(self.seq))


def test_dumps_and_log_lines_reach_the_store_and_the_hotness_table(tmp_path, store):
    dumps, log_file, spool = tmp_path / "dumps", tmp_path / "vllm.log", tmp_path / "spool"
    config = tmp_path / "fleet.toml"
    config.write_text(f"""
[collect]
cluster = "c1"
[collect.experts]
settle_s = 0
[[collect.engines]]
instance = "sglang-deepseek-v3-0"
engine_kind = "sglang"
model = "deepseek-v3"
expert_dump_dir = "{dumps}"
[[collect.engines]]
instance = "vllm-deepseek-v3-0"
model = "deepseek-v3"
eplb_log_file = "{log_file}"
""")
    settings = load_settings(config)
    rng = np.random.default_rng(12)
    layers, experts, k = 4, 32, 3
    hot = plant(rng, layers, experts, k)
    for i in range(2):  # 00:00-01:00 and 01:00-02:00
        write_json(dumps, T0_MS + i * 3_600_000, stat_dump(skewed_counts(rng, layers, experts, hot), 4, rng))
    log_file.write_text("INFO 11-29 01:30:00 [eplb_state.py:1] EPLB step: avg_tokens=10.00, max_tokens=40, balancedness=0.2500\n")

    comps = create_components(settings.collect, SegmentConsumer(spool), Telemetry())
    assert len(comps) == 2
    for c in comps:
        c.poll_once()

    for seg in list_segments(spool):  # what the ingest flow does with each segment
        store.insert(seg.table, read_segment(seg.path), dedup_token=seg.segment_id)
    assert store.count("expert_loads") == 2 * layers * experts
    assert store.query_rows("SELECT engine_instance, balancedness FROM expert_balance_samples") == [("vllm-deepseek-v3-0", 0.25)]

    # the flow's experts step for hour 01:00-02:00 sees the window ending at 02:00
    written = run_expert_hotness(store, T0, T0 + dt.timedelta(hours=1), run_version=7, top_k=k)
    assert written == layers
    got = store.query_rows("SELECT layer, hot_experts FROM expert_hotness FINAL ORDER BY layer")
    assert [(layer, sorted(h)) for layer, h in got] == [(layer, hot[layer]) for layer in range(layers)]

    # a restarted watcher re-reads the folder: the store keeps each row once
    again = [c for c in create_components(settings.collect, SegmentConsumer(tmp_path / "spool2"), Telemetry())
             if isinstance(c, ExpertDumpWatcher)][0]
    again.poll_once()
    for seg in list_segments(tmp_path / "spool2"):
        store.insert(seg.table, read_segment(seg.path), dedup_token=seg.segment_id)
    assert store.count("expert_loads", final=True) == 2 * layers * experts
