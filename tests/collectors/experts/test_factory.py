"""Components built from the sidecar config: engines' dump folders and log files, extras, knobs."""

from __future__ import annotations

from types import SimpleNamespace

from collectors.component import Component, MemoryConsumer
from collectors.engines import EngineConfig
from collectors.experts.config import EplbLogSource, ExpertsConfig
from collectors.experts.eplb_log import EplbLogTailer
from collectors.experts.factory import create_components
from collectors.experts.watcher import ExpertDumpWatcher
from collectors.telemetry import Telemetry


def _config(tmp_path, **experts):
    engines = [
        EngineConfig(instance="sglang-deepseek-v3-0", engine_kind="sglang", model="deepseek-v3",
                     expert_dump_dir=str(tmp_path / "dumps")),
        EngineConfig(instance="vllm-deepseek-v3-0", engine_kind="vllm", model="deepseek-v3",
                     eplb_log_file=str(tmp_path / "vllm.log")),
        EngineConfig(instance="vllm-llama3-8b-0", model="llama3-8b"),
    ]
    return SimpleNamespace(cluster="c1", engines=engines, experts=ExpertsConfig(**experts))


def test_components_from_engines_and_extra_sources(tmp_path):
    cfg = _config(tmp_path, poll_interval_s=0.5, window_s=600,
                  eplb_logs=[EplbLogSource(engine_instance="vllm-other-0", path=tmp_path / "other.log")])
    comps = create_components(cfg, MemoryConsumer(), Telemetry())
    assert all(isinstance(c, Component) for c in comps)
    watchers = [c for c in comps if isinstance(c, ExpertDumpWatcher)]
    tailers = [c for c in comps if isinstance(c, EplbLogTailer)]
    assert [(w.engine_instance, w.model, w.directory, w.window_ms, w.interval_s) for w in watchers] == [
        ("sglang-deepseek-v3-0", "deepseek-v3", tmp_path / "dumps", 600_000, 0.5)]
    assert sorted(t.engine_instance for t in tailers) == ["vllm-deepseek-v3-0", "vllm-other-0"]
    assert {c.cluster for c in comps} == {"c1"}
    for c in comps:  # lifecycle works on missing files and is idempotent
        c.start()
    for c in comps:
        c.shutdown(1.0)
        c.shutdown(1.0)


def test_disabled_builds_nothing(tmp_path):
    assert create_components(_config(tmp_path, enabled=False), MemoryConsumer(), Telemetry()) == []
