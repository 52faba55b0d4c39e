"""``POST /v1/expert-loads``: expert loads pushed by any engine, as JSON or an Arrow IPC stream.

The receiver's HTTP server calls ``handle_push(body, content_type, consumer, telemetry)`` and
sends back the returned ``(status, json_body)``. Bodies:

- ``application/json``: ``{"rows": [{"window_start", "window_end", "engine_instance", "model",
  "layer", "expert", "tokens"[, "cluster"]}, ...]}``; times are ISO-8601 strings (UTC when no
  offset is given) or integer epoch milliseconds.
- ``application/vnd.apache.arrow.stream`` (also ``application/x-arrow-stream``): one IPC
  stream with those columns; times as timestamps (any unit) or int64 epoch milliseconds.

Rows are checked column-wise (non-empty instance, layer 0..65535, expert and tokens
non-negative integers, window_end after window_start). Valid rows are accepted even when
others are not (partial success: ``accepted``, ``rejected`` and the first few ``errors``);
a body with nothing valid is a 400, an unknown content type 415, too many rows 413, and a
consumer that is unavailable a 503 (the client retries; nothing was accepted).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from collectors.component import Consumer, PermanentError, TransientError
from collectors.telemetry import Telemetry
from schemas.tables import TS_MS, conform

JSON_TYPES = {"application/json"}
ARROW_TYPES = {"application/vnd.apache.arrow.stream", "application/x-arrow-stream", "application/x-arrow"}
REQUIRED = ("window_start", "window_end", "engine_instance", "layer", "expert", "tokens")
MAX_ERRORS_REPORTED = 10
_INT_TYPES = {"layer": pa.int64(), "expert": pa.int64(), "tokens": pa.int64()}


class _BadBody(ValueError):
    pass


def _ts_value(value: object) -> int | None:
    """Epoch ms of a JSON time value, None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=UTC)
        return int(dt.timestamp() * 1000)
    return None


def _int_value(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _json_table(body: bytes) -> pa.Table:
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadBody(f"body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise _BadBody('expected a JSON object {"rows": [...]}')
    rows = doc["rows"]
    cols: dict[str, list] = {k: [] for k in (*REQUIRED, "model", "cluster")}
    for row in rows:
        if not isinstance(row, dict):
            row = {}
        cols["window_start"].append(_ts_value(row.get("window_start")))
        cols["window_end"].append(_ts_value(row.get("window_end")))
        inst = row.get("engine_instance")
        cols["engine_instance"].append(inst if isinstance(inst, str) else None)
        model = row.get("model", "")
        cols["model"].append(model if isinstance(model, str) else None)
        cluster = row.get("cluster")
        cols["cluster"].append(cluster if isinstance(cluster, str) else None)
        for k in ("layer", "expert", "tokens"):
            v = _int_value(row.get(k))
            cols[k].append(v if v is None or -(2**63) <= v < 2**63 else -1)
    return pa.table({
        "window_start": pa.array(cols["window_start"], type=pa.int64()),
        "window_end": pa.array(cols["window_end"], type=pa.int64()),
        "engine_instance": pa.array(cols["engine_instance"], type=pa.string()),
        "model": pa.array(cols["model"], type=pa.string()),
        "cluster": pa.array(cols["cluster"], type=pa.string()),
        **{k: pa.array(cols[k], type=pa.int64()) for k in ("layer", "expert", "tokens")},
    })


def _arrow_table(body: bytes) -> pa.Table:
    try:
        table = ipc.open_stream(pa.BufferReader(body)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise _BadBody(f"body is not an Arrow IPC stream: {exc}") from None
    missing = [c for c in REQUIRED if c not in table.column_names]
    if missing:
        raise _BadBody(f"Arrow body lacks column(s) {', '.join(missing)}")
    out = {}
    try:
        for k in ("window_start", "window_end"):
            col = table.column(k)
            if pa.types.is_timestamp(col.type):
                col = col.cast(pa.timestamp("ms", tz="UTC")).cast(pa.int64())
            out[k] = col.cast(pa.int64())
        for k in ("engine_instance", "model", "cluster"):
            out[k] = table.column(k).cast(pa.string()) if k in table.column_names else pa.nulls(table.num_rows, pa.string())
        for k, t in _INT_TYPES.items():
            col = table.column(k)
            if pa.types.is_floating(col.type):
                raise _BadBody(f"column {k} must hold integers, found {col.type}")
            out[k] = col.cast(t, safe=True) if not pa.types.is_uint64(col.type) else _uint64_to_int64(col)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise _BadBody(f"Arrow body has a column of the wrong type: {exc}") from None
    if "model" not in table.column_names:
        out["model"] = pa.array([""] * table.num_rows, type=pa.string())
    return pa.table(out)


def _uint64_to_int64(col: pa.ChunkedArray) -> pa.ChunkedArray:
    values = col.to_numpy(zero_copy_only=False)
    return pa.chunked_array([pa.array(np.where(values > 2**63 - 1, -1, values).astype(np.int64), mask=col.is_null().to_numpy(zero_copy_only=False))])


def _validate(t: pa.Table) -> tuple[pa.Array, list[str]]:
    """A boolean mask of valid rows and the reasons of the first invalid ones."""
    checks = [
        ("window_start missing or not ISO-8601 / epoch ms", pc.is_valid(t["window_start"])),
        ("window_end missing or not ISO-8601 / epoch ms", pc.is_valid(t["window_end"])),
        ("window_end must be after window_start", pc.fill_null(pc.greater(t["window_end"], t["window_start"]), False)),
        ("engine_instance must be a non-empty string", pc.fill_null(pc.greater(pc.utf8_length(t["engine_instance"]), 0), False)),
        ("model must be a string", pc.is_valid(t["model"])),
        ("layer must be an integer 0..65535", pc.fill_null(pc.and_(pc.greater_equal(t["layer"], 0), pc.less(t["layer"], 65536)), False)),
        ("expert must be an integer 0..2^32-1", pc.fill_null(pc.and_(pc.greater_equal(t["expert"], 0), pc.less(t["expert"], 2**32)), False)),
        ("tokens must be a non-negative integer", pc.fill_null(pc.greater_equal(t["tokens"], 0), False)),
    ]
    ok = pa.chunked_array([pa.array(np.ones(t.num_rows, dtype=bool))])
    errors: list[str] = []
    for message, mask in checks:
        bad_rows = np.flatnonzero(~mask.to_numpy(zero_copy_only=False) & ok.to_numpy(zero_copy_only=False))
        for i in bad_rows[: MAX_ERRORS_REPORTED - len(errors)]:
            errors.append(f"row {int(i)}: {message}")
        ok = pc.and_(ok, mask)
    return ok, errors


def handle_push(
    body: bytes,
    content_type: str,
    consumer: Consumer,
    telemetry: Telemetry,
    *,
    cluster: str = "default",
    max_rows: int = 5_000_000,
) -> tuple[int, dict]:
    """Validate a pushed body, hand valid rows to ``consumer`` as ``expert_loads``, answer."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        if media in JSON_TYPES:
            table = _json_table(body)
        elif media in ARROW_TYPES:
            table = _arrow_table(body)
        else:
            telemetry.add("expert_push_rejected", reason="unsupported_media_type")
            return 415, {"error": f"unsupported content type {content_type!r}; send application/json or "
                                  "application/vnd.apache.arrow.stream"}
    except _BadBody as exc:
        telemetry.add("expert_push_rejected", reason="bad_body")
        return 400, {"error": str(exc)}
    if table.num_rows > max_rows:
        telemetry.add("expert_push_rejected", reason="too_many_rows")
        return 413, {"error": f"{table.num_rows} rows exceed the limit of {max_rows} per request; split the body"}
    if table.num_rows == 0:
        return 200, {"accepted": 0, "rejected": 0, "errors": []}
    valid, errors = _validate(table)
    good = table.filter(valid)
    rejected = table.num_rows - good.num_rows
    if rejected:
        telemetry.add("expert_push_rows_rejected", rejected, reason="invalid_row")
    if good.num_rows == 0:
        return 400, {"accepted": 0, "rejected": rejected, "errors": errors}
    rows = conform("expert_loads", pa.table({
        "window_start": good["window_start"].cast(TS_MS),
        "window_end": good["window_end"].cast(TS_MS),
        "cluster": pc.fill_null(good["cluster"], cluster),
        "engine_instance": good["engine_instance"],
        "model": good["model"],
        "layer": good["layer"].cast(pa.uint16()),
        "expert": good["expert"].cast(pa.uint32()),
        "tokens": good["tokens"].cast(pa.uint64()),
        "source": pa.array(["push"] * good.num_rows, type=pa.string()),
    }))
    try:
        consumer.consume("expert_loads", rows)
    except TransientError as exc:
        telemetry.add("expert_push_rejected", reason="consumer_unavailable")
        return 503, {"error": f"spool unavailable ({exc}); nothing was accepted, retry later", "accepted": 0}
    except PermanentError as exc:
        telemetry.add("expert_push_rejected", reason="consumer_refused")
        return 400, {"error": f"rows refused: {exc}", "accepted": 0, "rejected": table.num_rows}
    telemetry.add("expert_push_rows_accepted", rows.num_rows)
    return 200, {"accepted": rows.num_rows, "rejected": rejected, "errors": errors}
