"""Parsers of SGLang expert-distribution dumps (``stat`` and ``per_pass``, JSON and ``.pt``).

A dump becomes one ``ParsedDump``: logical-expert token counts ``[layers, experts]`` for the
dump's window. ``stat`` dumps hold ``logical_count [buffer_steps, layers, experts]`` summed over
the first axis; ``per_pass`` dumps hold per-pass ``global_physical_count [layers, physical]``
records summed, then mapped to logical experts through ``last_physical_to_logical_map``.

Anything malformed raises ``DumpRejected`` with a short machine ``reason`` (the telemetry
attribute) and a sentence for the log; callers count it and go on. ``.pt`` files need torch
(the ``fleetledger[torch]`` extra); it is imported only when such a file is read.
"""

from __future__ import annotations

import importlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DUMP_NAME_RE = re.compile(
    r"^expert_distribution_recorder_(?P<ts>\d+(?:\.\d+)?)(?:_(?P<rank>\d+))?\.(?P<ext>json|pt)$"
)
MAX_EXPERTS = 1 << 20


class DumpRejected(ValueError):
    """A dump that cannot be used; ``reason`` is a short label for counters."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class TorchMissing(RuntimeError):
    """A ``.pt`` dump was found but torch is not installed (``pip install fleetledger[torch]``)."""


@dataclass(frozen=True)
class ParsedDump:
    kind: str  # 'stat' | 'per_pass'
    rank: int
    logical_count: np.ndarray  # uint64 [layers, logical experts]
    average_utilization_rate: float | None = None

    @property
    def source(self) -> str:
        return f"sglang_{self.kind}"


def dump_timestamp_ms(path: Path) -> int | None:
    """The dump's time from its name (``..._<unix ms>.json``; seconds with a fraction also accepted)."""
    m = DUMP_NAME_RE.match(path.name)
    if not m:
        return None
    raw = m.group("ts")
    value = float(raw)
    if "." in raw or value < 1e11:  # SGLang's own names use time.time() seconds
        return int(round(value * 1000))
    return int(raw)


def is_dump_name(name: str) -> bool:
    return DUMP_NAME_RE.match(name) is not None


def _as_int_array(value: Any, ndim: int, what: str) -> np.ndarray:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise DumpRejected("wrong_shape", f"{what} is not a rectangular array ({exc})") from None
    if arr.dtype == object:
        raise DumpRejected("wrong_shape", f"{what} is not a rectangular array of numbers")
    if arr.ndim != ndim:
        raise DumpRejected("wrong_shape", f"{what} must have {ndim} dimensions, found shape {list(arr.shape)}")
    if arr.size == 0:
        raise DumpRejected("wrong_shape", f"{what} is empty (shape {list(arr.shape)})")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise DumpRejected("not_integer", f"{what} holds non-integer counts")
        arr = arr.astype(np.int64)
    elif arr.dtype.kind not in "iu":
        raise DumpRejected("wrong_type", f"{what} must hold integers, found {arr.dtype}")
    if arr.dtype.kind == "i" and np.any(arr < 0):
        raise DumpRejected("negative_count", f"{what} holds negative values (min {int(arr.min())})")
    return arr


def _rank(obj: dict) -> int:
    rank = obj.get("rank", 0)
    if hasattr(rank, "item") and getattr(rank, "ndim", 1) == 0:
        rank = rank.item()
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise DumpRejected("wrong_rank", f"rank must be a non-negative integer, found {rank!r}")
    return rank


def parse_dump_object(obj: Any) -> ParsedDump:
    """Validate a loaded dump (dict from JSON or torch.load) and reduce it to logical counts."""
    if not isinstance(obj, dict):
        raise DumpRejected("wrong_type", f"a dump must be an object/dict, found {type(obj).__name__}")
    rank = _rank(obj)
    if "logical_count" in obj:
        counts = _as_int_array(obj["logical_count"], 3, "logical_count")
        util = obj.get("average_utilization_rate_over_window")
        if hasattr(util, "item"):
            util = util.item()
        if util is not None and (isinstance(util, bool) or not isinstance(util, int | float)):
            raise DumpRejected("wrong_type", f"average_utilization_rate_over_window must be a number or null, found {util!r}")
        return ParsedDump("stat", rank, counts.sum(axis=0, dtype=np.uint64), None if util is None else float(util))
    if "records" in obj:
        return _parse_per_pass(obj, rank)
    raise DumpRejected("unknown_format", "neither 'logical_count' (stat) nor 'records' (per_pass) is present")


def _parse_per_pass(obj: dict, rank: int) -> ParsedDump:
    records = obj["records"]
    if not isinstance(records, list | tuple) or not records:
        raise DumpRejected("wrong_shape", "records must be a non-empty list")
    if "last_physical_to_logical_map" not in obj:
        raise DumpRejected("unknown_format", "per_pass dump without last_physical_to_logical_map")
    mapping = _as_int_array(obj["last_physical_to_logical_map"], 2, "last_physical_to_logical_map")
    total = np.zeros(mapping.shape, dtype=np.uint64)
    for i, rec in enumerate(records):
        if not isinstance(rec, dict) or "global_physical_count" not in rec:
            raise DumpRejected("wrong_shape", f"records[{i}] has no global_physical_count")
        counts = _as_int_array(rec["global_physical_count"], 2, f"records[{i}].global_physical_count")
        if counts.shape != mapping.shape:
            raise DumpRejected(
                "wrong_shape",
                f"records[{i}].global_physical_count has shape {list(counts.shape)}, "
                f"the physical-to-logical map {list(mapping.shape)}",
            )
        total += counts.astype(np.uint64)
    layers, _physical = mapping.shape
    experts = int(mapping.max()) + 1
    if experts > MAX_EXPERTS:
        raise DumpRejected("wrong_shape", f"physical-to-logical map names expert {experts - 1}, beyond {MAX_EXPERTS}")
    flat = (np.arange(layers, dtype=np.int64)[:, None] * experts + mapping).ravel()
    logical = np.zeros(layers * experts, dtype=np.uint64)
    np.add.at(logical, flat, total.ravel())
    return ParsedDump("per_pass", rank, logical.reshape(layers, experts))


def load_dump(path: Path) -> ParsedDump:
    """Read and parse one dump file; raises DumpRejected (bad file) or TorchMissing (``.pt``)."""
    if path.suffix == ".pt":
        try:
            torch = importlib.import_module("torch")
        except ImportError:
            raise TorchMissing(f"{path.name}: .pt dumps need torch (pip install 'fleetledger[torch]')") from None
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many kinds for a truncated or foreign file
            raise DumpRejected("corrupt", f"cannot load {path.name} with torch ({type(exc).__name__}: {exc})") from None
        return parse_dump_object(obj)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise DumpRejected("unreadable", f"cannot read {path.name}: {exc}") from None
    if not text.strip():
        raise DumpRejected("empty", f"{path.name} is empty")
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DumpRejected("invalid_json", f"{path.name} is not valid JSON (truncated?): {exc}") from None
    return parse_dump_object(obj)
