"""`fleetledger report` (the offline HTML report) and `fleetledger export focus` (FOCUS 1.3)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn

from fleetledger.cli.context import cli_errors, console, fail, open_store


class FocusFormat(StrEnum):
    parquet = "parquet"
    csv = "csv"


def parse_time(value: str, option: str) -> datetime:
    """ISO-8601 date or date-time; naive values are UTC. Raises typer.Exit with a clear message."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"{option} {value!r} is not a time; use ISO-8601 like 2026-11-29 or 2026-11-29T00:00:00Z", 2) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def register(app: typer.Typer) -> None:
    @app.command()
    def report(
        ctx: typer.Context,
        out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")] = Path("report.html"),
        from_: Annotated[str | None, typer.Option("--from", help="start (ISO-8601, UTC); default: 7 days before --to")] = None,
        to: Annotated[str | None, typer.Option("--to", help="end (ISO-8601, UTC); default: the last hour with cost data")] = None,
    ) -> None:
        """Write one self-contained HTML report (cost, idle, hot experts, fleet health), viewable offline."""
        from dashboards.report import DEFAULT_SPAN, default_range, load_dashboards, write_report

        start = parse_time(from_, "--from") if from_ else None
        end = parse_time(to, "--to") if to else None
        if start and end and end <= start:
            raise fail("--to must be after --from", 2)
        n_panels = sum(len(d["panels"]) for d in load_dashboards())
        with open_store(ctx) as store, cli_errors():
            if start is None and end is None:
                start, end = default_range(store)
            elif end is None:
                end = start + DEFAULT_SPAN
            elif start is None:
                start = end - DEFAULT_SPAN
            with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total} panels"), console=console, transient=True) as bar:
                task = bar.add_task("querying panels", total=n_panels)
                summary = write_report(store, out, start, end,
                                       progress=lambda what: bar.update(task, advance=1, description=what[:60]))
        console.print(
            f"wrote {out}: {summary.panels} panels, {summary.rows} rows, "
            f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC", highlight=False,
        )
        if summary.empty_panels:
            empty = summary.empty_panels
            more = f" and {len(empty) - 3} more" if len(empty) > 3 else ""
            console.print(f"[yellow]{len(empty)} of {summary.panels} panels have no data in this range[/] "
                          f"({', '.join(empty[:3])}{more}); has the hourly flow run for it?", highlight=False)

    export_app = typer.Typer(help="Export cost data in standard formats.", no_args_is_help=True)

    @export_app.command("focus")
    def focus(
        ctx: typer.Context,
        from_: Annotated[str, typer.Option("--from", help="start of the charge periods (ISO-8601, UTC)")],
        to: Annotated[str, typer.Option("--to", help="end of the charge periods, exclusive (ISO-8601, UTC)")],
        out: Annotated[Path, typer.Option("--out", "-o", help="file to write")],
        fmt: Annotated[FocusFormat, typer.Option("--format", "-f", help="parquet or csv")] = FocusFormat.parquet,
    ) -> None:
        """Write FOCUS 1.3 cost rows (Used / Unused commitments, split by workflow) for a period."""
        from dashboards.focus import FocusExportError, export_focus

        start, end = parse_time(from_, "--from"), parse_time(to, "--to")
        if end <= start:
            raise fail("--to must be after --from", 2)
        with open_store(ctx) as store, cli_errors():
            with console.status("building FOCUS rows"):
                try:
                    result = export_focus(store, start, end, fmt.value, out)
                except FocusExportError as exc:
                    raise fail(str(exc), 2) from None
        console.print(
            f"wrote {result.rows} FOCUS rows to {out} ({fmt.value}): BilledCost ${result.billed_cost:,.2f}, "
            f"EffectiveCost ${result.effective_cost:,.2f}", highlight=False,
        )
        if result.rows == 0:
            console.print("[yellow]no cost rows in this period; has the hourly flow run for it?[/]")

    app.add_typer(export_app, name="export")
