"""Spans through the real OpenTelemetry SDK exporters into OTLP endpoints stood up here."""

from __future__ import annotations

import json
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from simulator.api import simulate


def _fixture_keys(fixtures_dir, name, span_pred):
    doc = json.loads((fixtures_dir / name).read_text())
    spans = doc["spans"] if "spans" in doc else doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    (span,) = [s for s in spans if span_pred(s["name"])]
    return {a["key"] for a in span["attributes"]}


def _collect(requests) -> list[tuple[dict, object]]:
    out = []
    for req in requests:
        for rs in req.resource_spans:
            res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
            for ss in rs.scope_spans:
                out += [(res, s) for s in ss.spans]
    return out


@pytest.fixture(scope="module")
def sim():
    return simulate(hours=0.05, nodes=2, seed=5)


def _check_spans(sim, spans, fixtures_dir):
    vllm_keys = _fixture_keys(fixtures_dir, "vllm-0.29.0-otel.redacted.json", lambda n: n == "llm_request")
    sglang_keys = _fixture_keys(fixtures_dir, "sglang-0.5.20-otel.redacted.json", lambda n: n.startswith("Req "))
    vllm_optional = {"gen_ai.response.model", "gen_ai.usage.cached_tokens", "gen_ai.response.finish_reasons"}
    truth = sim.request_truth().to_pydict()
    by_trace = {t: i for i, t in enumerate(truth["trace_id"])}
    engine = [(r, s) for r, s in spans if s.name == "llm_request" or s.name.startswith("Req ")]
    callers = {s.span_id: s for r, s in spans if s.name == "workflow.call"}
    assert len(engine) == sim.requests
    seen_kinds, parents = set(), {"caller": 0, "engine_span": 0, "none": 0}
    for res, s in engine:
        keys = {kv.key for kv in s.attributes}
        own = {k for k in keys if not k.startswith("fleetledger.")}
        i = by_trace[s.trace_id.hex()]
        src = truth["label_source"][i]
        if s.name == "llm_request":
            seen_kinds.add("vllm")
            assert vllm_keys <= own <= vllm_keys | vllm_optional, own ^ vllm_keys
            assert s.kind == s.SPAN_KIND_SERVER and res["service.name"] == "vllm" and "vllm.process_id" in res
        else:
            seen_kinds.add("sglang")
            assert own == sglang_keys | {"gen_ai.response.model", "gen_ai.response.finish_reasons"}
            fr = next(kv.value.string_value for kv in s.attributes if kv.key == "gen_ai.response.finish_reasons")
            assert json.loads(fr) == [truth["finish_reason"][i]]
        assert res["host.name"] in {"node-a", "node-b"}
        assert s.end_time_unix_nano - s.start_time_unix_nano == pytest.approx(truth["e2e_seconds"][i] * 1e9, abs=2)
        labels = {kv.key: kv.value.string_value for kv in s.attributes if kv.key.startswith("fleetledger.")}
        if src == "caller":
            parent = callers[s.parent_span_id]
            assert parent.trace_id == s.trace_id and parent.kind == parent.SPAN_KIND_CLIENT
            plabels = {kv.key: kv.value.string_value for kv in parent.attributes}
            assert plabels["fleetledger.workflow"] == truth["workflow"][i]
            assert plabels["fleetledger.tenant"] == truth["tenant"][i]
            assert set(plabels) == {"fleetledger.workflow", "fleetledger.tenant", "fleetledger.route",
                                    "fleetledger.reasoning_mode", "fleetledger.request_class"}
            assert not labels
        else:
            assert s.parent_span_id == b""
            assert bool(labels) == (src == "engine_span")
        parents[src] += 1
    assert seen_kinds == {"vllm", "sglang"} and all(parents.values())


def test_http_protobuf_spans_carry_fixture_keys_and_caller_labels(sim, fixtures_dir):
    received, lock = [], threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.path == "/v1/traces" and self.headers["Content-Type"] == "application/x-protobuf"
            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(body)
            with lock:
                received.append(req)
            data = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *a):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sent = sim.send_spans(f"http://127.0.0.1:{server.server_address[1]}", "http/protobuf")
    finally:
        server.shutdown()
        server.server_close()
    spans = _collect(received)
    assert sent == len(spans)
    _check_spans(sim, spans, fixtures_dir)


def test_grpc_spans_arrive_the_same(sim, fixtures_dir):
    received, lock = [], threading.Lock()

    class Service(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802
            with lock:
                received.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        sim.send_spans(f"http://127.0.0.1:{port}", "grpc")
    finally:
        server.stop(grace=1)
    _check_spans(sim, _collect(received), fixtures_dir)
