"""Running receivers on free 127.0.0.1 ports, with an in-memory consumer and a telemetry tally."""

from __future__ import annotations

import pytest

from collectors.component import MemoryConsumer
from collectors.engines import EngineConfig
from collectors.otlp.config import OtlpConfig
from collectors.otlp.factory import build_ingest
from collectors.otlp.grpc_receiver import OtlpGrpcReceiver
from collectors.otlp.http_receiver import OtlpHttpReceiver
from collectors.telemetry import Telemetry

ENGINES = [EngineConfig(instance="vllm-llama3-8b-0", engine_kind="vllm", model="llama3-8b", node="node-a",
                        gpu_uuids=["GPU-00000000-0000-0000-0000-000000000001"], process_id="7")]
RESOURCE = {"service.name": "vllm", "host.name": "node-a", "vllm.process_id": 7}


class Rig:
    def __init__(self, receiver, consumer, telemetry):
        self.receiver, self.consumer, self.telemetry = receiver, consumer, telemetry


def _rig(kind: str, **config):
    cfg = OtlpConfig(http_listen="127.0.0.1:0", grpc_listen="127.0.0.1:0", **config)
    consumer, telemetry = MemoryConsumer(), Telemetry()
    ingest = build_ingest(cfg, ENGINES, "default", "node-a", consumer, telemetry)
    receiver = (OtlpHttpReceiver(cfg, ingest, consumer, telemetry) if kind == "http"
                else OtlpGrpcReceiver(cfg, ingest, telemetry))
    receiver.start()
    return Rig(receiver, consumer, telemetry)


@pytest.fixture
def make_rig():
    rigs = []

    def make(kind: str, **config):
        rig = _rig(kind, **config)
        rigs.append(rig)
        return rig

    yield make
    for rig in rigs:
        rig.receiver.shutdown(2.0)
