"""OTLP/JSON -> ``ExportTraceServiceRequest``.

OTLP/JSON differs from the protobuf JSON mapping in one way that matters here: trace and span
ids are hex strings, not base64. They are rewritten to base64, then the protobuf JSON parser
does the rest (camelCase keys, 64-bit integers given as strings, enums as integers, unknown
fields ignored as the OTLP specification asks).
"""

from __future__ import annotations

import base64
import binascii
import json

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

_ID_KEYS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


class OtlpJsonError(ValueError):
    """A body that is not valid OTLP/JSON; the message says where."""


def _hex_to_b64(obj: dict, where: str) -> None:
    for key in _ID_KEYS:
        value = obj.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise OtlpJsonError(f"{where}.{key} must be a hex string")
        try:
            obj[key] = base64.b64encode(binascii.unhexlify(value)).decode("ascii")
        except (binascii.Error, ValueError):
            raise OtlpJsonError(f"{where}.{key} is not hex: {value[:40]!r}") from None


def parse_otlp_json(body: bytes) -> ExportTraceServiceRequest:
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise OtlpJsonError(f"invalid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise OtlpJsonError("the body must be a JSON object with 'resourceSpans'")
    try:
        for i, rs in enumerate(doc.get("resourceSpans") or doc.get("resource_spans") or []):
            for j, ss in enumerate(rs.get("scopeSpans") or rs.get("scope_spans") or []):
                for k, span in enumerate(ss.get("spans") or []):
                    where = f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]"
                    _hex_to_b64(span, where)
                    for m, link in enumerate(span.get("links") or []):
                        _hex_to_b64(link, f"{where}.links[{m}]")
    except (AttributeError, TypeError):
        raise OtlpJsonError("resourceSpans/scopeSpans/spans must be arrays of objects") from None
    try:
        return json_format.ParseDict(doc, ExportTraceServiceRequest(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpJsonError(f"not an OTLP ExportTraceServiceRequest: {exc}") from None
