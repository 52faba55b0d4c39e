"""`fleetledger init`, `fleetledger sql` (the read-only FinOps entry point), `fleetledger version`."""

from __future__ import annotations

import io
import json
import re
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import typer
from rich.table import Table

from fleetledger import __version__
from fleetledger.cli.context import cli_errors, console, fail, open_store, state

READ_ONLY_KEYWORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN")
_COMMENT_RE = re.compile(r"(--[^\n]*\n?)|(/\*.*?\*/)", re.S)


class OutputFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


class ReadOnlyViolation(ValueError):
    """A statement that `fleetledger sql` refuses to run."""


def check_read_only(sql: str) -> str:
    """Return the single statement if it only reads; raise ReadOnlyViolation otherwise."""
    text = _COMMENT_RE.sub(" ", sql).strip().rstrip(";").strip()
    if not text:
        raise ReadOnlyViolation("the query is empty")
    if ";" in _strip_strings(text):
        raise ReadOnlyViolation("only one statement per call; remove the ';' inside the query")
    first = text.split(None, 1)[0].upper().lstrip("(")
    if first not in READ_ONLY_KEYWORDS:
        raise ReadOnlyViolation(
            f"`fleetledger sql` is read-only and refuses a {first} statement; "
            f"it runs only {', '.join(READ_ONLY_KEYWORDS)}"
        )
    return text


def _strip_strings(text: str) -> str:
    return re.sub(r"'(?:[^'\\]|\\.)*'", "''", text)


def parse_params(params: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in params:
        if "=" not in item:
            raise ReadOnlyViolation(f"--param {item!r}: expected NAME=VALUE, used in the query as {{NAME:Type}}")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def render_table(result: pa.Table, fmt: OutputFormat, out: Path | None) -> None:
    if fmt is OutputFormat.parquet:
        if out is None:
            raise ReadOnlyViolation("--format parquet needs --out FILE")
        pq.write_table(result, out)
        console.print(f"wrote {result.num_rows} rows to {out}")
        return
    if fmt is OutputFormat.csv:
        buf = io.BytesIO()
        pacsv.write_csv(result, buf)
        text = buf.getvalue().decode()
    elif fmt is OutputFormat.json:
        text = json.dumps(result.to_pylist(), default=str, indent=1) + "\n"
    else:
        table = Table(show_lines=False)
        for name in result.column_names:
            table.add_column(name, overflow="fold")
        for row in result.to_pylist():
            table.add_row(*["" if v is None else str(v) for v in row.values()])
        if out is None:
            console.print(table)
            console.print(f"[dim]{result.num_rows} rows[/]")
            return
        with open(out, "w") as fh:
            from rich.console import Console

            Console(file=fh, width=200).print(table)
        return
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)


def register(app: typer.Typer) -> None:
    @app.command()
    def init(ctx: typer.Context) -> None:
        """Create the store (if embedded) and apply every pending migration."""
        s = state(ctx).settings
        with open_store(ctx, migrate=False) as store, cli_errors():
            applied = store.migrate()
            names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (already up to date)"
            console.print(f"store {store.dsn.redacted()}: migrations applied: {names}")
            if s.store_cluster:
                console.print(f"cluster mode: tables are Replicated + Distributed ON CLUSTER {s.store_cluster}")

    @app.command()
    def sql(
        ctx: typer.Context,
        query: Annotated[str, typer.Argument(help="one SELECT / WITH / SHOW / DESCRIBE / EXPLAIN statement")],
        fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="output format")] = OutputFormat.table,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="write to FILE instead of stdout")] = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE for {NAME:Type}")] = None,
    ) -> None:
        """Run a read-only query on the store (FinOps entry point)."""
        try:
            statement = check_read_only(query)
            params = parse_params(param or [])
            if fmt is OutputFormat.parquet and out is None:
                raise ReadOnlyViolation("--format parquet needs --out FILE")
        except ReadOnlyViolation as exc:
            raise fail(str(exc), 2) from None
        with open_store(ctx) as store, cli_errors():
            settings = None if store.dsn.embedded else {"readonly": 2}
            result = store.query_arrow(statement, params, settings=settings)
            render_table(result, fmt, out)

    @app.command()
    def version() -> None:
        """Print the fleetledger version and the versions of its engines."""
        import chdb
        import clickhouse_connect
        import polars
        import prefect

        console.print(
            f"fleetledger {__version__} (chdb {chdb.__version__}, clickhouse-connect {clickhouse_connect.__version__}, "
            f"polars {polars.__version__}, pyarrow {pa.__version__}, prefect {prefect.__version__})",
            highlight=False,
        )
