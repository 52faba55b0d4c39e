"""The decoder on the shared vLLM and SGLang fixtures (exact rows), labels, identity, rejects."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from collectors.engines import EngineConfig, EngineResolver
from collectors.otlp.config import LabelKeys, OtlpConfig
from collectors.otlp.decoder import SpanDecoder
from collectors.otlp.otlp_json import OtlpJsonError, parse_otlp_json
from schemas.tables import REQUEST_SPANS, TRACE_LABELS

ENGINES = [
    EngineConfig(instance="vllm-llama3-8b-0", engine_kind="vllm", model="llama3-8b", node="node-a",
                 gpu_uuids=["GPU-00000000-0000-0000-0000-000000000001"], process_id="111"),
    EngineConfig(instance="vllm-llama3-8b-1", engine_kind="vllm", model="llama3-8b", node="node-a",
                 gpu_uuids=["GPU-00000000-0000-0000-0000-000000000002"], process_id="222"),
    EngineConfig(instance="sglang-deepseek-v3-0", engine_kind="sglang", model="deepseek-v3", node="node-b", tp=8),
]
TRACE = "0af7651916cd43dd8448eb211c80319c"
ROOT = "b7ad6b7169203331"


def decoder(**config) -> SpanDecoder:
    return SpanDecoder(OtlpConfig(**config), EngineResolver(ENGINES, "node-z"), "prod")


def test_vllm_fixture_decodes_to_exact_row(fixtures_dir):
    request = parse_otlp_json((fixtures_dir / "vllm-0.29.0-otel.redacted.json").read_bytes())
    result = decoder().decode(request)
    assert result.rejected == {} and result.ignored == 0 and result.trace_labels.num_rows == 0
    assert result.request_spans.schema.equals(REQUEST_SPANS)
    row = result.request_spans.to_pylist()[0]
    row.pop("received_at")
    assert row == {
        "trace_id": "", "span_id": "", "parent_span_id": "",  # the fixture's author stripped the ids
        "request_id": "req-vllm-029-001", "engine_kind": "vllm",
        "engine_instance": "unknown_service", "cluster": "prod", "node": "node-z", "model": "",
        "start_ts": datetime(2026, 9, 25, 13, 2, 51, 953418, tzinfo=UTC),
        "end_ts": datetime(2026, 9, 25, 13, 2, 52, 208341, tzinfo=UTC),
        "queue_seconds": 5.4589007049798965e-05, "ttft_seconds": 0.11554598808288574,
        "prefill_seconds": 0.057814636995317414, "decode_seconds": 0.13830458300071768,
        "inference_seconds": 0.0, "e2e_seconds": 0.25359678268432617,
        "prompt_tokens": 14, "cached_tokens": 0, "completion_tokens": 8, "max_tokens": None,
        "finish_reason": "", "workflow": "", "tenant": "", "route": "", "reasoning_mode": "",
        "request_class": "", "attributes": [],
    }


def sglang_envelope(fixtures_dir) -> dict:
    """The SGLang fixture's span list inside a proper OTLP/JSON envelope with hex ids."""
    spans = json.loads((fixtures_dir / "sglang-0.5.20-otel.redacted.json").read_text())["spans"]
    for i, span in enumerate(spans):
        span["traceId"] = TRACE
        if span["name"].startswith("Req "):
            span["spanId"] = ROOT
        else:
            span["spanId"] = f"{i + 1:016x}"
            span["parentSpanId"] = ROOT
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "sglang"}},
                                    {"key": "host.name", "value": {"stringValue": "node-b"}}]},
        "scopeSpans": [{"scope": {"name": "sglang"}, "spans": spans}],
    }]}


def test_sglang_fixture_decodes_to_exact_row_and_ignores_stage_spans(fixtures_dir):
    request = parse_otlp_json(json.dumps(sglang_envelope(fixtures_dir)).encode())
    result = decoder().decode(request)
    assert result.rejected == {}
    assert result.ignored == 9  # tokenize, dispatch, stage and thread spans
    row = result.request_spans.to_pylist()[0]
    row.pop("received_at")
    assert row == {
        "trace_id": TRACE, "span_id": ROOT, "parent_span_id": "", "request_id": "req-sglang-001",
        "engine_kind": "sglang", "engine_instance": "sglang-deepseek-v3-0", "cluster": "prod", "node": "node-b",
        "model": "deepseek-v3",
        "start_ts": datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
        "end_ts": datetime(1970, 1, 1, 0, 0, 1, 191748, tzinfo=UTC),
        "queue_seconds": 0.0, "ttft_seconds": 0.19170415302505717, "prefill_seconds": 0.18649996403837577,
        "decode_seconds": 0.00004419498145580292, "inference_seconds": 0.18654415901983157,
        "e2e_seconds": 0.19174834800651297,
        "prompt_tokens": 14, "cached_tokens": 1, "completion_tokens": 8, "max_tokens": 8,
        "finish_reason": "", "workflow": "", "tenant": "", "route": "", "reasoning_mode": "",
        "request_class": "", "attributes": [],
    }


def _attr(key, **value):
    return {"key": key, "value": value}


def _span(name, span_id, attrs, start=1_000_000_000, end=2_000_000_000, parent=""):
    return {"traceId": TRACE, "spanId": span_id, "parentSpanId": parent, "name": name,
            "startTimeUnixNano": str(start), "endTimeUnixNano": str(end), "attributes": attrs}


def _request(spans, resource=None):
    resource = resource or [_attr("service.name", stringValue="vllm"), _attr("host.name", stringValue="node-a"),
                            _attr("vllm.process_id", intValue="222")]
    doc = {"resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [{"spans": spans}]}]}
    return parse_otlp_json(json.dumps(doc).encode())


def test_labels_finish_reasons_model_and_identity():
    spans = [
        _span("workflow.call", "1111111111111111", [_attr("fleetledger.workflow", stringValue="rag"),
                                                    _attr("tenant", stringValue="bare-tenant"),
                                                    _attr("fleetledger.tenant", stringValue="acme"),
                                                    _attr("fleetledger.reasoning_mode", stringValue="think")]),
        _span("llm_request", "2222222222222222", [
            _attr("gen_ai.request.id", stringValue="r1"),
            _attr("gen_ai.usage.prompt_tokens", intValue="40"),
            _attr("gen_ai.usage.completion_tokens", intValue=5),  # JSON number, not string
            _attr("gen_ai.usage.cached_tokens", intValue="16"),
            _attr("gen_ai.latency.e2e", doubleValue=0.5),
            _attr("gen_ai.latency.time_in_model_decode", intValue="0"),  # int where a double is expected
            _attr("gen_ai.response.finish_reasons", stringValue='["stop", "length"]'),
            _attr("gen_ai.response.model", stringValue="meta-llama/Llama-3-8B"),
            _attr("gen_ai.request.top_p", doubleValue=0.9),
            _attr("route", stringValue="/chat"),
        ], parent="1111111111111111"),
        _span("HTTP GET", "3333333333333333", [_attr("http.route", stringValue="/x")]),
    ]
    result = decoder().decode(_request(spans))
    assert result.ignored == 1
    labels = result.trace_labels.to_pylist()
    assert result.trace_labels.schema.equals(TRACE_LABELS)
    assert [(r["trace_id"], r["span_id"], r["workflow"], r["tenant"], r["route"], r["reasoning_mode"])
            for r in labels] == [(TRACE, "1111111111111111", "rag", "acme", "", "think")]
    row = result.request_spans.to_pylist()[0]
    assert (row["engine_instance"], row["node"], row["model"]) == ("vllm-llama3-8b-1", "node-a", "llama3-8b")
    assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"]) == (40, 5, 16)
    assert row["finish_reason"] == "stop,length"
    assert row["route"] == "/chat" and row["workflow"] == ""
    assert row["parent_span_id"] == "1111111111111111"
    assert dict(row["attributes"]) == {"gen_ai.response.model": "meta-llama/Llama-3-8B", "gen_ai.request.top_p": "0.9"}


def test_configured_label_keys_replace_defaults():
    spans = [_span("caller", "1111111111111111", [_attr("app.flow", stringValue="agent"),
                                                  _attr("fleetledger.workflow", stringValue="ignored")])]
    result = decoder(labels=LabelKeys(workflow=["app.flow"])).decode(_request(spans))
    assert result.trace_labels.column("workflow").to_pylist() == ["agent"]


GOOD = [("gen_ai.usage.prompt_tokens", {"intValue": "10"}), ("gen_ai.usage.completion_tokens", {"intValue": "5"}),
        ("gen_ai.latency.e2e", {"doubleValue": 0.9}), ("gen_ai.latency.time_in_queue", {"doubleValue": 0.1}),
        ("gen_ai.latency.time_in_model_prefill", {"doubleValue": 0.2}),
        ("gen_ai.latency.time_in_model_decode", {"doubleValue": 0.5})]


@pytest.mark.parametrize(("change", "reason"), [
    ({"gen_ai.usage.prompt_tokens": {"intValue": "-3"}}, "negative_tokens"),
    ({"gen_ai.usage.completion_tokens": {"intValue": str(1 << 40)}}, "tokens_out_of_range"),
    ({"gen_ai.usage.cached_tokens": {"intValue": "11"}}, "cached_exceeds_prompt"),
    ({"gen_ai.latency.e2e": {"doubleValue": "NaN"}}, "non_finite"),
    ({"gen_ai.latency.e2e": {"stringValue": "fast"}}, "non_finite"),
    ({"gen_ai.usage.prompt_tokens": {"stringValue": "many"}}, "invalid_value"),
    ({"gen_ai.latency.e2e": {"doubleValue": 1.5}}, "latency_exceeds_span"),
    ({"gen_ai.latency.time_in_queue": {"doubleValue": -0.1}}, "negative_latency"),
    ({"gen_ai.latency.time_in_model_decode": {"doubleValue": 0.75}}, "phases_exceed_span"),
    ({"end": 500_000_000}, "end_before_start"),
])
def test_impossible_request_spans_are_rejected_by_reason(change, reason):
    def span(span_id, changes):
        attrs = dict(GOOD)
        attrs.update({k: v for k, v in changes.items() if k != "end"})
        return _span("llm_request", span_id, [{"key": k, "value": v} for k, v in attrs.items()],
                     end=changes.get("end", 2_000_000_000))

    result = decoder().decode(_request([span("2222222222222222", {}), span("4444444444444444", change)]))
    assert result.rejected == {reason: 1}
    assert result.request_spans.column("span_id").to_pylist() == ["2222222222222222"]
    assert reason in result.rejection_message()


def test_wrong_length_ids_rejected_and_empty_request_is_empty():
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.name, span.trace_id, span.span_id = "llm_request", b"\x01" * 5, b"\x02" * 8
    span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
    result = decoder().decode(request)
    assert result.rejected == {"invalid_id": 1} and result.request_spans.num_rows == 0
    empty = decoder().decode(ExportTraceServiceRequest())
    assert empty.request_spans.num_rows == 0 and empty.trace_labels.num_rows == 0 and empty.rejected == {}


def test_slack_allows_clock_rounding_but_not_more():
    base = [_attr("gen_ai.latency.e2e", doubleValue=1.0 + 0.0005)]
    assert decoder().decode(_request([_span("llm_request", "2222222222222222", base)])).rejected == {}
    strict = decoder(latency_slack_s=0.0, latency_slack_ratio=0.0)
    assert strict.decode(_request([_span("llm_request", "2222222222222222", base)])).rejected == {
        "latency_exceeds_span": 1}


def test_otlp_json_errors_say_where():
    with pytest.raises(OtlpJsonError, match="invalid JSON"):
        parse_otlp_json(b"{not json")
    bad = {"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz-not-hex", "name": "x"}]}]}]}
    with pytest.raises(OtlpJsonError, match=r"spans\[0\]\.traceId is not hex"):
        parse_otlp_json(json.dumps(bad).encode())
    with pytest.raises(OtlpJsonError):
        parse_otlp_json(b"[1, 2]")
    wrong_type = {"resourceSpans": [{"scopeSpans": [{"spans": [{"name": 5, "startTimeUnixNano": "x"}]}]}]}
    with pytest.raises(OtlpJsonError):
        parse_otlp_json(json.dumps(wrong_type).encode())


def test_rows_insert_into_the_real_store(store, fixtures_dir):
    result = decoder().decode(parse_otlp_json(json.dumps(sglang_envelope(fixtures_dir)).encode()))
    assert store.insert("request_spans", result.request_spans) == 1
    got = store.query_arrow("SELECT request_id, cached_tokens, e2e_seconds, node FROM request_spans").to_pylist()
    assert got[0]["request_id"] == "req-sglang-001" and got[0]["cached_tokens"] == 1
    assert math.isclose(got[0]["e2e_seconds"], 0.19174834800651297) and got[0]["node"] == "node-b"
