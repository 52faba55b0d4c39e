"""A tiny TOML writer for the simulator's fleet files (the standard library only reads TOML).

Supports what fleet files use: strings, ints, floats, bools, lists of those, inline tables of
those, tables and arrays of tables (nested by dotted names).
"""

from __future__ import annotations

import json
import math
from typing import Any


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"TOML cannot hold {v}")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def dumps(doc: dict[str, Any], inline_depth: int = 0) -> str:
    """Serialise ``doc``: scalars first, then sub-tables ``[a.b]`` and arrays of tables ``[[a.b]]``.

    Dicts nested under a table become sub-tables; dict values inside arrays of tables become
    inline tables (so ``{"tenants": {"acme": 0.5}}`` stays on one line)."""
    lines: list[str] = []
    _emit(doc, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


def _emit(table: dict[str, Any], path: list[str], lines: list[str], inline_dicts: bool = False) -> None:
    for k, v in table.items():
        if v is None or _is_table_array(v) or (isinstance(v, dict) and not inline_dicts):
            continue
        lines.append(f"{_key(k)} = {_value(v)}")
    for k, v in table.items():
        if isinstance(v, dict) and not inline_dicts:
            lines.append("")
            lines.append("[" + ".".join(_key(p) for p in [*path, k]) + "]")
            _emit(v, [*path, k], lines)
    for k, v in table.items():
        if _is_table_array(v):
            for item in v:
                lines.append("")
                lines.append("[[" + ".".join(_key(p) for p in [*path, k]) + "]]")
                _emit(item, [*path, k], lines, inline_dicts=True)
