"""The transport-independent half of the receivers: decode a request, hand its rows to the
consumer, count everything, and say what to answer (accepted / partially rejected).

Both receivers call ``TraceIngest.export``; the HTTP one maps its outcome to status codes, the
gRPC one to status codes of its own. Consumer errors pass through: a ``TransientError`` means
"nothing was kept, retry" (HTTP 503 / gRPC UNAVAILABLE), anything else is a server error.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.component import Consumer
from collectors.otlp.decoder import SpanDecoder
from collectors.telemetry import Telemetry


@dataclass(frozen=True)
class ExportOutcome:
    accepted_spans: int
    accepted_labels: int
    rejected_spans: int
    ignored_spans: int
    error_message: str


class TraceIngest:
    def __init__(self, decoder: SpanDecoder, consumer: Consumer, telemetry: Telemetry) -> None:
        self.decoder = decoder
        self.consumer = consumer
        self.telemetry = telemetry

    def export(self, request, transport: str) -> ExportOutcome:
        result = self.decoder.decode(request)
        tel = self.telemetry
        if result.trace_labels.num_rows:
            self.consumer.consume("trace_labels", result.trace_labels)
        if result.request_spans.num_rows:
            self.consumer.consume("request_spans", result.request_spans)
        for reason, n in result.rejected.items():
            tel.add("otlp_spans_rejected", n, reason=reason, transport=transport)
        if result.ignored:
            tel.add("otlp_spans_ignored", result.ignored, transport=transport)
        tel.add("otlp_request_spans_accepted", result.request_spans.num_rows, transport=transport)
        tel.add("otlp_label_spans_accepted", result.trace_labels.num_rows, transport=transport)
        return ExportOutcome(result.request_spans.num_rows, result.trace_labels.num_rows,
                             result.rejected_total, result.ignored, result.rejection_message())
