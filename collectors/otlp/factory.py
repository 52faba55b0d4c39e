"""Builds the OTLP receivers from the collector config (called by ``collectors.sidecar``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.engines import EngineResolver, collector_node
from collectors.otlp.config import OtlpConfig
from collectors.otlp.decoder import SpanDecoder
from collectors.otlp.grpc_receiver import OtlpGrpcReceiver
from collectors.otlp.http_receiver import OtlpHttpReceiver
from collectors.otlp.ingest import TraceIngest

if TYPE_CHECKING:
    from collectors.component import Component, Consumer
    from collectors.config import CollectorConfig
    from collectors.telemetry import Telemetry


def build_ingest(otlp: OtlpConfig, engines, cluster: str, node: str, consumer: Consumer,
                 telemetry: Telemetry) -> TraceIngest:
    decoder = SpanDecoder(otlp, EngineResolver(list(engines), node), cluster)
    return TraceIngest(decoder, consumer, telemetry)


def create_components(config: CollectorConfig, consumer: Consumer, telemetry: Telemetry) -> list[Component]:
    otlp: OtlpConfig = getattr(config, "otlp", None) or OtlpConfig()
    if not otlp.enabled:
        return []
    ingest = build_ingest(otlp, getattr(config, "engines", []) or [], config.cluster, collector_node(config),
                          consumer, telemetry)
    components: list[Component] = []
    if otlp.http_enabled:
        components.append(OtlpHttpReceiver(otlp, ingest, consumer, telemetry))
    if otlp.grpc_enabled:
        components.append(OtlpGrpcReceiver(otlp, ingest, telemetry))
    return components
