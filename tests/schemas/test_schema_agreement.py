"""The ClickHouse tables created by the migrations agree with the Arrow schemas, column by column."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from schemas.tables import TABLES

_SIMPLE = {
    "String": pa.string(), "Bool": pa.bool_(), "Float32": pa.float32(), "Float64": pa.float64(),
    "UInt8": pa.uint8(), "UInt16": pa.uint16(), "UInt32": pa.uint32(), "UInt64": pa.uint64(),
    "Int8": pa.int8(), "Int16": pa.int16(), "Int32": pa.int32(), "Int64": pa.int64(),
}


def clickhouse_to_arrow(ch_type: str) -> tuple[pa.DataType, bool]:
    """Map a ClickHouse column type to (Arrow type, nullable), independently of schemas/."""
    ch_type = ch_type.strip()
    m = re.fullmatch(r"LowCardinality\((.*)\)", ch_type)
    if m:
        return clickhouse_to_arrow(m.group(1))
    m = re.fullmatch(r"Nullable\((.*)\)", ch_type)
    if m:
        return clickhouse_to_arrow(m.group(1))[0], True
    m = re.fullmatch(r"DateTime64\((\d), '(\w+)'\)", ch_type)
    if m:
        unit = {"3": "ms", "6": "us", "9": "ns"}[m.group(1)]
        return pa.timestamp(unit, tz=m.group(2)), False
    m = re.fullmatch(r"Array\((.*)\)", ch_type)
    if m:
        return pa.list_(clickhouse_to_arrow(m.group(1))[0]), False
    m = re.fullmatch(r"Map\((.*), (.*)\)", ch_type)
    if m:
        return pa.map_(clickhouse_to_arrow(m.group(1))[0], clickhouse_to_arrow(m.group(2))[0]), False
    return _SIMPLE[ch_type], False


def test_every_contract_table_exists_and_agrees(store):
    rows = store.query_rows(
        "SELECT table, name, type, position FROM system.columns WHERE database = currentDatabase() ORDER BY table, position"
    )
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, name, type_, _pos in rows:
        columns.setdefault(table, []).append((name, type_))
    missing = sorted(set(TABLES) - set(columns))
    assert not missing, f"tables in schemas/tables.py without a migration: {missing}"
    for table, schema in TABLES.items():
        ch_cols = columns[table]
        assert [n for n, _ in ch_cols] == schema.names, f"{table}: column names/order differ"
        for (name, ch_type), field in zip(ch_cols, schema, strict=True):
            arrow_type, nullable = clickhouse_to_arrow(ch_type)
            assert arrow_type.equals(field.type), f"{table}.{name}: ClickHouse {ch_type} vs Arrow {field.type}"
            assert nullable == field.nullable, f"{table}.{name}: nullability differs ({ch_type} vs {field.nullable})"


@pytest.mark.parametrize(
    "ch,expected",
    [
        ("LowCardinality(String)", (pa.string(), False)),
        ("Nullable(Float32)", (pa.float32(), True)),
        ("DateTime64(6, 'UTC')", (pa.timestamp("us", tz="UTC"), False)),
        ("Map(LowCardinality(String), String)", (pa.map_(pa.string(), pa.string()), False)),
        ("Array(UInt32)", (pa.list_(pa.uint32()), False)),
    ],
)
def test_type_mapping_used_by_the_agreement_check(ch, expected):
    got = clickhouse_to_arrow(ch)
    assert got[0].equals(expected[0]) and got[1] == expected[1]
