"""`fleetledger simulate`: a simulated fleet window with ground truth, written to a folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from fleetledger.cli.context import console, fail

STAGES = {"batching": "continuous batching", "truth": "ground truth", "experts": "expert dumps", "spans": "OTLP spans"}


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_cmd(
        out: Annotated[Path, typer.Option("--out", help="folder for fleet.toml, prices, truth, dumps, logs")],
        hours: Annotated[float, typer.Option("--hours", min=0.01, help="virtual hours to simulate")] = 1.0,
        nodes: Annotated[int, typer.Option("--nodes", min=1, help="nodes (8 GPUs each; node templates cycle)")] = 2,
        seed: Annotated[int, typer.Option("--seed", help="same seed, same output")] = 42,
        start: Annotated[str | None, typer.Option(
            "--start", help="window start, ISO-8601 UTC (default 2026-11-29T00:00:00Z); 'today' = 00:00 UTC today")] = None,
        fleet_file: Annotated[Path | None, typer.Option("--fleet", help="fleet template TOML (default: built in)")] = None,
        otlp_endpoint: Annotated[str | None, typer.Option("--otlp-endpoint", help="send spans here, e.g. http://127.0.0.1:4318")] = None,
        otlp_protocol: Annotated[str, typer.Option("--otlp-protocol", help="http/protobuf or grpc")] = "http/protobuf",
        pt: Annotated[bool | None, typer.Option("--pt/--no-pt", help="also write .pt dumps (default: when torch is installed)")] = None,
    ) -> None:
        """Simulate an LLM inference fleet and write its description, prices and ground truth."""
        from simulator.api import simulate
        from simulator.fleet import FleetError
        from simulator.otlp import PROTOCOLS

        if otlp_protocol not in PROTOCOLS:
            raise fail(f"--otlp-protocol {otlp_protocol!r}: use one of {', '.join(PROTOCOLS)}", 2)
        if start == "today":
            start = datetime.now(UTC).strftime("%Y-%m-%dT00:00:00Z")
        with Progress(TextColumn("{task.description:<22}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, frac: float) -> None:
                if stage not in tasks:
                    tasks[stage] = bar.add_task(STAGES.get(stage, stage), total=1.0)
                bar.update(tasks[stage], completed=min(1.0, frac))

            try:
                result = simulate(hours=hours, nodes=nodes, seed=seed, start=start, fleet_file=fleet_file, out=out,
                                  otlp_endpoint=otlp_endpoint, otlp_protocol=otlp_protocol, write_pt=pt,
                                  progress=progress)
            except FleetError as exc:
                raise fail(str(exc), 2) from None
            except OSError as exc:
                raise fail(f"cannot write to {out}: {exc}", 1) from None
        f = result.fleet
        console.print(
            f"simulated [bold]{f.hours:g} h[/] of {len(f.gpus)} GPUs on {len(f.nodes)} nodes "
            f"({len(f.engines)} engine instances): [bold]{result.requests:,}[/] requests"
            + (f", {result.spans_sent:,} spans sent to {otlp_endpoint}" if otlp_endpoint else "")
        )
        console.print(f"wrote {out}/fleet.toml, reservations.csv, prices.csv, ground_truth_*.parquet, experts/, logs/")
