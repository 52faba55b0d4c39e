"""Entry point of the `fleetledger` command and its global options."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from fleetledger.cli.context import state

app = typer.Typer(
    name="fleetledger",
    help="Cost attribution and observability for LLM inference fleets.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

# Each module defines `register(app)` and owns its commands.
COMMAND_MODULES = [
    "fleetledger.cli.store_cmds",  # init, sql, version
    "fleetledger.cli.simulate_cmd",  # simulate
    "fleetledger.cli.collect_cmd",  # collect
    "fleetledger.cli.flow_cmds",  # run, backfill, serve, reservations, prices
    "fleetledger.cli.experts_cmd",  # experts
    "fleetledger.cli.report_cmds",  # report, export focus
    "fleetledger.cli.demo_cmd",  # demo
]


@app.callback()
def main(
    ctx: typer.Context,
    store: Annotated[str | None, typer.Option("--store", help="store DSN (env FLEETLEDGER_STORE)")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="TOML settings file")] = None,
    log_level: Annotated[str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR")] = None,
) -> None:
    st = state(ctx)
    st.config_file = config
    st.overrides = {"store": store, "log_level": log_level}


def _register_all() -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app)


_register_all()


def run() -> None:
    app()


if __name__ == "__main__":
    run()
