"""Spans of the simulated requests, sent through the official OpenTelemetry SDK exporters.

One ``TracerProvider`` per engine instance (resource ``service.name`` = the instance's service
name, ``host.name`` = node, ``vllm.process_id`` for vLLM) and one for the callers
(``service.name = llm-gateway``), each with a ``BatchSpanProcessor`` over an ``OTLPSpanExporter``
(http/protobuf or gRPC). Start and end times are virtual (ns). Trace and span ids are the ones
in the ground truth (a preset ``IdGenerator``), so truth and spans join on ``trace_id``.

Per request (interfaces.md): label_source ``caller`` -> a CLIENT span ``workflow.call`` with the
``fleetledger.*`` labels, parent of the engine span (W3C traceparent context); ``engine_span`` ->
no caller span, the labels ride on the engine span; ``none`` -> no labels anywhere. Engine spans:
vLLM ``llm_request`` (SERVER) with the attribute keys of the vLLM fixture plus
``gen_ai.response.model``, ``gen_ai.usage.cached_tokens`` (when > 0) and
``gen_ai.response.finish_reasons``; SGLang ``Req <rid>`` with the SGLang fixture's keys plus
``gen_ai.response.model`` and ``gen_ai.response.finish_reasons`` as a JSON string.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator

from simulator.fleetrun import FleetRun

PROTOCOLS = ("http/protobuf", "grpc")
LABEL_KEYS = ("workflow", "tenant", "route", "reasoning_mode", "request_class")


class PresetIds(IdGenerator):
    """Hands out the ids the simulator chose (ground truth), then random ones if none is set."""

    def __init__(self) -> None:
        self.trace_id = 0
        self.span_id = 0

    def generate_trace_id(self) -> int:
        return self.trace_id

    def generate_span_id(self) -> int:
        return self.span_id


def make_exporter(endpoint: str, protocol: str, timeout_s: float = 10.0):
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        url = endpoint.rstrip("/")
        if not url.endswith("/v1/traces"):
            url += "/v1/traces"
        return OTLPSpanExporter(endpoint=url, timeout=timeout_s)
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        target = endpoint.removeprefix("http://").removeprefix("https://").rstrip("/")
        return OTLPSpanExporter(endpoint=target, insecure=not endpoint.startswith("https://"), timeout=timeout_s)
    raise ValueError(f"OTLP protocol {protocol!r}: expected one of {', '.join(PROTOCOLS)}")


class SpanSender:
    """Owns the providers and exporters; ``send(run)`` emits every request's spans."""

    def __init__(self, endpoint: str, protocol: str = "http/protobuf", flush_every: int = 4000) -> None:
        self.endpoint, self.protocol, self.flush_every = endpoint, protocol, flush_every
        self.providers: dict[str, tuple[TracerProvider, PresetIds]] = {}
        self.spans_sent = 0

    def _provider(self, key: str, attrs: dict[str, str]) -> tuple[TracerProvider, PresetIds]:
        if key not in self.providers:
            ids = PresetIds()
            provider = TracerProvider(resource=Resource.create(attrs), id_generator=ids)
            provider.add_span_processor(BatchSpanProcessor(
                make_exporter(self.endpoint, self.protocol), max_queue_size=self.flush_every * 2 + 1024,
                max_export_batch_size=512, schedule_delay_millis=200))
            self.providers[key] = (provider, ids)
        return self.providers[key]

    def flush(self) -> None:
        for provider, _ in self.providers.values():
            provider.force_flush()

    def shutdown(self) -> None:
        for provider, _ in self.providers.values():
            provider.shutdown()
        self.providers.clear()

    def send(self, run: FleetRun, progress: Callable[[int], None] | None = None) -> int:
        fleet = run.fleet
        r = run.requests
        start_ns = int(fleet.start.timestamp()) * 1_000_000_000
        truth = run.request_truth()
        col = {k: truth.column(k).to_numpy(zero_copy_only=False) for k in (
            "queue_seconds", "ttft_seconds", "prefill_seconds", "decode_seconds", "e2e_seconds")}
        arrival_ns = start_ns + np.rint(r.arrival * 1e9).astype(np.int64)
        end_ns = arrival_ns + np.rint(col["e2e_seconds"] * 1e9).astype(np.int64)
        caller, caller_ids = self._provider("caller", {"service.name": "llm-gateway", "host.name": "gateway-0"})
        caller_tracer = caller.get_tracer("fleetledger.simulator")
        engines = []
        for e in fleet.engines:
            attrs = {"service.name": e.service_name or e.engine_kind, "host.name": e.node}
            if e.engine_kind == "vllm" and e.process_id:
                attrs["vllm.process_id"] = e.process_id
            provider, ids = self._provider(e.instance, attrs)
            engines.append((e, provider.get_tracer("vllm.tracing" if e.engine_kind == "vllm" else "sglang"), ids))
        sent = 0
        for i in range(len(r)):
            e, tracer, ids = engines[r.instance[i]]
            trace_id = int(r.trace_id[i], 16)
            labels = {f"fleetledger.{k}": str(getattr(r, k)[i]) for k in LABEL_KEYS[:-1]}
            labels["fleetledger.request_class"] = "interactive" if r.workflow[i] != "batch-eval" else "batch"
            ctx = None
            if r.label_source[i] == "caller":
                caller_ids.trace_id, caller_ids.span_id = trace_id, int(r.caller_span_id[i], 16)
                parent = caller_tracer.start_span("workflow.call", kind=otel_trace.SpanKind.CLIENT, attributes=labels,
                                                  start_time=int(arrival_ns[i]) - 2_000_000)
                parent.end(end_time=int(end_ns[i]) + 1_000_000)
                ctx = otel_trace.set_span_in_context(parent)
                sent += 1
            ids.trace_id, ids.span_id = trace_id, int(r.span_id[i], 16)
            attrs = self._engine_attrs(e, r, i, col)
            if r.label_source[i] == "engine_span":
                attrs.update(labels)
            name = "llm_request" if e.engine_kind == "vllm" else f"Req {r.request_id[i]}"
            kind = otel_trace.SpanKind.SERVER if e.engine_kind == "vllm" else otel_trace.SpanKind.INTERNAL
            span = tracer.start_span(name, context=ctx, kind=kind, attributes=attrs, start_time=int(arrival_ns[i]))
            span.end(end_time=int(end_ns[i]))
            sent += 1
            if (i + 1) % self.flush_every == 0:
                self.flush()
                if progress:
                    progress(self.flush_every)
        self.flush()
        if progress:
            progress(len(r) % self.flush_every)
        self.spans_sent += sent
        return sent

    @staticmethod
    def _engine_attrs(e, r, i: int, col: dict[str, np.ndarray]) -> dict:
        prefill, decode = float(col["prefill_seconds"][i]), float(col["decode_seconds"][i])
        common = {
            "gen_ai.latency.time_to_first_token": float(col["ttft_seconds"][i]),
            "gen_ai.latency.e2e": float(col["e2e_seconds"][i]),
            "gen_ai.usage.prompt_tokens": int(r.prompt_tokens[i]),
            "gen_ai.usage.completion_tokens": int(r.completion_tokens[i]),
            "gen_ai.latency.time_in_model_prefill": prefill,
            "gen_ai.latency.time_in_model_decode": decode,
            "gen_ai.request.id": str(r.request_id[i]),
            "gen_ai.response.model": e.spec.hf_name,
        }
        if e.engine_kind == "vllm":
            common["gen_ai.latency.time_in_queue"] = float(col["queue_seconds"][i])
            if r.cached_tokens[i] > 0:
                common["gen_ai.usage.cached_tokens"] = int(r.cached_tokens[i])
            common["gen_ai.response.finish_reasons"] = [str(r.finish_reason[i])]
        else:
            common["gen_ai.usage.cached_tokens"] = int(r.cached_tokens[i])
            common["gen_ai.request.max_tokens"] = int(r.max_tokens[i])
            common["gen_ai.latency.time_in_model_inference"] = prefill + decode
            common["gen_ai.response.finish_reasons"] = json.dumps([str(r.finish_reason[i])])
        return common
