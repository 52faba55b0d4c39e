"""`fleetledger experts` (hottest experts, worst layers) and `fleetledger experts rebalance` (EPLB plan).

``fleetledger experts [--model M] [--since T]`` reads ``expert_hotness`` (and the engines' own
balancedness reports: vLLM EPLB log samples, SGLang ``sglang:eplb_balancedness``) from the store.
``fleetledger experts rebalance --loads FILE.json --replicas R --groups G --nodes N --gpus P``
prints the DeepSeek EPLB replica plan for ``{"weight": [[...], ...]}`` as JSON; it needs no store.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fleetledger.cli.context import console, fail, open_store

_TS = "DateTime64(3, 'UTC')"
_FILTER = f"window_start >= {{since:{_TS}}} AND ({{model:String}} = '' OR model = {{model:String}})"

HOT_EXPERTS_SQL = f"""
SELECT model, layer, hot.1 AS expert, sum(hot.2 * total_tokens) AS tokens, avg(hot.2) AS avg_share,
       uniqExact(engine_instance) AS instances, count() AS windows
FROM expert_hotness FINAL
ARRAY JOIN arrayZip(hot_experts, hot_shares) AS hot
WHERE {_FILTER}
GROUP BY model, layer, expert
ORDER BY tokens DESC, model, layer, expert
LIMIT {{limit:UInt32}}
"""

WORST_LAYERS_SQL = f"""
SELECT model, engine_instance, layer, avg(balancedness) AS balancedness, max(max_vio) AS max_vio,
       sum(imbalance_tax_usd) AS imbalance_tax_usd, count() AS windows
FROM expert_hotness FINAL
WHERE {_FILTER}
GROUP BY model, engine_instance, layer
ORDER BY balancedness ASC, imbalance_tax_usd DESC, model, engine_instance, layer
LIMIT {{limit:UInt32}}
"""

ENGINE_BALANCE_SQL = f"""
SELECT model, engine_instance, source, avg(balancedness) AS avg_balancedness, min(balancedness) AS min_balancedness,
       count() AS samples
FROM (
    SELECT model, engine_instance, source, balancedness, ts FROM expert_balance_samples FINAL
    UNION ALL
    SELECT labels['model_name'] AS model, engine_instance, 'sglang_metric' AS source, value AS balancedness, ts
    FROM engine_metrics WHERE metric = 'sglang:eplb_balancedness'
)
WHERE ts >= {{since:{_TS}}} AND ({{model:String}} = '' OR model = {{model:String}})
GROUP BY model, engine_instance, source
ORDER BY avg_balancedness ASC
LIMIT {{limit:UInt32}}
"""

_RELATIVE_RE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str | None, now: datetime | None = None) -> datetime:
    """``24h`` / ``7d`` / ``30m`` / ``2w`` before now, or an ISO-8601 date/time (UTC if no offset)."""
    if not text:
        return datetime(1970, 1, 1, tzinfo=UTC)
    now = now or datetime.now(UTC)
    m = _RELATIVE_RE.match(text.strip())
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--since {text!r}: use e.g. 24h, 7d, 30m or an ISO time like 2026-11-29T00:00:00Z") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def load_weight(path: Path) -> list:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"--loads {path}: no such file") from None
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"--loads {path}: not a JSON file ({exc})") from None
    weight = doc.get("weight") if isinstance(doc, dict) else doc
    if not isinstance(weight, list):
        raise ValueError(f'--loads {path}: expected {{"weight": [[load, ...], ...]}} (layers x experts)')
    return weight


def _table(title: str, columns: list[str], rows: list[tuple], formats: dict[int, str]) -> Table:
    table = Table(title=title, title_justify="left")
    for name in columns:
        table.add_column(name, justify="left" if name in ("model", "engine_instance", "source") else "right")
    for row in rows:
        table.add_row(*[(formats[i].format(v) if i in formats else str(v)) for i, v in enumerate(row)])
    return table


def register(app: typer.Typer) -> None:
    experts_app = typer.Typer(
        help="Hot MoE experts, unbalanced layers and EPLB replica plans.",
        invoke_without_command=True,
        no_args_is_help=False,
    )
    app.add_typer(experts_app, name="experts")

    @experts_app.callback()
    def experts(
        ctx: typer.Context,
        model: Annotated[str, typer.Option("--model", help="only this model")] = "",
        since: Annotated[str | None, typer.Option("--since", help="24h, 7d, ... or an ISO time (default: all)")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1, max=10_000, help="rows per table")] = 10,
    ) -> None:
        """Print the hottest experts and the worst-balanced layers from the store."""
        if ctx.invoked_subcommand is not None:
            return
        try:
            since_ts = parse_since(since)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        params = {"since": since_ts, "model": model, "limit": limit}
        with open_store(ctx) as store:
            hot = store.query_rows(HOT_EXPERTS_SQL, params)
            worst = store.query_rows(WORST_LAYERS_SQL, params)
            engine = store.query_rows(ENGINE_BALANCE_SQL, params)
        if not hot and not worst and not engine:
            console.print("no expert statistics yet: collect expert loads (sidecar) and run the hourly flow "
                          "(`fleetledger run`), then try again")
            return
        if hot:
            console.print(_table(
                "Hottest experts", ["model", "layer", "expert", "tokens", "avg share", "instances", "windows"], hot,
                {3: "{:,.0f}", 4: "{:.1%}"},
            ))
        if worst:
            console.print(_table(
                "Worst-balanced layers (balancedness = mean/max, 1.0 is perfect)",
                ["model", "engine_instance", "layer", "balancedness", "max_vio", "imbalance $", "windows"], worst,
                {3: "{:.3f}", 4: "{:.2f}", 5: "${:,.2f}"},
            ))
        if engine:
            console.print(_table(
                "Engine-reported balancedness (whole model)",
                ["model", "engine_instance", "source", "avg", "min", "samples"], engine, {3: "{:.3f}", 4: "{:.3f}"},
            ))

    @experts_app.command()
    def rebalance(
        loads: Annotated[Path, typer.Option("--loads", help='JSON file {"weight": [[...], ...]} (layers x experts)')],
        replicas: Annotated[int, typer.Option("--replicas", min=1, help="physical expert slots in all")],
        groups: Annotated[int, typer.Option("--groups", min=1, help="expert groups")],
        nodes: Annotated[int, typer.Option("--nodes", min=1, help="server nodes")],
        gpus: Annotated[int, typer.Option("--gpus", min=1, help="GPUs in all (a multiple of --nodes)")],
    ) -> None:
        """Print the DeepSeek EPLB replica plan (phy2log, log2phy, logcnt) as JSON."""
        from pipelines.experts.eplb import EplbInputError, rebalance_experts

        try:
            plan = rebalance_experts(load_weight(loads), replicas, groups, nodes, gpus)
        except (ValueError, EplbInputError) as exc:
            raise fail(str(exc), 2) from None
        typer.echo(json.dumps(plan.to_dict()))
