"""Engine identity from OTLP resources and the config, and the placements emitted at start."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from collectors.component import MemoryConsumer, TransientError
from collectors.config import CollectorConfig
from collectors.engines import EngineConfig, EngineResolver, PlacementPublisher, create_components
from collectors.telemetry import Telemetry

GPU = "GPU-{:08x}-0000-0000-0000-000000000000".format
ENGINES = [
    EngineConfig(instance="vllm-llama3-8b-0", engine_kind="vllm", model="llama3-8b", node="node-a",
                 gpu_uuids=[GPU(0)], process_id=100),
    EngineConfig(instance="vllm-llama3-8b-1", engine_kind="vllm", model="llama3-8b", node="node-a",
                 gpu_uuids=[GPU(1)], process_id="200"),
    EngineConfig(instance="vllm-llama3-8b-2", engine_kind="vllm", model="llama3-8b", node="node-b",
                 gpu_uuids=[GPU(2)]),
    EngineConfig(instance="sglang-deepseek-v3-0", engine_kind="sglang", model="deepseek-v3", node="node-b",
                 gpu_uuids=[GPU(i) for i in range(3, 11)], tp=8, ep=8),
    EngineConfig(instance="custom-0", engine_kind="vllm", service_name="my-llm", node="node-c"),
]


@pytest.mark.parametrize(("service", "pid", "host", "instance", "node"), [
    ("vllm", "200", "node-a", "vllm-llama3-8b-1", "node-a"),
    ("vllm", "100", "", "vllm-llama3-8b-0", "node-a"),
    ("vllm", "", "node-b", "vllm-llama3-8b-2", "node-b"),  # host decides without a pid
    ("vllm", "999", "node-b", "vllm-llama3-8b-2", "node-b"),  # configured pids that differ rule out 0 and 1
    ("sglang", "", "node-b", "sglang-deepseek-v3-0", "node-b"),
    ("my-llm", "", "", "custom-0", "node-c"),
    ("vllm-llama3-8b-1", "", "", "vllm-llama3-8b-1", "node-a"),  # service.name = instance name
    ("tgi", "", "node-q", "tgi", "node-q"),  # unknown: named after the service, on its host
    ("", "", "", "unknown_service", "node-z"),
])
def test_resolve(service, pid, host, instance, node):
    ident = EngineResolver(ENGINES, default_node="node-z").resolve(service, pid, host)
    assert (ident.instance, ident.node) == (instance, node)
    assert ident.configured == (instance not in ("tgi", "unknown_service"))


def test_engines_from_toml_shaped_config():
    config = CollectorConfig.model_validate({"node": "node-a", "engines": [
        {"instance": "vllm-llama3-8b-0", "engine_kind": "vllm", "model": "llama3-8b", "node": "node-a",
         "gpu_uuids": [GPU(0), GPU(1)], "tp": 2, "pp": 1, "ep": 1, "dp": 1, "process_id": 7,
         "metrics_url": "http://127.0.0.1:8000/metrics"}]})
    assert config.engines[0].process_id == "7" and config.engines[0].tp == 2
    with pytest.raises(ValidationError):
        CollectorConfig.model_validate({"engines": [{"instance": "x", "tp": 0}]})
    with pytest.raises(ValidationError):
        CollectorConfig.model_validate({"engines": [{"engine_kind": "vllm"}]})


def test_placements_emitted_once_at_start_and_stored(store):
    consumer, telemetry = MemoryConsumer(), Telemetry()
    config = CollectorConfig(cluster="prod", node="node-z", engines=ENGINES)
    [publisher] = create_components(config, consumer, telemetry)
    start = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    publisher.clock = start.timestamp
    publisher.start()
    publisher.start()
    publisher.shutdown()
    table = consumer.table("engine_placements")
    assert table.num_rows == len(ENGINES)
    store.insert("engine_placements", table)
    rows = store.query_arrow(
        "SELECT engine_instance, node, gpu_uuids, tp, ep, valid_from, valid_to, source FROM engine_placements "
        "WHERE cluster = 'prod' ORDER BY engine_instance").to_pylist()
    sglang = rows[[r["engine_instance"] for r in rows].index("sglang-deepseek-v3-0")]
    assert sglang["gpu_uuids"] == [GPU(i) for i in range(3, 11)] and (sglang["tp"], sglang["ep"]) == (8, 8)
    # a configured placement holds for all time: late spans and backfills find their GPUs
    assert sglang["valid_from"] == datetime(1970, 1, 1, tzinfo=UTC)
    assert sglang["valid_to"] == datetime(2100, 1, 1, tzinfo=UTC)
    assert {r["source"] for r in rows} == {"config"}
    custom = rows[[r["engine_instance"] for r in rows].index("custom-0")]
    assert custom["node"] == "node-c" and custom["gpu_uuids"] == []
    assert telemetry.value("engine_placements_rows") == len(ENGINES)
    # a restarted sidecar re-emits the same keys: the store keeps one row per instance
    again = create_components(config, consumer, telemetry)[0]
    again.clock = (start.timestamp() + 3600).__float__
    again.start()
    store.insert("engine_placements", consumer.table("engine_placements").slice(len(ENGINES)))
    assert store.count("engine_placements", final=True) == len(ENGINES)


def test_placement_failure_is_counted_and_retried_next_start():
    class Down:
        def consume(self, table, data):
            raise TransientError("spool unavailable")

    telemetry = Telemetry()
    publisher = PlacementPublisher(ENGINES[:1], "default", "node-a", Down(), telemetry)
    publisher.start()
    assert telemetry.value("engine_placements_failed") == 1 and not publisher.published
    publisher.consumer = MemoryConsumer()
    publisher.start()
    assert publisher.published and publisher.consumer.rows("engine_placements") == 1
    assert create_components(CollectorConfig(), MemoryConsumer(), telemetry) == []
