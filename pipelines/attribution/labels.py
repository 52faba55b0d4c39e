"""Who a request belongs to: workflow, tenant, route, reasoning mode, request class.

Resolution order, per label: the request span itself; else the earliest caller span of the same
trace that carries it (``trace_labels``; vLLM forwards only ``traceparent``, not baggage); else
the request id, parsed with a configurable regular expression whose named groups are label
names; else ``"unlabelled"`` (``request_class`` falls back to ``""``). Requests are never dropped.

Default request-id pattern (``DEFAULT_REQUEST_ID_PATTERN``): ``<workflow>/<tenant>/<rest>``, e.g.
``summarize/acme/5f1c...``; clients that set ``X-Request-Id`` that way are labelled without
tracing. Ids such as vLLM's ``chatcmpl-<uuid>`` do not match and stay unlabelled.
"""

from __future__ import annotations

import re

import polars as pl

LABEL_FIELDS = ("workflow", "tenant", "route", "reasoning_mode", "request_class")
UNLABELLED = "unlabelled"
DEFAULT_REQUEST_ID_PATTERN = r"^(?P<workflow>[A-Za-z][A-Za-z0-9_.\-]*)/(?P<tenant>[A-Za-z][A-Za-z0-9_.\-]*)/."


def _fallback(name: str) -> str:
    return "" if name == "request_class" else UNLABELLED


def resolve_labels(spans: pl.DataFrame, trace_labels: pl.DataFrame, request_id_pattern: str | None) -> pl.DataFrame:
    """``spans`` with every label column resolved and a ``label_source`` column
    ('span' | 'trace' | 'request_id' | 'none', for the workflow label)."""
    if not trace_labels.is_empty():
        per_trace = (
            trace_labels.lazy()
            .sort("ts")
            .group_by("trace_id")
            .agg([pl.col(f).filter(pl.col(f) != "").first().alias(f"_tl_{f}") for f in LABEL_FIELDS])
            .collect()
        )
        out = spans.join(per_trace, on="trace_id", how="left", maintain_order="left")
    else:
        out = spans.with_columns([pl.lit(None, dtype=pl.String).alias(f"_tl_{f}") for f in LABEL_FIELDS])
    groups = set(re.compile(request_id_pattern).groupindex) if request_id_pattern else set()
    parsed = []
    if groups:
        out = out.with_columns(_rid=pl.col("request_id").str.extract_groups(request_id_pattern))
        parsed = [f for f in LABEL_FIELDS if f in groups]
    exprs = []
    for f in LABEL_FIELDS:
        chain = pl.when(pl.col(f) != "").then(pl.col(f))
        chain = chain.when(pl.col(f"_tl_{f}").is_not_null()).then(pl.col(f"_tl_{f}"))
        if f in parsed:
            rid = pl.col("_rid").struct.field(f)
            chain = chain.when(rid.is_not_null() & (rid != "")).then(rid)
        exprs.append(chain.otherwise(pl.lit(_fallback(f))).alias(f))
    wf_rid = pl.col("_rid").struct.field("workflow") if "workflow" in parsed else pl.lit(None, dtype=pl.String)
    source = (
        pl.when(pl.col("workflow") != "").then(pl.lit("span"))
        .when(pl.col("_tl_workflow").is_not_null()).then(pl.lit("trace"))
        .when(wf_rid.is_not_null() & (wf_rid != "")).then(pl.lit("request_id"))
        .otherwise(pl.lit("none")).alias("label_source")
    )
    out = out.with_columns([*exprs, source])
    return out.drop([c for c in out.columns if c.startswith("_tl_") or c == "_rid"])
