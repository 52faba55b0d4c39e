"""Inputs the user manages: reservations (what each GPU costs, who owns it) and the price catalog.

Accepted files: CSV (columns = the contract columns minus ``loaded_at``; list columns ``nodes`` /
``gpu_uuids`` as ';'-separated strings; times ISO-8601 UTC such as ``2026-11-29T00:00:00Z``),
Parquet with the same columns, or TOML with ``[[reservation]]`` / ``[[price]]`` arrays of the
same keys. Every row is validated; errors name the file, the row (1-based data row; CSV also the
line) and the column, and nothing is loaded unless the whole file is valid.

History: rows are appended with ``loaded_at``; the tables are ReplacingMergeTree on
``(id, valid_from)``, so reloading a corrected row replaces it while a row with a new
``valid_from`` (a price change) adds a period. Where periods overlap, the newest ``valid_from``
applies (see ``pipelines.attribution.rates``).
"""

from __future__ import annotations

import csv
import datetime as dt
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from schemas.tables import schema_for

UTC = dt.UTC
OPEN_END = dt.datetime(2100, 1, 1, tzinfo=UTC)
PRICING_MODELS = ("reserved", "on_demand", "spot", "serverless")
PRICE_KINDS = {"gpu": "gpu-hour", "energy": "kWh"}
MAX_REPORTED = 20


class InputFileError(ValueError):
    """A reservations/prices file that cannot be loaded; lists every problem found."""


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()


def _time(v: Any) -> dt.datetime:
    if isinstance(v, dt.datetime):
        return v if v.tzinfo else v.replace(tzinfo=UTC)
    if isinstance(v, dt.date):
        return dt.datetime(v.year, v.month, v.day, tzinfo=UTC)
    s = _text(v)
    if not s:
        raise ValueError("is empty; expected an ISO-8601 UTC time such as 2026-11-29T00:00:00Z")
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{s!r} is not an ISO-8601 time (e.g. 2026-11-29T00:00:00Z)") from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _number(v: Any) -> float:
    try:
        x = float(_text(v)) if not isinstance(v, (int, float)) else float(v)
    except ValueError:
        raise ValueError(f"{v!r} is not a number") from None
    if x != x or x < 0:
        raise ValueError(f"{v!r} must be a number >= 0")
    return x


def _list(v: Any) -> list[str]:
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        return [_text(x) for x in v if _text(x)]
    return [x.strip() for x in _text(v).split(";") if x.strip()]


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        s = _text(v).lower().replace("-", "_")
        if s not in options:
            raise ValueError(f"{v!r} is not one of {', '.join(options)}")
        return s
    return check


# column -> (parser, required, default)
RESERVATION_COLUMNS: dict[str, tuple[Callable[[Any], Any], bool, Any]] = {
    "reservation_id": (_text, True, None),
    "provider": (_text, False, ""),
    "pricing_model": (_choice(PRICING_MODELS), True, None),
    "gpu_model": (_text, False, ""),
    "cluster": (_text, False, "default"),
    "nodes": (_list, False, []),
    "gpu_uuids": (_list, False, []),
    "gpu_count": (lambda v: int(_number(v)), False, None),
    "usd_per_gpu_hour": (_number, True, None),
    "owner_team": (_text, False, ""),
    "valid_from": (_time, True, None),
    "valid_to": (_time, False, OPEN_END),
}
PRICE_COLUMNS: dict[str, tuple[Callable[[Any], Any], bool, Any]] = {
    "price_id": (_text, True, None),
    "kind": (_choice(tuple(PRICE_KINDS)), True, None),
    "provider": (_text, False, ""),
    "pricing_model": (lambda v: _choice(PRICING_MODELS)(v) if _text(v) else "", False, ""),
    "gpu_model": (_text, False, ""),
    "region": (_text, False, ""),
    "cluster": (_text, False, ""),
    "usd_per_unit": (_number, True, None),
    "unit": (_text, False, None),
    "valid_from": (_time, True, None),
    "valid_to": (_time, False, OPEN_END),
}


def _read_rows(path: Path, toml_key: str) -> tuple[list[dict], Callable[[int], str]]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return rows, lambda i: f"row {i + 1} (line {i + 2})"
    if suffix in (".parquet", ".pq"):
        return pq.read_table(path).to_pylist(), lambda i: f"row {i + 1}"
    if suffix == ".toml":
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
        rows = doc.get(toml_key)
        if not isinstance(rows, list):
            raise InputFileError(f"{path}: no [[{toml_key}]] entries found; write one [[{toml_key}]] table per row")
        return rows, lambda i: f"[[{toml_key}]] #{i + 1}"
    raise InputFileError(f"{path}: unsupported file type {suffix or '(none)'}; use .csv, .parquet or .toml")


def _parse(path: Path, rows: list[dict], where: Callable[[int], str], columns: dict, table: str,
           extra_check: Callable[[dict], list[tuple[str, str]]]) -> pa.Table:
    errors: list[str] = []
    known = set(columns)
    if rows:
        unknown = sorted(set().union(*(r.keys() for r in rows)) - known - {"loaded_at"})
        if unknown:
            errors.append(f"{path}: unknown column(s) {', '.join(unknown)}; expected {', '.join(columns)}")
    out = []
    for i, raw in enumerate(rows):
        row: dict[str, Any] = {}
        for col, (parse, required, default) in columns.items():
            value = raw.get(col)
            if value is None or (isinstance(value, str) and not value.strip()):
                if required:
                    errors.append(f"{path} {where(i)}, column {col}: missing (required)")
                    continue
                row[col] = default
                continue
            try:
                row[col] = parse(value)
            except ValueError as exc:
                errors.append(f"{path} {where(i)}, column {col}: {exc}")
        if len(row) == len(columns):
            errors += [f"{path} {where(i)}, column {c}: {m}" for c, m in extra_check(row)]
        out.append(row)
        if len(errors) >= MAX_REPORTED:
            break
    if errors:
        more = " (first problems only)" if len(errors) >= MAX_REPORTED else ""
        raise InputFileError(f"{len(errors)} problem(s), nothing loaded{more}:\n" + "\n".join(errors[:MAX_REPORTED]))
    if not out:
        raise InputFileError(f"{path}: no rows to load")
    loaded_at = dt.datetime.now(UTC).replace(microsecond=0)
    for row in out:
        row["loaded_at"] = loaded_at
    return pa.Table.from_pylist(out, schema=schema_for(table))


def _check_reservation(row: dict) -> list[tuple[str, str]]:
    problems = []
    if not row["nodes"] and not row["gpu_uuids"]:
        problems.append(("gpu_uuids", "a reservation needs gpu_uuids or nodes (';'-separated)"))
    if row["valid_to"] <= row["valid_from"]:
        problems.append(("valid_to", f"{row['valid_to'].isoformat()} is not after valid_from"))
    if row["gpu_count"] is None:
        row["gpu_count"] = len(row["gpu_uuids"])
    return problems


def _check_price(row: dict) -> list[tuple[str, str]]:
    problems = []
    expected = PRICE_KINDS[row["kind"]]
    if row["unit"] is None:
        row["unit"] = expected
    elif row["unit"] != expected:
        problems.append(("unit", f"{row['unit']!r} does not fit kind {row['kind']!r}; use {expected!r}"))
    if row["kind"] == "gpu" and not row["pricing_model"]:
        problems.append(("pricing_model", "a gpu price needs a pricing_model (reserved, on_demand, spot, serverless)"))
    if row["valid_to"] <= row["valid_from"]:
        problems.append(("valid_to", f"{row['valid_to'].isoformat()} is not after valid_from"))
    return problems


def read_reservations(path: Path) -> pa.Table:
    rows, where = _read_rows(Path(path), "reservation")
    return _parse(Path(path), rows, where, RESERVATION_COLUMNS, "reservations", _check_reservation)


def read_prices(path: Path) -> pa.Table:
    rows, where = _read_rows(Path(path), "price")
    return _parse(Path(path), rows, where, PRICE_COLUMNS, "prices", _check_price)


def load_reservations(store: Any, path: Path) -> int:
    """Validate and insert a reservations file; returns the number of rows loaded."""
    return store.insert("reservations", read_reservations(path))


def load_prices(store: Any, path: Path) -> int:
    return store.insert("prices", read_prices(path))
