"""OTLP/gRPC receiver against the real OTel SDK gRPC exporter and a raw grpc channel."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.collectors.otlp.conftest import RESOURCE
from tests.collectors.otlp.spans import make_spans

METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def raw_export(port: int, body: bytes, metadata=()):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary(METHOD, request_serializer=None,
                                   response_deserializer=ExportTraceServiceResponse.FromString)
        return call(body, metadata=metadata, timeout=10)


def good() -> bytes:
    return encode_spans(make_spans(1, RESOURCE)).SerializeToString()


def test_real_grpc_exporter_with_gzip(make_rig):
    rig = make_rig("grpc")
    endpoint = f"127.0.0.1:{rig.receiver.port}"
    spans = make_spans(4, RESOURCE)
    assert OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10).export(spans) == SpanExportResult.SUCCESS
    assert OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=10,
                            compression=grpc.Compression.Gzip).export(spans) == SpanExportResult.SUCCESS
    rows = rig.consumer.table("request_spans").to_pylist()
    assert len(rows) == 8 and rows[3]["request_id"] == "req-3"
    assert rows[0]["engine_instance"] == "vllm-llama3-8b-0" and rows[0]["e2e_seconds"] == 0.9
    assert rig.consumer.rows("trace_labels") == 8
    assert rig.telemetry.value("otlp_grpc_requests", code="OK") == 2


def test_partial_success_and_bad_messages(make_rig):
    rig = make_rig("grpc", max_request_bytes=32 * 1024)
    port = rig.receiver.port
    spans = make_spans(2, RESOURCE, overrides={0: {"gen_ai.usage.completion_tokens": -1}})
    response = raw_export(port, encode_spans(spans).SerializeToString())
    assert response.partial_success.rejected_spans == 1
    assert "negative_tokens" in response.partial_success.error_message
    assert rig.consumer.rows("request_spans") == 1
    assert rig.telemetry.value("otlp_spans_rejected", reason="negative_tokens", transport="grpc") == 1

    body = good()
    for bad, code, reason in [
        (body[: len(body) // 2], grpc.StatusCode.INVALID_ARGUMENT, "bad_protobuf"),
        (b"\x0a" * 40_000, grpc.StatusCode.RESOURCE_EXHAUSTED, "too_large"),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            raw_export(port, bad)
        assert err.value.code() == code
        assert err.value.details()
        assert rig.telemetry.value("otlp_bad_requests", reason=reason, transport="grpc") == 1
        before = rig.consumer.rows("request_spans")
        assert not raw_export(port, good()).HasField("partial_success")  # still serving
        assert rig.consumer.rows("request_spans") == before + 1


def test_grpc_bearer_token(make_rig):
    rig = make_rig("grpc", bearer_token="tok")
    port = rig.receiver.port
    with pytest.raises(grpc.RpcError) as err:
        raw_export(port, good())
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert rig.telemetry.value("otlp_bad_requests", reason="unauthorized", transport="grpc") == 1
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=10,
                                headers={"authorization": "Bearer tok"})
    assert exporter.export(make_spans(1, RESOURCE)) == SpanExportResult.SUCCESS
    assert rig.consumer.rows("request_spans") == 1
