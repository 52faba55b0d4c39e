"""Parsing of SGLang stat / per_pass dumps (JSON and .pt) and rejection of malformed ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from collectors.experts.dumps import (
    DumpRejected,
    TorchMissing,
    dump_timestamp_ms,
    load_dump,
    parse_dump_object,
)
from tests.collectors.experts.dumpgen import per_pass_dump, plant, skewed_counts, stat_dump, write_json


def _top(counts: np.ndarray, k: int) -> list[list[int]]:
    return [sorted(np.argsort(-row, kind="stable")[:k].tolist()) for row in counts]


def test_stat_json_sums_buffer_steps_and_finds_planted_experts(tmp_path):
    rng = np.random.default_rng(7)
    hot = plant(rng, layers=6, experts=32, k=3)
    counts = skewed_counts(rng, 6, 32, hot)
    path = write_json(tmp_path, 1_795_000_000_000, stat_dump(counts, steps=5, rng=rng, rank=0))
    parsed = load_dump(path)
    assert parsed.kind == "stat" and parsed.source == "sglang_stat" and parsed.rank == 0
    assert parsed.logical_count.dtype == np.uint64
    np.testing.assert_array_equal(parsed.logical_count, counts)
    assert _top(parsed.logical_count, 3) == [hot[layer] for layer in range(6)]
    assert parsed.average_utilization_rate == pytest.approx(0.8)


def test_per_pass_maps_physical_replicas_to_logical_experts(tmp_path):
    rng = np.random.default_rng(11)
    layers, experts = 4, 16
    hot = plant(rng, layers, experts, k=2)
    counts = skewed_counts(rng, layers, experts, hot)
    # 24 physical slots: every expert once, then 8 replicas of the planted hot ones (shuffled per layer)
    phys2log = np.stack([
        rng.permutation(np.concatenate([np.arange(experts), np.repeat(hot[layer], 4)])) for layer in range(layers)
    ])
    path = write_json(tmp_path, 1_795_000_000_000, per_pass_dump(counts, phys2log, passes=3, rng=rng, rank=2), rank=2)
    parsed = load_dump(path)
    assert parsed.kind == "per_pass" and parsed.rank == 2
    assert parsed.logical_count.shape == (layers, experts)
    np.testing.assert_array_equal(parsed.logical_count, counts)
    assert _top(parsed.logical_count, 2) == [hot[layer] for layer in range(layers)]


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"rank": "0", "logical_count": [[[1, 2]]]}, "wrong_rank"),
        ({"rank": -1, "logical_count": [[[1, 2]]]}, "wrong_rank"),
        ({"rank": True, "logical_count": [[[1, 2]]]}, "wrong_rank"),
        ({"rank": 0, "logical_count": [[1, 2], [3, 4]]}, "wrong_shape"),
        ({"rank": 0, "logical_count": [[[1, 2], [3]]]}, "wrong_shape"),
        ({"rank": 0, "logical_count": []}, "wrong_shape"),
        ({"rank": 0, "logical_count": [[[1, -2]]]}, "negative_count"),
        ({"rank": 0, "logical_count": [[[1.5, 2]]]}, "not_integer"),
        ({"rank": 0, "logical_count": [[["a", "b"]]]}, "wrong_type"),
        ({"rank": 0, "logical_count": [[[1, 2]]], "average_utilization_rate_over_window": "high"}, "wrong_type"),
        ({"rank": 0, "records": [{"global_physical_count": [[1, 2, 3]]}], "last_physical_to_logical_map": [[0, 1]]},
         "wrong_shape"),
        ({"rank": 0, "records": [], "last_physical_to_logical_map": [[0, 1]]}, "wrong_shape"),
        ({"rank": 0, "records": [{"global_physical_count": [[1, 2]]}]}, "unknown_format"),
        ({"rank": 0, "records": [{"global_physical_count": [[1, 2]]}], "last_physical_to_logical_map": [[0, -1]]},
         "negative_count"),
        ({"rank": 0, "something": 1}, "unknown_format"),
        ([1, 2, 3], "wrong_type"),
    ],
)
def test_malformed_dump_objects_are_rejected_with_a_reason(obj, reason):
    with pytest.raises(DumpRejected) as err:
        parse_dump_object(obj)
    assert err.value.reason == reason
    assert str(err.value)  # a sentence for the log


def test_truncated_and_invalid_json_files_are_rejected(tmp_path):
    rng = np.random.default_rng(1)
    good = json.dumps(stat_dump(skewed_counts(rng, 2, 8, {}), 2, rng))
    truncated = tmp_path / "expert_distribution_recorder_1795000000000.json"
    truncated.write_text(good[: len(good) // 2])
    with pytest.raises(DumpRejected) as err:
        load_dump(truncated)
    assert err.value.reason == "invalid_json"
    empty = tmp_path / "expert_distribution_recorder_1795000001000.json"
    empty.write_text("")
    with pytest.raises(DumpRejected) as err:
        load_dump(empty)
    assert err.value.reason == "empty"


def test_dump_timestamps_from_names():
    assert dump_timestamp_ms(Path("expert_distribution_recorder_1795000000123.json")) == 1_795_000_000_123
    # SGLang's own names use time.time() seconds with a fraction, per_pass adds the rank
    assert dump_timestamp_ms(Path("expert_distribution_recorder_1795000000.5_3.pt")) == 1_795_000_000_500
    assert dump_timestamp_ms(Path("other_1795000000.json")) is None


def test_pt_dumps_need_torch_or_say_so(tmp_path, monkeypatch):
    path = tmp_path / "expert_distribution_recorder_1795000000000.pt"
    path.write_bytes(b"not read")
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` fail as when it is absent
    with pytest.raises(TorchMissing, match=r"fleetledger\[torch\]"):
        load_dump(path)


def test_pt_stat_and_per_pass_dumps(tmp_path):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    hot = plant(rng, 3, 16, k=2)
    counts = skewed_counts(rng, 3, 16, hot)
    stat = stat_dump(counts, 4, rng)
    stat_path = tmp_path / "expert_distribution_recorder_1795000000.25.pt"
    torch.save({"rank": 0, "logical_count": torch.tensor(stat["logical_count"], dtype=torch.int32),
                "average_utilization_rate_over_window": None}, stat_path)
    parsed = load_dump(stat_path)
    np.testing.assert_array_equal(parsed.logical_count, counts)
    assert parsed.average_utilization_rate is None

    phys2log = np.stack([rng.permutation(np.concatenate([np.arange(16), hot[layer]])) for layer in range(3)])
    pp = per_pass_dump(counts, phys2log, passes=2, rng=rng, rank=1)
    pp_path = tmp_path / "expert_distribution_recorder_1795000000.25_1.pt"
    torch.save({
        "records": [{"forward_pass_id": i, "rank": 1, "global_physical_count": torch.tensor(r["global_physical_count"])}
                    for i, r in enumerate(pp["records"])],
        "last_physical_to_logical_map": torch.tensor(pp["last_physical_to_logical_map"]),
    }, pp_path)
    parsed = load_dump(pp_path)
    assert parsed.kind == "per_pass"
    np.testing.assert_array_equal(parsed.logical_count, counts)

    torn = tmp_path / "expert_distribution_recorder_1795000001.0.pt"
    torn.write_bytes(stat_path.read_bytes()[:100])
    with pytest.raises(DumpRejected) as err:
        load_dump(torn)
    assert err.value.reason == "corrupt"

    bad = tmp_path / "expert_distribution_recorder_1795000002.0.pt"
    torch.save({"rank": 0, "logical_count": torch.tensor([[[1, -5]]])}, bad)
    with pytest.raises(DumpRejected) as err:
        load_dump(bad)
    assert err.value.reason == "negative_count"
