"""Expand the Grafana ClickHouse data source's macros and template variables into plain SQL.

The dashboards in ``dashboards/grafana`` are written for ``grafana-clickhouse-datasource``;
this module performs the same expansion Grafana and the plugin do, so the tests, the HTML
report and the benchmark run exactly the panel SQL against the store:

- plugin macros: ``$__timeFilter(col)``, ``$__timeFilter_ms(col)``, ``$__dateFilter(col)``,
  ``$__dateTimeFilter(d, t)`` / ``$__dt(d, t)``, ``$__fromTime``, ``$__toTime`` (and ``_ms``),
  ``$__timeInterval(col)``, ``$__timeInterval_ms(col)``, ``$__interval_s``,
  ``$__conditionalAll(condition, $var)``;
- Grafana variables: ``$var``, ``${var}``, ``${var:singlequote}``, ``${var:doublequote}``,
  ``${var:csv}``, ``${var:sqlstring}``, ``${var:raw}``. A variable set to All expands to every
  option it has (no custom all value), as Grafana does.

Anything left that looks like a macro or variable raises ``MacroError`` instead of reaching
the engine half-expanded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime


class MacroError(ValueError):
    """SQL whose macros or variables cannot be expanded; the message names which."""


@dataclass(frozen=True)
class Expansion:
    """The context Grafana would send with a panel query."""

    start: datetime
    end: datetime
    # variable -> selected values; None means "All"
    selected: Mapping[str, Sequence[str] | None] = field(default_factory=dict)
    # variable -> every option it has (used when All is selected)
    options: Mapping[str, Sequence[str]] = field(default_factory=dict)
    interval_s: int | None = None

    def interval(self) -> int:
        if self.interval_s:
            return int(self.interval_s)
        return auto_interval_s(self.start, self.end)


def auto_interval_s(start: datetime, end: datetime, max_points: int = 300) -> int:
    """Grafana-like interval: the smallest 'nice' step giving at most ``max_points`` points."""
    span = max(1.0, (end - start).total_seconds())
    for step in (60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 604800):
        if span / step <= max_points:
            return step
    return 604800


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _find_calls(sql: str, name: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, args) of every ``$__name(...)`` call, parentheses and quotes respected."""
    out = []
    token = f"$__{name}("
    pos = 0
    while (start := sql.find(token, pos)) >= 0:
        i = start + len(token)
        depth, args, current, quote = 1, [], [], None
        while i < len(sql):
            ch = sql[i]
            if quote:
                current.append(ch)
                if ch == "\\" and i + 1 < len(sql):
                    current.append(sql[i + 1])
                    i += 1
                elif ch == quote:
                    quote = None
            elif ch in "'\"`":
                quote = ch
                current.append(ch)
            elif ch == "(":
                depth += 1
                current.append(ch)
            elif ch == ")":
                depth -= 1
                if depth == 0:
                    break
                current.append(ch)
            elif ch == "," and depth == 1:
                args.append("".join(current).strip())
                current = []
            else:
                current.append(ch)
            i += 1
        if depth != 0:
            raise MacroError(f"unbalanced parentheses in $__{name}(...) at offset {start}")
        args.append("".join(current).strip())
        out.append((start, i + 1, args))
        pos = i + 1
    return out


def _replace_calls(sql: str, name: str, nargs: int, fn: Callable[[list[str]], str]) -> str:
    for start, end, args in reversed(_find_calls(sql, name)):
        if len(args) != nargs or not all(args):
            raise MacroError(f"$__{name} takes {nargs} argument(s), got {args!r}")
        sql = sql[:start] + fn(args) + sql[end:]
    return sql


def _quote(value: str, fmt: str) -> str:
    if fmt == "singlequote":
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if fmt == "sqlstring":
        return "'" + value.replace("'", "''") + "'"
    if fmt == "doublequote":
        return '"' + value.replace('"', '\\"') + '"'
    return value


_VAR_RE = re.compile(r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<fmt>[a-z]+))?\}|\$(?P<plain>[A-Za-z_][A-Za-z0-9_]*)")
_FORMATS = {"singlequote", "doublequote", "csv", "sqlstring", "raw", "text"}


def _values(ctx: Expansion, name: str) -> list[str]:
    if name not in ctx.selected and name not in ctx.options:
        raise MacroError(f"template variable ${name} has no value; known variables: {sorted(ctx.options)}")
    chosen = ctx.selected.get(name)
    if chosen is None:
        return list(ctx.options.get(name, []))
    return list(chosen)


def expand(sql: str, ctx: Expansion) -> str:
    """The SQL Grafana would run for this panel with this time range and these variables."""
    start, end = _utc(ctx.start), _utc(ctx.end)
    if end <= start:
        raise MacroError(f"time range is empty: {start.isoformat()} .. {end.isoformat()}")

    def conditional_all(args: list[str]) -> str:
        m = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?", args[1])
        if not m:
            raise MacroError(f"$__conditionalAll needs a template variable as its 2nd argument, got {args[1]!r}")
        name = m.group(1)
        _values(ctx, name)  # unknown variable -> error
        return "1=1" if ctx.selected.get(name) is None else args[0]

    sql = _replace_calls(sql, "conditionalAll", 2, conditional_all)

    def variable(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("plain")
        if name.startswith("__"):
            return m.group(0)  # a macro, handled below
        fmt = m.group("fmt") or "singlequote"
        if fmt not in _FORMATS:
            raise MacroError(f"unsupported variable format ${{{name}:{fmt}}}; use one of {sorted(_FORMATS)}")
        values = _values(ctx, name)
        if not values:
            return "''" if fmt in ("singlequote", "sqlstring") else ""
        return ",".join(_quote(v, fmt) for v in values)

    sql = _VAR_RE.sub(variable, sql)

    s, e = int(start.timestamp()), int(end.timestamp())
    s_ms, e_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    step = ctx.interval()
    from_t, to_t = f"toDateTime({s})", f"toDateTime({e})"
    from_ms, to_ms = f"fromUnixTimestamp64Milli({s_ms})", f"fromUnixTimestamp64Milli({e_ms})"

    def date_filter(c: str) -> str:
        return f"{c} >= toDate('{start:%Y-%m-%d}') AND {c} <= toDate('{end:%Y-%m-%d}')"

    sql = _replace_calls(sql, "timeFilter_ms", 1, lambda a: f"{a[0]} >= {from_ms} AND {a[0]} <= {to_ms}")
    sql = _replace_calls(sql, "timeFilter", 1, lambda a: f"{a[0]} >= {from_t} AND {a[0]} <= {to_t}")
    sql = _replace_calls(sql, "dateFilter", 1, lambda a: date_filter(a[0]))
    for name in ("dateTimeFilter", "dt"):
        sql = _replace_calls(
            sql, name, 2, lambda a: f"{date_filter(a[0])} AND {a[1]} >= {from_t} AND {a[1]} <= {to_t}"
        )
    sql = _replace_calls(
        sql, "timeInterval_ms", 1, lambda a: f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {step * 1000} millisecond)"
    )
    sql = _replace_calls(sql, "timeInterval", 1, lambda a: f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {step} second)")
    for token, value in (
        ("$__fromTime_ms", from_ms), ("$__toTime_ms", to_ms), ("$__fromTime", from_t), ("$__toTime", to_t),
        ("$__interval_s", str(step)),
    ):
        sql = re.sub(re.escape(token) + r"(?![A-Za-z0-9_])", value, sql)
    left = re.search(r"\$\{?[A-Za-z_][A-Za-z0-9_]*", _strip_strings(sql))
    if left:
        raise MacroError(f"unknown macro or variable {left.group(0)!r} left after expansion")
    return sql


def _strip_strings(sql: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", sql)
