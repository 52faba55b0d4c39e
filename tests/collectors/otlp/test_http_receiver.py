"""OTLP/HTTP receiver against the real OTel SDK http/protobuf exporter and raw bad requests."""

from __future__ import annotations

import gzip
import http.client
import json

from google.rpc import status_pb2
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from tests.collectors.otlp.conftest import RESOURCE
from tests.collectors.otlp.spans import make_spans

PB = "application/x-protobuf"


def post(port, body: bytes, ctype=PB, headers=None, path="/v1/traces"):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": ctype, **(headers or {})})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type"), resp.read()
    finally:
        conn.close()


def good_body(n=2) -> bytes:
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    return encode_spans(make_spans(n, RESOURCE)).SerializeToString()


def assert_still_serving(rig, expected_rows):
    status, ctype, body = post(rig.receiver.port, good_body(1))
    assert status == 200 and ctype == PB
    assert not ExportTraceServiceResponse.FromString(body).HasField("partial_success")
    assert rig.consumer.rows("request_spans") == expected_rows


def test_real_exporter_protobuf_and_gzip(make_rig):
    rig = make_rig("http")
    url = f"http://127.0.0.1:{rig.receiver.port}/v1/traces"
    spans = make_spans(3, RESOURCE)
    assert OTLPSpanExporter(endpoint=url, timeout=10).export(spans) == SpanExportResult.SUCCESS
    assert OTLPSpanExporter(endpoint=url, timeout=10, compression=Compression.Gzip).export(spans) == \
        SpanExportResult.SUCCESS
    table = rig.consumer.table("request_spans")
    assert table.num_rows == 6
    rows = table.to_pylist()[:3]
    assert [r["request_id"] for r in rows] == ["req-0", "req-1", "req-2"]
    assert {(r["engine_instance"], r["node"], r["model"], r["engine_kind"]) for r in rows} == {
        ("vllm-llama3-8b-0", "node-a", "llama3-8b", "vllm")}
    assert rows[0]["finish_reason"] == "stop" and rows[0]["max_tokens"] == 256
    assert (rows[0]["prompt_tokens"], rows[0]["completion_tokens"]) == (100, 20)
    assert dict(rows[0]["attributes"]) == {"gen_ai.request.temperature": "0.7"}
    labels = rig.consumer.table("trace_labels").to_pylist()
    assert len(labels) == 6 and labels[1]["tenant"] == "t1" and labels[0]["workflow"] == "summarize"
    # the caller span's trace is the engine span's trace: the join key of labels
    assert {r["trace_id"] for r in rows} == {r["trace_id"] for r in labels[:3]}
    assert all(len(r["trace_id"]) == 32 and r["trace_id"] == r["trace_id"].lower() for r in rows)
    assert rig.telemetry.value("otlp_request_spans_accepted") == 6
    assert rig.telemetry.value("otlp_http_requests", code="200") == 2


def test_json_fixture_answers_json(make_rig, fixtures_dir):
    rig = make_rig("http")
    status, ctype, body = post(rig.receiver.port, (fixtures_dir / "vllm-0.29.0-otel.redacted.json").read_bytes(),
                               ctype="application/json; charset=utf-8")
    assert (status, ctype) == (200, "application/json")
    assert json.loads(body) == {}
    assert rig.consumer.table("request_spans").column("request_id").to_pylist() == ["req-vllm-029-001"]


def test_impossible_spans_get_partial_success(make_rig):
    rig = make_rig("http")
    spans = make_spans(3, RESOURCE, overrides={1: {"gen_ai.usage.prompt_tokens": -5},
                                               2: {"gen_ai.latency.e2e": 7.0}})
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

    status, _, body = post(rig.receiver.port, encode_spans(spans).SerializeToString())
    assert status == 200
    response = ExportTraceServiceResponse.FromString(body)
    assert response.partial_success.rejected_spans == 2
    assert "1 negative_tokens" in response.partial_success.error_message
    assert "1 latency_exceeds_span" in response.partial_success.error_message
    assert rig.consumer.table("request_spans").column("request_id").to_pylist() == ["req-0"]
    assert rig.telemetry.value("otlp_spans_rejected", reason="negative_tokens", transport="http") == 1
    assert rig.telemetry.value("otlp_spans_rejected", reason="latency_exceeds_span", transport="http") == 1
    assert rig.consumer.rows("trace_labels") == 3  # caller spans are fine and kept


def test_bad_requests_get_their_status_and_the_receiver_keeps_serving(make_rig):
    rig = make_rig("http", max_request_bytes=64 * 1024, max_decompressed_bytes=256 * 1024)
    port = rig.receiver.port
    good = good_body(2)
    served = 0
    bomb = gzip.compress(b"\x00" * (50 * 1024 * 1024))  # 50 MiB of zeros in ~50 KiB
    assert len(bomb) < 64 * 1024
    cases = [
        (good[: len(good) // 2], PB, {}, 400, "bad_protobuf"),
        (b"{\"resourceSpans\": [", "application/json", {}, 400, "bad_json"),
        (good, "text/plain", {}, 415, "unsupported_media_type"),
        (b"x" * (65 * 1024), PB, {}, 413, "too_large"),
        (bomb, PB, {"Content-Encoding": "gzip"}, 413, "decompressed_too_large"),
        (b"not gzip at all", PB, {"Content-Encoding": "gzip"}, 400, "bad_gzip"),
        (good, PB, {"Content-Encoding": "br"}, 415, "unsupported_encoding"),
    ]
    for body, ctype, headers, code, reason in cases:
        status, reply_type, reply = post(port, body, ctype, headers)
        assert status == code, (reason, status, reply)
        assert rig.telemetry.value("otlp_bad_requests", reason=reason, transport="http") == 1, reason
        if reply_type == PB:
            assert status_pb2.Status.FromString(reply).message  # a reason the client can log
        served += 1
        assert_still_serving(rig, served)
    assert rig.consumer.rows("request_spans") == len(cases)  # the bad bodies added nothing
    status, _, _ = post(port, good, path="/v1/metrics")
    assert status == 404


def test_bearer_token(make_rig):
    rig = make_rig("http", bearer_token="s3cret")
    port = rig.receiver.port
    body = good_body(1)
    assert post(port, body)[0] == 401
    assert post(port, body, headers={"Authorization": "Bearer wrong"})[0] == 401
    assert rig.telemetry.value("otlp_bad_requests", reason="unauthorized", transport="http") == 2
    assert rig.consumer.rows("request_spans") == 0
    url = f"http://127.0.0.1:{port}/v1/traces"
    exporter = OTLPSpanExporter(endpoint=url, headers={"Authorization": "Bearer s3cret"}, timeout=10)
    assert exporter.export(make_spans(2, RESOURCE)) == SpanExportResult.SUCCESS
    assert rig.consumer.rows("request_spans") == 2


def test_consumer_outage_answers_503_then_recovers(make_rig):
    from collectors.component import TransientError

    rig = make_rig("http")
    real = rig.consumer.consume
    calls = {"n": 0}

    def flaky(table, data):
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientError("spool disk full")
        real(table, data)

    rig.consumer.consume = flaky
    status, _, body = post(rig.receiver.port, good_body(1))
    assert status == 503
    assert "retry later" in status_pb2.Status.FromString(body).message
    assert rig.telemetry.value("otlp_consumer_unavailable") == 1
    assert_still_serving(rig, 1)


def test_start_and_shutdown_are_idempotent(make_rig):
    rig = make_rig("http")
    port = rig.receiver.port
    rig.receiver.start()
    assert rig.receiver.port == port
    rig.receiver.shutdown(1.0)
    rig.receiver.shutdown(1.0)
    try:
        post(port, good_body(1))
        raise AssertionError("receiver still answering after shutdown")
    except OSError:
        pass


def test_rows_land_in_real_spool_segments(tmp_path):
    from collectors.config import SpoolConfig
    from collectors.otlp.config import OtlpConfig
    from collectors.otlp.factory import build_ingest
    from collectors.otlp.http_receiver import OtlpHttpReceiver
    from collectors.spool import Spool
    from collectors.telemetry import Telemetry
    from schemas.spool import list_segments, read_segment
    from schemas.tables import REQUEST_SPANS
    from tests.collectors.otlp.conftest import ENGINES

    telemetry = Telemetry()
    spool = Spool(SpoolConfig(directory=tmp_path / "spool"), telemetry, "node-a")
    spool.start()
    config = OtlpConfig(http_listen="127.0.0.1:0")
    receiver = OtlpHttpReceiver(config, build_ingest(config, ENGINES, "default", "node-a", spool, telemetry),
                                spool, telemetry)
    receiver.start()
    try:
        url = f"http://127.0.0.1:{receiver.port}/v1/traces"
        assert OTLPSpanExporter(endpoint=url, timeout=10).export(make_spans(5, RESOURCE)) == SpanExportResult.SUCCESS
    finally:
        receiver.shutdown(2.0)
    segments = {s.table: s for s in list_segments(tmp_path / "spool")}
    assert set(segments) == {"request_spans", "trace_labels"}
    spans = read_segment(segments["request_spans"].path)
    assert spans.schema.equals(REQUEST_SPANS) and spans.num_rows == 5
    assert read_segment(segments["trace_labels"].path).num_rows == 5
