"""`fleetledger demo`: the whole product on a simulated fleet, with progress and a summary."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from fleetledger.cli.context import cli_errors, console, fail, state

ACCURACY_BOUND = 0.03  # per-workflow cost within 3% of the ground truth


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        ctx: typer.Context,
        hours: Annotated[float, typer.Option("--hours", min=1, max=48, help="virtual hours to simulate")] = 6.0,
        out: Annotated[Path, typer.Option("--out", help="folder for the report, ground truth, spool")] = Path("demo-out"),
        seed: Annotated[int, typer.Option("--seed", help="simulator seed (same seed, same fleet)")] = 7,
        store: Annotated[str | None, typer.Option("--store", help="store DSN (default: a chDB folder inside --out)")] = None,
    ) -> None:
        """Simulate a 16-GPU fleet, run the real collectors and flows on it, and report its costs."""
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # the progress bars tell the story
        from fleetledger.demo import DemoOptions, run_demo

        settings = state(ctx).settings
        store_dsn = store or settings.store or ""
        opts = DemoOptions(hours=hours, seed=seed, out=out, store_dsn=store_dsn,
                           pipelines=settings.pipelines.model_dump())
        started = time.perf_counter()
        console.print(f"[bold]fleetledger demo[/]: {hours:g} virtual hours of a simulated 16-GPU fleet -> {out}/")
        with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            tasks: dict[str, int] = {}

            def stage(name: str, frac: float) -> None:
                key = name.split(":")[0]
                if key not in tasks:
                    for other in tasks.values():
                        progress.update(other, completed=100)
                    tasks[key] = progress.add_task(name, total=100)
                progress.update(tasks[key], description=name, completed=frac * 100)

            with cli_errors():
                result = run_demo(opts, stage)
            for t in tasks.values():
                progress.update(t, completed=100)
        ok = summarize(result)
        console.print(f"[dim]demo finished in {time.perf_counter() - started:.0f} s "
                      f"({', '.join(f'{k} {v:.1f}s' for k, v in result.timings.items())})[/]")
        if not ok:
            raise fail("the demo's checks did not hold (see above)", 1)


def summarize(result) -> bool:
    """Print the demo's findings; return False when conservation or accuracy fails."""
    from fleetledger.demo import accuracy, request_error_quantiles
    from schemas import Store

    ok = True
    params = {"a": result.window_start.replace(tzinfo=None), "b": result.window_end.replace(tzinfo=None)}
    with Store.open(result.store_dsn) as store:
        console.print(f"\nCollected: {result.requests_simulated:,} requests simulated, {result.spans_sent:,} spans sent; "
                      + ", ".join(f"{t} {n:,}" for t, n in sorted(result.ingested_rows.items())))
        top = store.query_polars(
            "SELECT workflow, sum(requests) AS n_requests, round(sum(cost_usd), 2) AS usd, "
            "round(sum(cost_usd) / nullIf(sum(prompt_tokens + completion_tokens), 0) * 1e6, 4) AS usd_per_1m_tokens, "
            "round(sum(gpu_seconds), 1) AS gpu_s, round(sum(energy_kwh), 3) AS kwh "
            "FROM workflow_costs_hourly FINAL WHERE hour >= {a:DateTime64(3)} AND hour < {b:DateTime64(3)} "
            "GROUP BY workflow ORDER BY usd DESC", params)
        _table("Top workflows by cost", top)
        _table("Top workflows by $ per 1M tokens", top.sort("usd_per_1m_tokens", descending=True, nulls_last=True))
        idle = store.query_polars(
            "SELECT reservation_id, owner_team, pricing_model, round(sum(idle_seconds) / 3600, 2) AS idle_gpu_hours, "
            "round(sum(idle_cost_usd), 2) AS idle_usd, "
            "round(100 * sum(idle_seconds) / nullIf(sum(reserved_seconds), 0), 1) AS idle_pct "
            "FROM idle_costs_hourly FINAL WHERE hour >= {a:DateTime64(3)} AND hour < {b:DateTime64(3)} "
            "GROUP BY reservation_id, owner_team, pricing_model ORDER BY idle_usd DESC LIMIT 8", params)
        _table("Idle reservations", idle)
        hot = store.query_polars(
            "SELECT model, engine_instance, layer, hot_experts[1] AS hottest_expert, "
            "round(hot_shares[1] * 100, 2) AS share_pct, round(balancedness, 3) AS balance, "
            "round(imbalance_tax_usd, 4) AS tax_usd "
            "FROM expert_hotness FINAL WHERE window_end > {a:DateTime64(3)} AND window_start < {b:DateTime64(3)} "
            "ORDER BY balancedness ASC LIMIT 6", params)
        _table("Hottest experts (least balanced layers)", hot)
        runs = store.query_polars(
            "SELECT count() AS windows, sum(total_cost_usd) AS total, sum(attributed_cost_usd) AS attributed, "
            "sum(idle_cost_usd) AS idle, sum(total_energy_j) AS energy_total, "
            "sum(attributed_energy_j) + sum(idle_energy_j) AS energy_split, min(conservation_ok) AS all_ok "
            "FROM attribution_runs FINAL WHERE window_start >= {a:DateTime64(3)} AND window_start < {b:DateTime64(3)}",
            params).row(0, named=True)
        gap = abs(runs["total"] - runs["attributed"] - runs["idle"]) if runs["windows"] else float("nan")
        conserved = bool(runs["windows"]) and bool(runs["all_ok"]) and gap <= 1e-6 * max(1.0, runs["total"])
        ok &= conserved
        console.print(
            f"\n[bold]Conservation[/] over {runs['windows']} hourly windows: total ${runs['total']:,.2f} = "
            f"attributed ${runs['attributed']:,.2f} + idle ${runs['idle']:,.2f} (gap ${gap:.2e}) "
            + ("[green]holds[/]" if conserved else "[red]FAILS[/]"))
        acc = accuracy(store, result.out / "ground_truth_requests.parquet", result.window_start, result.window_end)
        labelled = acc.filter(acc["truth_usd"] > 0)
        worst = float(labelled["rel_error"].abs().max()) if labelled.height else float("nan")
        _table("Accuracy against the simulator's ground truth (per workflow)", acc.with_columns(
            (acc["rel_error"] * 100).round(2).alias("error_pct")).drop("rel_error"))
        q = request_error_quantiles(store, result.out / "ground_truth_requests.parquet", result.window_start,
                                    result.window_end)
        accurate = worst <= ACCURACY_BOUND
        ok &= accurate
        console.print(
            f"[bold]Accuracy[/]: worst per-workflow error {worst * 100:.2f}% (bound {ACCURACY_BOUND * 100:.0f}%) "
            + ("[green]within bound[/]" if accurate else "[red]OUT OF BOUND[/]")
            + (f"; per-request |error| p50 {q['p50'] * 100:.1f}%, p90 {q['p90'] * 100:.1f}%, "
               f"p99 {q['p99'] * 100:.1f}% over {q['requests']:,} requests" if q else ""))
    (result.out / "summary.json").write_text(json.dumps({
        "window_start": result.window_start.isoformat(), "window_end": result.window_end.isoformat(),
        "requests": result.requests_simulated, "spans_sent": result.spans_sent, "ingested_rows": result.ingested_rows,
        "conservation_ok": conserved, "conservation_gap_usd": gap, "worst_workflow_error": worst,
        "request_error": q, "timings_s": result.timings,
    }, indent=1, default=str))
    cli = _cli_name()
    console.print("\nNext:")
    if result.report:
        console.print(f"  open {result.report}")
    console.print(f"  {cli} --store {result.store_dsn} sql \"SELECT * FROM workflow_costs_daily_v ORDER BY cost_usd DESC LIMIT 10\"",
                  highlight=False, soft_wrap=True)
    console.print(f"  {cli} --store {result.store_dsn} experts", highlight=False, soft_wrap=True)
    console.print(f"  {cli} --store {result.store_dsn} export focus --from {result.window_start:%Y-%m-%dT%H:%MZ} "
                  f"--to {result.window_end:%Y-%m-%dT%H:%MZ} --format csv --out focus.csv", highlight=False, soft_wrap=True)
    return ok


def _cli_name() -> str:
    """How the user can call us again: `.venv/bin/fleetledger` after `make demo`, else `fleetledger`."""
    exe = Path(sys.argv[0])
    if exe.name == "fleetledger" and exe.is_absolute() and exe.parent != Path(shutil.which("fleetledger") or "/").parent:
        try:
            return str(exe.relative_to(Path.cwd()))
        except ValueError:
            return str(exe)
    return "fleetledger"


def _table(title: str, df) -> None:
    table = Table(title=title, title_justify="left", title_style="bold")
    for name in df.columns:
        table.add_column(name, justify="right" if df[name].dtype.is_numeric() else "left")
    for row in df.iter_rows():
        table.add_row(*["" if v is None else f"{v:,}" if isinstance(v, int) else str(v) for v in row])
    console.print(table)
