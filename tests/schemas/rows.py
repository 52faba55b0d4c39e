"""Deterministic sample rows for any contract table, built from its Arrow schema."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

BASE = dt.datetime(2026, 11, 28, 10, 0, tzinfo=dt.UTC)


def _value(field: pa.Field, i: int):
    t = field.type
    if pa.types.is_timestamp(t):
        return BASE + dt.timedelta(seconds=i, microseconds=123456 if t.unit == "us" else 123000)
    if pa.types.is_string(t):
        return f"{field.name}-{i}"
    if pa.types.is_boolean(t):
        return i % 2 == 0
    if pa.types.is_unsigned_integer(t):
        return i * 7 + 1
    if pa.types.is_integer(t):
        return i - 1
    if pa.types.is_floating(t):
        return i * 0.5 + 0.25
    if pa.types.is_map(t):
        return [("k", f"v{i}"), ("engine", "vllm")]
    if pa.types.is_list(t):
        inner = pa.field("x", t.value_type)
        return [_value(inner, i), _value(inner, i + 1)]
    raise NotImplementedError(f"no sample value for {t}")


def sample_table(schema: pa.Schema, n: int = 5) -> pa.Table:
    cols = {}
    for field in schema:
        values = [_value(field, i) for i in range(n)]
        if field.nullable:
            values[0] = None  # nulls must survive the round trip
        cols[field.name] = pa.array(values, type=field.type)
    return pa.table(cols, schema=schema)
