"""Span makers for the receiver tests: real OpenTelemetry SDK spans (caller + engine spans),
collected in memory so a test can hand them to the real OTLP exporters itself."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

T0 = 1_790_341_371_000_000_000  # ns


def vllm_attributes(i: int, prompt: int = 100, completion: int = 20) -> dict:
    return {
        "gen_ai.request.id": f"req-{i}",
        "gen_ai.usage.prompt_tokens": prompt,
        "gen_ai.usage.completion_tokens": completion,
        "gen_ai.request.max_tokens": 256,
        "gen_ai.request.temperature": 0.7,
        "gen_ai.latency.time_in_queue": 0.01,
        "gen_ai.latency.time_to_first_token": 0.05,
        "gen_ai.latency.e2e": 0.9,
        "gen_ai.latency.time_in_model_prefill": 0.04,
        "gen_ai.latency.time_in_model_decode": 0.8,
        "gen_ai.latency.time_in_model_inference": 0.84,
        "gen_ai.response.finish_reasons": ("stop",),
    }


def make_spans(n: int, resource: dict, labelled: bool = True, overrides: dict | None = None):
    """n vLLM request spans (1 s each), each under a labelled ``workflow.call`` caller span."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create(resource))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("test")
    for i in range(n):
        start = T0 + i * 2_000_000_000
        caller = tracer.start_span("workflow.call", kind=SpanKind.CLIENT, start_time=start - 1_000_000,
                                   attributes={"fleetledger.workflow": "summarize", "fleetledger.tenant": f"t{i % 2}",
                                               "fleetledger.route": "/v1/chat"} if labelled else {})
        from opentelemetry.trace import set_span_in_context

        attrs = {**vllm_attributes(i), **((overrides or {}).get(i, {}))}
        engine = tracer.start_span("llm_request", kind=SpanKind.SERVER, context=set_span_in_context(caller),
                                   start_time=start, attributes=attrs)
        engine.end(end_time=start + 1_000_000_000)
        caller.end(end_time=start + 1_100_000_000)
    provider.shutdown()
    return memory.get_finished_spans()
