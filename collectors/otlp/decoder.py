"""Decode an OTLP ``ExportTraceServiceRequest`` straight into ``request_spans`` and
``trace_labels`` Arrow tables.

One pass over the spans fills one flat row list per span (no dict, no object per span) and
two flat key/value lists for the other attributes of all spans; the rows are transposed once
(``zip``) into columns, checked with vectorised numpy masks, and built into Arrow arrays of
the exact contract types (ids hex-encoded in one numpy step, the attribute map from offsets),
so the spool writes them without a cast. Which spans count:

* request spans: vLLM ``llm_request`` (names configurable) and SGLang root spans
  ``Req <rid>`` / ``<role> Req <rid>``; one ``request_spans`` row each;
* caller spans: any other span carrying a label key (``OtlpConfig.labels``): one
  ``trace_labels`` row each;
* everything else (SGLang stage spans, HTTP spans...) is ignored and counted.

A request span with impossible values is rejected (OTLP partial success) with one of the
reasons in ``REJECT_REASONS``: ids of the wrong length, non-numeric or non-finite numbers,
negative or out-of-range token counts, cached > prompt tokens, end before start, negative
latencies, a latency longer than the span, or queue + prefill + decode longer than the span
(slack: ``latency_slack_s + latency_slack_ratio * duration``). Missing token or latency
attributes read as 0; ``gen_ai.response.finish_reasons`` may be an array or (SGLang) a JSON
string; several reasons are joined with ','.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from collectors.engines import EngineResolver
from collectors.otlp.columns import hex_column, repeat_string, repeat_timestamp, resource_columns
from collectors.otlp.config import LABEL_COLUMNS, OtlpConfig
from schemas.tables import LABELS, REQUEST_SPANS, TRACE_LABELS, TS_US

# value kinds of known attributes
_INT, _FLOAT, _STR, _FINISH, _MODEL, _LABEL = range(6)

# row layout of a request span
(R_TRACE, R_SPAN, R_PARENT, R_START, R_END, R_RES, R_KIND, R_MODEL, R_REQID,
 R_PROMPT, R_COMPLETION, R_CACHED, R_MAXTOK,
 R_QUEUE, R_TTFT, R_E2E, R_PREFILL, R_DECODE, R_INFER,
 R_FINISH, R_WF, R_TENANT, R_ROUTE, R_RMODE, R_RCLASS, R_ATTRS) = range(26)
_INT_SLOTS = (R_PROMPT, R_COMPLETION, R_CACHED)
_FLOAT_SLOTS = (R_QUEUE, R_TTFT, R_E2E, R_PREFILL, R_DECODE, R_INFER)
_LABEL0 = R_WF
_FLOAT_COLUMNS = ("queue_seconds", "ttft_seconds", "e2e_seconds", "prefill_seconds", "decode_seconds",
                  "inference_seconds")  # in _FLOAT_SLOTS order
_TOKEN_COLUMNS = ("prompt_tokens", "completion_tokens", "cached_tokens")  # in _INT_SLOTS order
_REQUEST_NAMES = tuple(REQUEST_SPANS.names)

REQUEST_ATTRIBUTES: dict[str, tuple[int, int]] = {
    "gen_ai.request.id": (R_REQID, _STR),
    "gen_ai.usage.prompt_tokens": (R_PROMPT, _INT),
    "gen_ai.usage.input_tokens": (R_PROMPT, _INT),
    "gen_ai.usage.completion_tokens": (R_COMPLETION, _INT),
    "gen_ai.usage.output_tokens": (R_COMPLETION, _INT),
    "gen_ai.usage.cached_tokens": (R_CACHED, _INT),
    "gen_ai.request.max_tokens": (R_MAXTOK, _INT),
    "gen_ai.latency.time_in_queue": (R_QUEUE, _FLOAT),
    "gen_ai.latency.time_to_first_token": (R_TTFT, _FLOAT),
    "gen_ai.latency.e2e": (R_E2E, _FLOAT),
    "gen_ai.latency.time_in_model_prefill": (R_PREFILL, _FLOAT),
    "gen_ai.latency.time_in_model_decode": (R_DECODE, _FLOAT),
    "gen_ai.latency.time_in_model_inference": (R_INFER, _FLOAT),
    "gen_ai.response.finish_reasons": (R_FINISH, _FINISH),
    "gen_ai.response.model": (R_MODEL, _MODEL),
}

REJECT_REASONS = (
    "invalid_id", "invalid_value", "non_finite", "negative_tokens", "tokens_out_of_range",
    "cached_exceeds_prompt", "end_before_start", "negative_latency", "latency_exceeds_span",
    "phases_exceed_span",
)
_BAD_INT = -(1 << 62)  # marks a numeric attribute whose value is not a number
_U32_MAX = (1 << 32) - 1
_SGLANG_ROOT = re.compile(r"^(?:\S+ )?Req \S")


@dataclass
class DecodeResult:
    request_spans: pa.Table
    trace_labels: pa.Table
    rejected: dict[str, int] = field(default_factory=dict)
    ignored: int = 0

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def rejection_message(self) -> str:
        if not self.rejected:
            return ""
        parts = ", ".join(f"{n} {reason}" for reason, n in sorted(self.rejected.items()))
        return f"rejected {self.rejected_total} request span(s) with impossible values: {parts}"


def _any_value(v) -> object:
    """A Python value of an OTLP AnyValue (arrays and maps as JSON text)."""
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return json.dumps([_any_value(x) for x in v.array_value.values])
    if which == "kvlist_value":
        return json.dumps({kv.key: _any_value(kv.value) for kv in v.kvlist_value.values})
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def _as_text(v) -> str:
    text = v.string_value  # the common case first: one call
    if text:
        return text
    which = v.WhichOneof("value")
    if which == "double_value" or which == "int_value":
        return str(getattr(v, which))
    x = _any_value(v)
    if x is None:
        return ""
    if isinstance(x, bool):
        return "true" if x else "false"
    return x if isinstance(x, str) else str(x)


def _as_number(v) -> float | None:
    x = _any_value(v)
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, int | float):
        return x
    try:
        return float(x)
    except (TypeError, ValueError):
        return None


def _finish_reasons(v) -> str:
    if v.WhichOneof("value") == "array_value":
        return ",".join([x.string_value or _as_text(x) for x in v.array_value.values])
    text = _as_text(v)
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        if isinstance(parsed, list):
            return ",".join(str(x) for x in parsed)
    return text


class SpanDecoder:
    """Turns ExportTraceServiceRequest messages into contract tables. Thread-safe."""

    def __init__(self, config: OtlpConfig, resolver: EngineResolver, cluster: str) -> None:
        self.config = config
        self.resolver = resolver
        self.cluster = cluster
        self.request_names = frozenset(config.request_span_names)
        label_map = config.labels.key_map()
        self.label_map = label_map
        self.keymap: dict[str, tuple[int, int]] = dict(REQUEST_ATTRIBUTES)
        for key, (col, prio) in label_map.items():
            self.keymap[key] = (_LABEL0 + col, _LABEL + prio)
        self.float_slots = {key: slot for key, (slot, vkind) in self.keymap.items() if vkind == _FLOAT}
        self.slack_s = config.latency_slack_s
        self.slack_ratio = config.latency_slack_ratio

    # ------------------------------------------------------------------ walk

    def decode(self, request) -> DecodeResult:
        keymap_get = self.keymap.get
        float_get = self.float_slots.get
        label_get = self.label_map.get
        request_names = self.request_names
        keep_other = self.config.keep_other_attributes
        rows: list[list] = []
        labels: list[list] = []
        resources: list[tuple[str, str, str, str]] = []
        # other attributes of all request spans, flat; row[R_ATTRS] holds each span's count
        other_keys: list[str] = []
        other_values: list[str] = []
        add_row, add_label = rows.append, labels.append
        add_key, add_value = other_keys.append, other_values.append
        ignored = 0
        for rs in request.resource_spans:
            ident = self._identity(rs.resource)
            res_index = len(resources)
            resources.append((ident.instance, ident.node, ident.engine_kind, ident.model))
            res_kind, res_model = ident.engine_kind, ident.model
            for ss in rs.scope_spans:
                for span in ss.spans:
                    name = span.name
                    if name in request_names:
                        kind = "vllm"
                    elif "Req " in name and _SGLANG_ROOT.match(name):
                        kind = "sglang"
                    else:
                        found = None
                        for kv in span.attributes:
                            hit = label_get(kv.key)
                            if hit is not None:
                                if found is None:
                                    found = [span.trace_id, span.span_id, span.start_time_unix_nano, "", "", "", "", "",
                                             99, 99, 99, 99, 99]
                                col, prio = hit
                                if prio < found[8 + col]:
                                    found[8 + col] = prio
                                    v = kv.value
                                    found[3 + col] = v.string_value or _as_text(v)
                        if found is None:
                            ignored += 1
                        else:
                            add_label(found)
                        continue
                    r = [span.trace_id, span.span_id, span.parent_span_id, span.start_time_unix_nano,
                         span.end_time_unix_nano, res_index, res_kind or kind, res_model, "",
                         0, 0, 0, None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "", "", "", "", "", "", 0]
                    n_other = 0
                    prios = None
                    for kv in span.attributes:
                        key = kv.key
                        slot = float_get(key)
                        if slot is not None:
                            v = kv.value
                            x = v.double_value
                            if x == 0.0 and v.WhichOneof("value") != "double_value":
                                x = _as_number(v)
                                x = float("nan") if x is None else float(x)
                            r[slot] = x
                            continue
                        hit = keymap_get(key)
                        if hit is None:
                            if keep_other:
                                v = kv.value
                                which = v.WhichOneof("value")
                                if which == "string_value":
                                    add_value(v.string_value)
                                elif which == "double_value" or which == "int_value":
                                    add_value(str(getattr(v, which)))
                                else:
                                    add_value(_as_text(v))
                                add_key(key)
                                n_other += 1
                            continue
                        slot, vkind = hit
                        v = kv.value
                        if vkind == _FLOAT:
                            x = v.double_value
                            if x == 0.0 and v.WhichOneof("value") != "double_value":
                                x = _as_number(v)
                                x = float("nan") if x is None else float(x)
                            r[slot] = x
                        elif vkind == _INT:
                            x = v.int_value
                            if x == 0 and v.WhichOneof("value") != "int_value":
                                x = _as_number(v)
                                x = int(x) if x is not None and x == x and abs(x) < 1e18 and x == int(x) else _BAD_INT
                            r[slot] = x
                        elif vkind == _STR:
                            r[slot] = v.string_value or _as_text(v)
                        elif vkind == _FINISH:
                            values = v.array_value.values
                            if len(values) == 1:
                                x = values[0]
                                r[slot] = x.string_value or _as_text(x)
                            else:
                                r[slot] = _finish_reasons(v)
                        elif vkind == _MODEL:
                            text = v.string_value or _as_text(v)
                            if not r[R_MODEL]:
                                r[R_MODEL] = text
                            if keep_other:
                                add_key(key)
                                add_value(text)
                                n_other += 1
                        else:  # label
                            prio = vkind - _LABEL
                            if prios is None:
                                prios = [99] * 5
                            col = slot - _LABEL0
                            if prio < prios[col]:
                                prios[col] = prio
                                r[slot] = v.string_value or _as_text(v)
                    r[R_ATTRS] = n_other
                    add_row(r)
        received = time.time_ns() // 1_000_000
        spans, rejected = self._request_table(rows, resources, other_keys, other_values, received)
        label_table, bad_labels = self._label_table(labels, received)
        if bad_labels:
            rejected["invalid_id"] = rejected.get("invalid_id", 0) + bad_labels
        return DecodeResult(spans, label_table, rejected, ignored)

    def _identity(self, resource):
        service = process_id = host = ""
        for kv in resource.attributes:
            key = kv.key
            if key == "service.name":
                service = _as_text(kv.value)
            elif key == "vllm.process_id":
                process_id = _as_text(kv.value)
            elif key == "host.name":
                host = _as_text(kv.value)
        return self.resolver.resolve(service, process_id, host)

    # ------------------------------------------------------------------ columns

    def _request_table(self, rows: list[list], resources, other_keys: list[str], other_values: list[str],
                       received_ms: int) -> tuple[pa.Table, dict[str, int]]:
        if not rows:
            return REQUEST_SPANS.empty_table(), {}
        cols = list(zip(*rows, strict=True))
        n = len(rows)
        trace_len = np.fromiter(map(len, cols[R_TRACE]), dtype=np.int32, count=n)
        span_len = np.fromiter(map(len, cols[R_SPAN]), dtype=np.int32, count=n)
        parent_len = np.fromiter(map(len, cols[R_PARENT]), dtype=np.int32, count=n)
        start = np.fromiter(cols[R_START], dtype=np.uint64, count=n).astype(np.int64)
        end = np.fromiter(cols[R_END], dtype=np.uint64, count=n).astype(np.int64)
        ints = np.array([cols[s] for s in _INT_SLOTS], dtype=np.int64)
        max_tok = np.array([-1 if x is None else x for x in cols[R_MAXTOK]], dtype=np.int64)
        floats = np.array([cols[s] for s in _FLOAT_SLOTS], dtype=np.float64)
        duration = (end - start) / 1e9
        slack = self.slack_s + self.slack_ratio * np.abs(duration)
        with np.errstate(invalid="ignore"):
            checks = [
                ((trace_len != 0) & (trace_len != 16)) | ((span_len != 0) & (span_len != 8))
                | ((parent_len != 0) & (parent_len != 8)),
                (ints == _BAD_INT).any(axis=0) | (max_tok == _BAD_INT),
                ~np.isfinite(floats).all(axis=0),
                (ints < 0).any(axis=0) | ((max_tok < 0) & (max_tok != -1)),
                (ints > _U32_MAX).any(axis=0) | (max_tok > _U32_MAX),
                ints[2] > ints[0],
                end < start,
                (floats < 0).any(axis=0),
                (floats > duration + slack).any(axis=0),
                floats[0] + floats[3] + floats[4] > duration + slack,
            ]
        reason = np.full(n, -1, dtype=np.int64)
        for code in range(len(checks) - 1, -1, -1):  # the first failing check names the reason
            reason[checks[code]] = code
        keep = reason < 0
        all_kept = bool(keep.all())
        rejected = {} if all_kept else {
            REJECT_REASONS[c]: int(k) for c, k in enumerate(np.bincount(reason[~keep], minlength=len(checks))) if k}
        instance, node = resource_columns(resources, cols[R_RES], n)
        safe = keep  # rejected rows are filtered out below; zero them so the uint32 cast is defined
        tokens = np.where(safe, ints, 0).astype(np.uint32)
        has_max = safe & (max_tok >= 0)
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(cols[R_ATTRS], out=offsets[1:])
        data = {
            "trace_id": hex_column(cols[R_TRACE], trace_len),
            "span_id": hex_column(cols[R_SPAN], span_len),
            "parent_span_id": hex_column(cols[R_PARENT], parent_len),
            "request_id": pa.array(cols[R_REQID], pa.string()),
            "engine_kind": pa.array(cols[R_KIND], pa.string()),
            "engine_instance": instance,
            "cluster": repeat_string(self.cluster, n),
            "node": node,
            "model": pa.array(cols[R_MODEL], pa.string()),
            "start_ts": pa.array(start // 1000, TS_US),
            "end_ts": pa.array(end // 1000, TS_US),
            "max_tokens": pa.array(np.where(has_max, max_tok, 0).astype(np.uint32), pa.uint32(), mask=~has_max),
            "finish_reason": pa.array(cols[R_FINISH], pa.string()),
            "attributes": pa.MapArray.from_arrays(offsets, pa.array(other_keys, pa.string()),
                                                  pa.array(other_values, pa.string()), type=LABELS),
            "received_at": repeat_timestamp(received_ms, n),
        }
        for name, row in zip(_FLOAT_COLUMNS, floats, strict=True):
            data[name] = pa.array(row, pa.float64())
        for name, row in zip(_TOKEN_COLUMNS, tokens, strict=True):
            data[name] = pa.array(row, pa.uint32())
        for i, name in enumerate(LABEL_COLUMNS):
            data[name] = pa.array(cols[_LABEL0 + i], pa.string())
        arrays = [data[name] for name in _REQUEST_NAMES]
        table = pa.Table.from_arrays(arrays, schema=REQUEST_SPANS)
        if not all_kept:
            table = table.filter(pa.array(keep))
        return table, rejected

    def _label_table(self, labels: list[list], received_ms: int) -> tuple[pa.Table, int]:
        if not labels:
            return TRACE_LABELS.empty_table(), 0
        cols = list(zip(*labels, strict=True))
        n = len(labels)
        trace_len = np.fromiter(map(len, cols[0]), dtype=np.int32, count=n)
        span_len = np.fromiter(map(len, cols[1]), dtype=np.int32, count=n)
        keep = (trace_len == 16) & (span_len == 8)
        data = {
            "trace_id": hex_column(cols[0], trace_len),
            "span_id": hex_column(cols[1], span_len),
            "ts": pa.array(np.fromiter(cols[2], dtype=np.uint64, count=n).astype(np.int64) // 1000, TS_US),
            "received_at": repeat_timestamp(received_ms, n),
        }
        for i, name in enumerate(LABEL_COLUMNS):
            data[name] = pa.array(cols[3 + i], pa.string())
        table = pa.Table.from_arrays([data[name] for name in TRACE_LABELS.names], schema=TRACE_LABELS)
        dropped = n - int(keep.sum())
        if dropped:
            table = table.filter(pa.array(keep))
        return table, dropped

