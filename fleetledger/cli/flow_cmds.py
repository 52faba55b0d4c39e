"""`fleetledger run`, `backfill`, `serve`, `reservations load`, `prices load`.

`run` and `backfill` run the hourly flow in this process (Prefect starts a temporary local
server unless PREFECT_API_URL points at one); `serve` registers the scheduled deployment on a
Prefect server started with `prefect server start`.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleetledger.cli.context import cli_errors, console, fail, open_store, state

UTC = dt.UTC
reservations_app = typer.Typer(help="Reservations: what each GPU costs and who owns it.", no_args_is_help=True)
prices_app = typer.Typer(help="The price catalog (GPU-hour and energy prices).", no_args_is_help=True)

FROM = Annotated[str | None, typer.Option("--from", help="window start, ISO-8601 UTC (floored to the hour)")]
TO = Annotated[str | None, typer.Option("--to", help="window end, ISO-8601 UTC (rounded up to the hour)")]


def parse_time(value: str, option: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"{option} {value!r}: not an ISO-8601 time; use e.g. 2026-11-29T03:00:00Z", 2) from None
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _prefect_home(settings) -> None:
    """Prefect's SQLite database cannot be created in a missing folder."""
    import os

    Path(os.environ.get("PREFECT_HOME", settings.prefect_home)).expanduser().mkdir(parents=True, exist_ok=True)


def _summary_table(windows: list[dict]) -> Table:
    table = Table(title="attributed windows")
    for col in ("window", "cluster", "requests", "total $", "attributed $", "idle $", "energy kWh"):
        table.add_column(col, justify="right" if col not in ("window", "cluster") else "left")
    for w in windows:
        table.add_row(w["window_start"][:16], w["cluster"], str(w["requests"]), f"{w['total_cost_usd']:.4f}",
                      f"{w['attributed_cost_usd']:.4f}", f"{w['idle_cost_usd']:.4f}", f"{w['total_energy_j'] / 3.6e6:.4f}")
    return table


def _run_flow(ctx: typer.Context, start: dt.datetime | None, end: dt.datetime | None, *, ingest: bool,
              progress: bool) -> None:
    from pipelines.attribution import ConservationError
    from pipelines.flows import run_hourly
    from pipelines.window_io import hourly_windows

    settings = state(ctx).settings
    _prefect_home(settings)
    with open_store(ctx):  # apply migrations once, then release the store to the flow
        pass
    spool = settings.collect.spool.directory if ingest else None
    try:
        if progress and start is not None and end is not None:
            total = len(hourly_windows(start, end))
            columns = (TextColumn("[bold]backfill"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
            with Progress(*columns, console=console) as bar:
                job = bar.add_task("windows", total=total)
                out = run_hourly(settings.store_dsn, settings.pipelines, spool_dir=spool, window_start=start,
                                 window_end=end, on_window=lambda _w: bar.advance(job))
        else:
            out = run_hourly(settings.store_dsn, settings.pipelines, spool_dir=spool if spool and Path(spool).is_dir()
                             else None, window_start=start, window_end=end)
    except ConservationError as exc:
        raise fail(str(exc), 3) from None
    except RuntimeError as exc:
        raise fail(str(exc), 1) from None
    if out.get("ingest"):
        i = out["ingest"]
        console.print(f"ingested {i['segments']} segments, {i['rows']} rows ({i['torn']} torn, {i['rejected']} rejected)")
    if out["windows"]:
        console.print(_summary_table(out["windows"]))
        if out.get("report"):
            console.print(f"report written to {out['report']}")
    else:
        console.print("no window was due")


def run_cmd(ctx: typer.Context, start: FROM = None, end: TO = None,
            ingest: Annotated[bool, typer.Option(help="load the spool first")] = True) -> None:
    """Ingest the spool and attribute the due hours (default: the last complete hour + late data)."""
    s = parse_time(start, "--from") if start else None
    e = parse_time(end, "--to") if end else None
    if e is not None and s is None:
        raise fail("--to needs --from", 2)
    _run_flow(ctx, s, e, ingest=ingest, progress=False)


def backfill_cmd(ctx: typer.Context, start: Annotated[str, typer.Option("--from", help="first hour (ISO-8601 UTC)")],
                 end: Annotated[str, typer.Option("--to", help="end (ISO-8601 UTC, exclusive)")]) -> None:
    """Attribute every hour in [--from, --to), with a progress bar; re-running replaces rows."""
    s, e = parse_time(start, "--from"), parse_time(end, "--to")
    if e <= s:
        raise fail(f"--to {end} is not after --from {start}", 2)
    _run_flow(ctx, s, e, ingest=False, progress=True)


def serve_cmd(ctx: typer.Context) -> None:
    """Serve the hourly deployment (cron `pipelines.cron`) on a running Prefect server."""
    settings = state(ctx).settings
    _prefect_home(settings)
    from prefect.settings import get_current_settings

    if not get_current_settings().api.url:
        raise fail("`fleetledger serve` needs a Prefect server: run `prefect server start` in another shell and "
                   "set PREFECT_API_URL=http://127.0.0.1:4200/api", 2)
    from prefect import serve

    from pipelines.flows import deployments

    deps = deployments(settings.store_dsn, settings.pipelines, settings.collect.spool.directory)
    console.print(f"serving {len(deps)} deployment(s), cron {settings.pipelines.cron!r}; Ctrl-C stops")
    serve(*deps)


def _load(ctx: typer.Context, path: Path, what: str) -> None:
    from pipelines.inputs import InputFileError, load_prices, load_reservations

    if not path.is_file():
        raise fail(f"{path}: no such file", 2)
    loader = load_reservations if what == "reservations" else load_prices
    with open_store(ctx) as store, cli_errors():
        try:
            n = loader(store, path)
        except InputFileError as exc:
            raise fail(str(exc), 2) from None
    console.print(f"loaded {n} {what} rows from {path}")


@reservations_app.command("load")
def reservations_load(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="CSV, Parquet or TOML")]) -> None:
    """Load reservations (CSV, Parquet or TOML [[reservation]]); history is kept by valid_from."""
    _load(ctx, file, "reservations")


@prices_app.command("load")
def prices_load(ctx: typer.Context, file: Annotated[Path, typer.Argument(help="CSV, Parquet or TOML")]) -> None:
    """Load catalog prices (CSV, Parquet or TOML [[price]]): kind gpu ($/GPU-hour) or energy ($/kWh)."""
    _load(ctx, file, "prices")


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("backfill")(backfill_cmd)
    app.command("serve")(serve_cmd)
    app.add_typer(reservations_app, name="reservations")
    app.add_typer(prices_app, name="prices")
