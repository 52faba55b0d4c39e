"""Arrow types shared by every table schema, each named after its ClickHouse counterpart."""

from __future__ import annotations

import pyarrow as pa

UTC = "UTC"
TS_MS = pa.timestamp("ms", tz=UTC)  # ClickHouse DateTime64(3, 'UTC')
TS_US = pa.timestamp("us", tz=UTC)  # ClickHouse DateTime64(6, 'UTC')
STR = pa.string()
LABELS = pa.map_(pa.string(), pa.string())  # ClickHouse Map(String, String)
STR_LIST = pa.list_(pa.string())  # ClickHouse Array(String)


def field(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


def nullable(name: str, type_: pa.DataType) -> pa.Field:
    return pa.field(name, type_, nullable=True)
