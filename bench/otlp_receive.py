"""OTLP span receive throughput: HTTP body -> decoded Arrow rows -> durable spool segments.

Figures (one JSON line each):
* ``pipeline_spans_per_cpu_s``: ParseFromString + decode to Arrow + spool write (fsync'd
  segments), single thread, CPU time (``time.process_time``) — spans per second of one core;
  baseline side by side: ParseFromString + a plain Python walk over every span and attribute.
* ``http_spans_per_s``: the real OTLP/HTTP receiver on 127.0.0.1 with the real spool, fed by a
  keep-alive client in the same process (client, server and spool share one GIL); wall time.

Workload: per request one vLLM ``llm_request`` span (the vLLM 0.33 attribute set) whose parent
is a ``workflow.call`` caller span with five labels; ``--batch`` spans per export request
(the OTel SDK's BatchSpanProcessor sends at most 512).
"""

from __future__ import annotations

import http.client
import os
import random
import tempfile
import time
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.common import emit, parser
from collectors.component import MemoryConsumer
from collectors.config import SpoolConfig
from collectors.engines import EngineConfig
from collectors.otlp.config import OtlpConfig
from collectors.otlp.factory import build_ingest
from collectors.otlp.http_receiver import OtlpHttpReceiver
from collectors.telemetry import Telemetry

BENCH = "otlp_receive"
INT_KEYS = ("gen_ai.usage.prompt_tokens", "gen_ai.usage.completion_tokens", "gen_ai.request.max_tokens",
            "gen_ai.request.n")
FLOAT_KEYS = ("gen_ai.latency.time_in_queue", "gen_ai.latency.time_to_first_token", "gen_ai.latency.e2e",
              "gen_ai.latency.time_in_model_prefill", "gen_ai.latency.time_in_model_decode",
              "gen_ai.latency.time_in_model_inference", "gen_ai.request.temperature", "gen_ai.request.top_p")
LABELS = {"fleetledger.workflow": "rag", "fleetledger.tenant": "acme", "fleetledger.route": "/v1/chat",
          "fleetledger.reasoning_mode": "off", "fleetledger.request_class": "interactive"}


def make_body(spans: int, seed: int) -> bytes:
    rng = random.Random(seed)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    for key, value in (("service.name", "vllm"), ("host.name", "node-a")):
        rs.resource.attributes.add(key=key).value.string_value = value
    rs.resource.attributes.add(key="vllm.process_id").value.int_value = 7
    ss = rs.scope_spans.add()
    t0 = 1_790_000_000_000_000_000
    for i in range(spans // 2):
        trace = rng.randbytes(16)
        caller_id = rng.randbytes(8)
        start = t0 + i * 10_000_000
        caller = ss.spans.add(name="workflow.call", kind=3, trace_id=trace, span_id=caller_id,
                              start_time_unix_nano=start - 1000, end_time_unix_nano=start + 3_000_000_000)
        for key, value in LABELS.items():
            caller.attributes.add(key=key).value.string_value = value
        s = ss.spans.add(name="llm_request", kind=2, trace_id=trace, span_id=rng.randbytes(8),
                         parent_span_id=caller_id, start_time_unix_nano=start,
                         end_time_unix_nano=start + 2_000_000_000)
        s.attributes.add(key="gen_ai.request.id").value.string_value = f"cmpl-{seed}-{i}"
        s.attributes.add(key="gen_ai.response.model").value.string_value = "meta-llama/Llama-3.1-8B-Instruct"
        for key in INT_KEYS:
            s.attributes.add(key=key).value.int_value = rng.randint(1, 2000)
        for key in FLOAT_KEYS:
            s.attributes.add(key=key).value.double_value = rng.random() * 0.5
        fin = s.attributes.add(key="gen_ai.response.finish_reasons").value.array_value.values.add()
        fin.string_value = "stop"
    return req.SerializeToString()


def baseline_walk(body: bytes) -> int:
    """ParseFromString + a plain Python walk reading every span field and attribute value."""
    req = ExportTraceServiceRequest()
    req.ParseFromString(body)
    n = 0
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for span in ss.spans:
                _ = (span.name, span.trace_id, span.span_id, span.parent_span_id,
                     span.start_time_unix_nano, span.end_time_unix_nano)
                for kv in span.attributes:
                    value = kv.value
                    which = value.WhichOneof("value")
                    _ = (kv.key, getattr(value, which) if which else None)
                n += 1
    return n


def make_spool(directory: Path, telemetry: Telemetry):
    try:
        from collectors.spool import Spool
    except ImportError:  # the sidecar spool is not there: keep rows in memory and say so
        return MemoryConsumer(), "memory"
    spool = Spool(SpoolConfig(directory=directory, max_bytes=1 << 40), telemetry, "bench")
    spool.start()
    return spool, "spool"


def cpu_rate(fn, bodies: list[bytes], spans_per_body: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for body in bodies:
            fn(body)
        best = min(best, time.process_time() - t0)
    return spans_per_body * len(bodies) / best


def main(argv=None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=512, help="spans per export request")
    p.add_argument("--requests", type=int, default=None, help="export requests per pass")
    args = p.parse_args(argv)
    n_requests = args.requests or (8 if args.quick else 80)
    repeat = 2 if args.quick else 3
    bodies = [make_body(args.batch, seed) for seed in range(n_requests)]
    telemetry = Telemetry()
    config = OtlpConfig(http_listen="127.0.0.1:0", grpc_enabled=False)
    engines = [EngineConfig(instance="vllm-llama3-8b-0", model="llama3-8b", node="node-a", process_id="7")]
    with tempfile.TemporaryDirectory(prefix="fleetledger-bench-") as tmp:
        spool, sink = make_spool(Path(tmp) / "spool", telemetry)
        ingest = build_ingest(config, engines, "default", "node-a", spool, telemetry)

        def pipeline(body: bytes) -> None:
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            ingest.export(req, "bench")

        base = cpu_rate(baseline_walk, bodies, args.batch, repeat)
        ours = cpu_rate(pipeline, bodies, args.batch, repeat)
        emit(BENCH, "pipeline_spans_per_cpu_s", ours, "spans/s", baseline=round(base, 1), ratio=round(ours / base, 3),
             baseline_name="ParseFromString + plain Python walk", sink=sink, batch=args.batch,
             spans=args.batch * len(bodies), target_spans_per_s=100_000, target_ratio=0.6)

        receiver = OtlpHttpReceiver(config, ingest, spool, telemetry)
        receiver.start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=60)
            headers = {"Content-Type": "application/x-protobuf"}
            best = float("inf")
            for _ in range(repeat):
                t0 = time.perf_counter()
                for body in bodies:
                    conn.request("POST", "/v1/traces", body=body, headers=headers)
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status != 200:
                        raise SystemExit(f"receiver answered {resp.status}")
                best = min(best, time.perf_counter() - t0)
            conn.close()
        finally:
            receiver.shutdown(5.0)
        http_rate = args.batch * len(bodies) / best
        emit(BENCH, "http_spans_per_s", http_rate, "spans/s", baseline=round(base, 1),
             ratio=round(http_rate / base, 3), baseline_name="ParseFromString + plain Python walk (CPU)",
             sink=sink, batch=args.batch, cores=os.cpu_count(), note="client+server+spool in one process, wall time")


if __name__ == "__main__":
    main()
