"""`fleetledger collect [--config FILE]`: run the sidecar on this node until SIGTERM / Ctrl-C.

Runs the enabled collectors into the spool, ships to `collect.ship_to` when it names a ClickHouse
server (else only spools: the ingest flow loads the spool), serves /healthz and /metrics on
`collect.http_listen`, and stops cleanly within `collect.shutdown_timeout_s` on SIGTERM.
`collect.nvml.backend = "simulated"` samples a small simulated GPU set instead of the driver.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from fleetledger.cli.context import cli_errors, console, fail, state


def _simulated_nvml(settings: Any) -> tuple[Any, threading.Event]:
    from simulator.nvml import SimNVML, demo_gpus

    nv = settings.collect.nvml
    module = SimNVML(demo_gpus(nv.simulated_gpus, nv.simulated_model))
    stop = threading.Event()

    def tick() -> None:  # the simulated GPUs keep drawing power while the sidecar runs
        while not stop.wait(nv.interval_s):
            module.advance(nv.interval_s)

    threading.Thread(target=tick, name="simulated-nvml", daemon=True).start()
    return module, stop


def register(app: typer.Typer) -> None:
    @app.command("collect")
    def collect(
        ctx: typer.Context,
        config: Annotated[Path | None, typer.Option("--config", help="TOML settings file with a \\[collect] section")] = None,
        run_seconds: Annotated[float | None, typer.Option("--run-seconds", help="stop after this long (tests, demos)")] = None,
    ) -> None:
        """Run the node sidecar: GPU samplers, trace receivers, scrapers -> spool (-> store)."""
        from collectors.sidecar import Sidecar

        st = state(ctx)
        if config is not None:
            st.config_file = config
        settings = st.settings
        cfg = settings.collect
        nvml_module, sim_stop = (None, None)
        if cfg.nvml.enabled and cfg.nvml.backend == "simulated":
            nvml_module, sim_stop = _simulated_nvml(settings)
        stop = threading.Event()

        def on_signal(signum: int, _frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        with cli_errors():
            sidecar = Sidecar(cfg, nvml_module=nvml_module)
            try:
                sidecar.build()
                sidecar.start()
            except (OSError, ValueError) as exc:
                sidecar.shutdown(2.0)
                raise fail(f"the sidecar cannot start: {exc}", 1) from None
        names = ", ".join(c.name for c in sidecar.components) or "none"
        console.print(
            f"[bold]fleetledger collect[/] node [cyan]{sidecar.node}[/]: collectors {names}; "
            f"spool {cfg.spool.directory}; "
            + (f"shipping to {cfg.ship_to.split('@')[-1]}" if cfg.ship_to else "spool only")
            + f"; /healthz and /metrics on {cfg.http_listen.rpartition(':')[0]}:{sidecar.http_port}",
            highlight=False,
        )
        for name, why in sidecar.failed.items():
            console.print(f"[yellow]warning:[/] {name} is not running: {why}", highlight=False)
        stop.wait(run_seconds)
        console.print(f"stopping (budget {cfg.shutdown_timeout_s:.0f}s)...", highlight=False)
        sidecar.shutdown(cfg.shutdown_timeout_s)
        if sim_stop is not None:
            sim_stop.set()
        console.print("stopped cleanly", highlight=False)
