"""MoE routing: dumps in both SGLang forms that the experts collector parses, planted hot experts,
vLLM EPLB log lines of the real shapes."""

from __future__ import annotations

import json
import re

import numpy as np

from simulator.api import simulate

NEW = re.compile(r"EPLB step: (\d+) for model (\S+): avg_tokens=([\d.]+), max_tokens=(\d+), balancedness=([\d.]+), "
                 r"steps until the next rearrangement: \d+$")
OLD = re.compile(r"EPLB step: avg_tokens=([\d.]+), max_tokens=(\d+), balancedness=([\d.]+)$")


def test_dumps_parse_and_planted_hot_experts_are_the_hottest(tmp_path):
    from collectors.experts.dumps import dump_timestamp_ms, load_dump

    res = simulate(hours=1, nodes=3, seed=9, out=tmp_path, write_pt=False)
    planted = json.loads((tmp_path / "experts" / "planted_hot.json").read_text())
    inst = "sglang-deepseek-v3-0"
    dumps = sorted((tmp_path / "experts" / inst).glob("*.json"), key=dump_timestamp_ms)
    windows = planted[inst]["windows"]
    assert len(dumps) == len(windows) == 4
    kinds = []
    for k, (path, window) in enumerate(zip(dumps, windows, strict=True)):
        parsed = load_dump(path)
        kinds.append(parsed.kind)
        counts = np.asarray(parsed.logical_count)
        assert counts.shape == (61, 256)
        assert counts[:3].sum() == 0  # DeepSeek-V3's dense layers route nothing
        assert counts.sum() == window["tokens_routed"] == res.moe[inst].counts[k].sum()
        for layer, hot in window["hot"].items():
            top = set(np.argsort(-counts[int(layer)])[: len(hot)].tolist())
            assert len(top & set(hot)) >= len(hot) - 1
    assert set(kinds) == {"stat", "per_pass"}
    # hot experts drift between windows
    first, last = windows[0]["hot"]["10"], windows[-1]["hot"]["10"]
    assert first != last


def test_eplb_log_lines_have_the_vllm_shape(tmp_path):
    simulate(hours=0.1, nodes=3, seed=1, out=tmp_path, write_pt=False)
    lines = [ln for ln in (tmp_path / "logs" / "vllm-mixtral-8x22b-0.log").read_text().splitlines() if "EPLB" in ln]
    assert len(lines) == 6
    steps = []
    for ln in lines:
        m = NEW.search(ln)
        assert m, ln
        assert 0 < float(m.group(5)) <= 1 and float(m.group(3)) <= float(m.group(4))
        steps.append(int(m.group(1)))
    assert steps == sorted(steps) and steps[0] > 0
