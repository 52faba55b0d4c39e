"""Engine instances of the sidecar config: who they are, where they run, which GPUs they own.

Owns ``EngineConfig`` (the ``[[collect.engines]]`` TOML section), the mapping of OTLP resource
attributes to a configured engine instance (``EngineResolver``), and the ``engine_placements``
rows emitted when the collector starts (``PlacementPublisher``).

Matching OTLP resources to instances (interfaces.md "Engine placements"):

* an engine answers to ``service.name`` equal to its ``service_name`` (default: its
  ``engine_kind``, which is what vLLM ("vllm") and SGLang ("sglang") send by default) or to its
  ``instance`` name;
* when both the engine's ``process_id`` and the resource's ``vllm.process_id`` are known they
  must be equal;
* among the engines left, an exact ``process_id`` match counts most, then ``host.name`` equal
  to the engine's ``node``; ties go to the first engine in config order;
* no engine matches: the instance is ``service.name`` itself, the node is ``host.name`` (or the
  collector's node), the GPUs unknown.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pyarrow as pa
from pydantic import BaseModel, Field, model_validator

from schemas.tables import ENGINE_PLACEMENTS

if TYPE_CHECKING:
    from collectors.component import Component, Consumer
    from collectors.config import CollectorConfig
    from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)

OPEN_END = datetime(2100, 1, 1, tzinfo=UTC)
ALWAYS = datetime(1970, 1, 1, tzinfo=UTC)


class EngineConfig(BaseModel):
    """One serving-engine instance (`[[collect.engines]]`)."""

    instance: str = Field(min_length=1, description="engine instance name, e.g. 'vllm-llama3-8b-0'")
    engine_kind: str = Field(default="vllm", min_length=1, description="'vllm' | 'sglang' | other")
    model: str = Field(default="", description="model short name, e.g. 'llama3-8b'")
    node: str = Field(default="", description="node the instance runs on; empty = the collector's node")
    gpu_uuids: list[str] = Field(default_factory=list, description="GPUs the instance owns")
    tp: int = Field(default=1, ge=1, le=65535)
    pp: int = Field(default=1, ge=1, le=65535)
    ep: int = Field(default=1, ge=1, le=65535)
    dp: int = Field(default=1, ge=1, le=65535)
    service_name: str | None = Field(default=None, description="OTLP service.name; default = engine_kind")
    process_id: str | None = Field(default=None, description="OTLP vllm.process_id to tell instances apart")
    metrics_url: str | None = Field(default=None, description="Prometheus /metrics URL scraped for this instance")
    expert_dump_dir: str | None = Field(default=None, description="SGLang expert distribution dump folder")
    eplb_log_file: str | None = Field(default=None, description="vLLM log file with EPLB step lines")
    valid_from: datetime | None = Field(
        default=None,
        description="since when the instance owns these GPUs; unset = always (a configured placement "
        "holds for all data, also spans that arrive late or from before the sidecar started). Set it "
        "when you move an instance to other GPUs, so costs before the move keep the old placement.",
    )

    @model_validator(mode="before")
    @classmethod
    def _process_id_as_text(cls, data):
        if isinstance(data, dict) and isinstance(data.get("process_id"), int):
            data = {**data, "process_id": str(data["process_id"])}
        return data

    @property
    def effective_service_name(self) -> str:
        return self.service_name or self.engine_kind


@dataclass(frozen=True)
class EngineIdentity:
    """Who sent a span batch: the instance and what the config knows about it."""

    instance: str
    node: str
    engine_kind: str  # '' when no configured engine matched
    model: str  # '' when no configured engine matched
    configured: bool


class EngineResolver:
    """Maps OTLP resource attributes (and scrape targets) to configured engine instances."""

    def __init__(self, engines: list[EngineConfig], default_node: str = "") -> None:
        self.engines = list(engines)
        self.default_node = default_node
        self._cache: dict[tuple[str, str, str], EngineIdentity] = {}
        self._lock = threading.Lock()

    def by_instance(self, instance: str) -> EngineConfig | None:
        return next((e for e in self.engines if e.instance == instance), None)

    def resolve(self, service_name: str, process_id: str = "", host_name: str = "") -> EngineIdentity:
        key = (service_name, process_id, host_name)
        found = self._cache.get(key)
        if found is None:
            found = self._match(service_name, process_id, host_name)
            with self._lock:
                if len(self._cache) > 10_000:  # resource sets are few; never grow without bound
                    self._cache.clear()
                self._cache[key] = found
        return found

    def _match(self, service_name: str, process_id: str, host_name: str) -> EngineIdentity:
        best: EngineConfig | None = None
        best_score = -1
        for engine in self.engines:
            if service_name not in (engine.effective_service_name, engine.instance):
                continue
            if engine.process_id and process_id and engine.process_id != process_id:
                continue
            score = 0
            if engine.process_id and engine.process_id == process_id:
                score += 4
            if host_name and (engine.node or self.default_node) == host_name:
                score += 2
            if score > best_score:
                best, best_score = engine, score
        if best is not None:
            return EngineIdentity(best.instance, best.node or self.default_node, best.engine_kind, best.model, True)
        return EngineIdentity(service_name or "unknown_service", host_name or self.default_node, "", "", False)


def placement_table(engines: list[EngineConfig], cluster: str, default_node: str, now: datetime) -> pa.Table:
    """``engine_placements`` rows for the configured engines (source 'config', open-ended).

    Rows are keyed by (cluster, instance, valid_from) with ``updated_at`` = now as the version, so
    a restarted sidecar re-emits the same rows and the store keeps one of each.
    """
    columns = {
        "cluster": [cluster] * len(engines),
        "engine_instance": [e.instance for e in engines],
        "node": [e.node or default_node for e in engines],
        "gpu_uuids": [list(e.gpu_uuids) for e in engines],
        "engine_kind": [e.engine_kind for e in engines],
        "model": [e.model for e in engines],
        "tp": [e.tp for e in engines],
        "pp": [e.pp for e in engines],
        "ep": [e.ep for e in engines],
        "dp": [e.dp for e in engines],
        "valid_from": [e.valid_from or ALWAYS for e in engines],
        "valid_to": [OPEN_END] * len(engines),
        "source": ["config"] * len(engines),
        "updated_at": [now] * len(engines),
    }
    return pa.Table.from_pydict(columns, schema=ENGINE_PLACEMENTS)


class PlacementPublisher:
    """Emits the configured engines' ``engine_placements`` rows once, at start.

    A consumer failure is counted (``engine_placements_failed``) and retried at the next
    start; it never stops the collector.
    """

    name = "engine-placements"

    def __init__(self, engines: list[EngineConfig], cluster: str, node: str, consumer: Consumer,
                 telemetry: Telemetry, clock=time.time) -> None:
        self.engines = list(engines)
        self.cluster = cluster
        self.node = node
        self.consumer = consumer
        self.telemetry = telemetry
        self.clock = clock
        self.published = False

    def start(self) -> None:
        if self.published or not self.engines:
            return
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        data = placement_table(self.engines, self.cluster, self.node, now)
        try:
            self.consumer.consume("engine_placements", data)
        except Exception as exc:  # noqa: BLE001 - counted; the collector keeps running
            self.telemetry.add("engine_placements_failed", 1, error=type(exc).__name__)
            log.warning("engine placements not written (%s); they are retried at the next start", exc)
            return
        self.telemetry.add("engine_placements_rows", data.num_rows)
        self.published = True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        return None


def collector_node(config: CollectorConfig) -> str:
    """The collector's node name: configured, else this host's name."""
    if config.node:
        return config.node
    import socket

    return socket.gethostname()


def create_components(config: CollectorConfig, consumer: Consumer, telemetry: Telemetry) -> list[Component]:
    engines = list(getattr(config, "engines", []) or [])
    if not engines:
        return []
    return [PlacementPublisher(engines, config.cluster, collector_node(config), consumer, telemetry)]
