"""Python API of the simulator: ``simulate(...) -> SimulationResult`` and the files it writes.

``simulate`` builds the fleet, runs every instance's batching model (requests, timings, ground
truth), computes the MoE routing, and when ``out`` is given writes (interfaces.md):
``fleet.toml``, ``reservations.csv``, ``prices.csv``, ``ground_truth_requests.parquet``,
``ground_truth_idle.parquet``, ``experts/<instance>/expert_distribution_recorder_<ms>.json``
(+ ``.pt`` with torch), ``experts/planted_hot.json`` and ``logs/<instance>.log`` (vLLM EPLB).
With ``otlp_endpoint`` it sends every request's spans through the OpenTelemetry SDK exporters.

Telemetry and Prometheus text are stepped separately, at the caller's pace:
``result.telemetry(node)`` gives a ``FleetTelemetry`` (``advance_to(t)``, ``nvml`` module object)
and ``result.metrics_server()`` a loopback ``MetricsServer``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from simulator.catalogue import ENERGY_USD_PER_KWH, GPUS
from simulator.fleet import Fleet, fleet_to_toml, iso, load_fleet
from simulator.fleetrun import FleetRun, run_fleet
from simulator.moe import MoeTrace, planted_truth, trace_moe, write_eplb_log, write_sglang_dumps

RESERVATION_COLUMNS = ["reservation_id", "provider", "pricing_model", "gpu_model", "cluster", "nodes", "gpu_uuids",
                       "gpu_count", "usd_per_gpu_hour", "owner_team", "valid_from", "valid_to"]
PRICE_COLUMNS = ["price_id", "kind", "provider", "pricing_model", "gpu_model", "region", "cluster", "usd_per_unit",
                 "unit", "valid_from", "valid_to"]

Progress = Callable[[str, float], None]  # (stage, fraction done of the stage)


@dataclass
class SimulationResult:
    fleet: Fleet
    run: FleetRun
    moe: dict[str, MoeTrace] = field(default_factory=dict)
    out: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)
    spans_sent: int = 0

    @property
    def requests(self) -> int:
        return self.run.n_requests

    def request_truth(self) -> pa.Table:
        return self.run.request_truth()

    def idle_truth(self) -> pa.Table:
        return self.run.idle_truth()

    def telemetry(self, node: str | None = None):
        from simulator.telemetry import FleetTelemetry

        return FleetTelemetry(self.run, node)

    def metrics_server(self, telemetry=None):
        from simulator.prometheus import MetricsServer

        return MetricsServer(self.run, telemetry, self.moe)

    def send_spans(self, endpoint: str, protocol: str = "http/protobuf",
                   progress: Callable[[int], None] | None = None) -> int:
        from simulator.otlp import SpanSender

        sender = SpanSender(endpoint, protocol)
        try:
            sent = sender.send(self.run, progress)
        finally:
            sender.shutdown()
        self.spans_sent += sent
        return sent


def simulate(*, hours: float | None = None, nodes: int | None = None, seed: int | None = None,
             start: str | datetime | None = None, fleet_file: Path | str | None = None, out: Path | str | None = None,
             otlp_endpoint: str | None = None, otlp_protocol: str = "http/protobuf", write_pt: bool | None = None,
             fleet: Fleet | None = None, progress: Progress | None = None) -> SimulationResult:
    """Simulate a fleet window. Same arguments and seed -> identical requests, truth and files."""
    def step(stage: str, frac: float) -> None:
        if progress:
            progress(stage, frac)

    if fleet is None:
        fleet = load_fleet(fleet_file, nodes=nodes, hours=hours, seed=seed, start=start)
    else:
        fleet.validate()
    step("batching", 0.0)
    run = run_fleet(fleet)
    step("batching", 1.0)
    moe = {e.instance: trace_moe(run, i) for i, e in enumerate(fleet.engines) if e.spec.moe is not None}
    result = SimulationResult(fleet, run, moe)
    if out is not None:
        write_outputs(result, Path(out), write_pt=write_pt, progress=step)
    if otlp_endpoint:
        total = max(1, run.n_requests)
        done = [0]

        def spans_progress(n: int) -> None:
            done[0] += n
            step("spans", done[0] / total)

        result.send_spans(otlp_endpoint, otlp_protocol, spans_progress)
    return result


def reservations_rows(fleet: Fleet) -> list[dict]:
    return [{
        "reservation_id": r.reservation_id, "provider": r.provider, "pricing_model": r.pricing_model,
        "gpu_model": r.gpu_model, "cluster": r.cluster, "nodes": ";".join(r.nodes), "gpu_uuids": ";".join(r.gpu_uuids),
        "gpu_count": len(r.gpu_uuids), "usd_per_gpu_hour": r.usd_per_gpu_hour, "owner_team": r.owner_team,
        "valid_from": iso(r.valid_from), "valid_to": iso(r.valid_to),
    } for r in fleet.reservations]


def prices_rows(fleet: Fleet) -> list[dict]:
    """List prices of every GPU model and pricing model in the catalogue, and the energy price."""
    provider = fleet.option("provider", "aws")
    region = fleet.option("region", "us-east-1")
    vf = min(r.valid_from for r in fleet.reservations) if fleet.reservations else fleet.start
    vt = max(r.valid_to for r in fleet.reservations) if fleet.reservations else fleet.start
    rows = []
    for spec in GPUS.values():
        for pm, usd in spec.list_usd_per_gpu_hour.items():
            rows.append({"price_id": f"list-{spec.key.lower()}-{pm}", "kind": "gpu", "provider": provider,
                         "pricing_model": pm, "gpu_model": spec.nvml_name, "region": region, "cluster": "",
                         "usd_per_unit": usd, "unit": "gpu-hour", "valid_from": iso(vf), "valid_to": iso(vt)})
    rows.append({"price_id": "energy-grid", "kind": "energy", "provider": provider, "pricing_model": "on_demand",
                 "gpu_model": "", "region": region, "cluster": "",
                 "usd_per_unit": float(fleet.option("energy_usd_per_kwh", ENERGY_USD_PER_KWH)), "unit": "kWh",
                 "valid_from": iso(vf), "valid_to": iso(vt)})
    return rows


def _write_csv(path: Path, columns: list[str], rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def write_outputs(result: SimulationResult, out: Path, write_pt: bool | None = None,
                  progress: Progress | None = None) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    fleet, run = result.fleet, result.run
    files = result.files
    for e in fleet.engines:  # the sidecar finds the dumps and logs through its engine config
        if e.engine_kind == "sglang" and e.spec.moe is not None:
            e.expert_dump_dir = str((out / "experts" / e.instance).resolve())
        if e.eplb:
            e.eplb_log_file = str((out / "logs" / f"{e.instance}.log").resolve())
    files["fleet"] = out / "fleet.toml"
    files["fleet"].write_text(fleet_to_toml(fleet))
    files["reservations"] = out / "reservations.csv"
    _write_csv(files["reservations"], RESERVATION_COLUMNS, reservations_rows(fleet))
    files["prices"] = out / "prices.csv"
    _write_csv(files["prices"], PRICE_COLUMNS, prices_rows(fleet))
    if progress:
        progress("truth", 0.0)
    files["ground_truth_requests"] = out / "ground_truth_requests.parquet"
    pq.write_table(run.request_truth(), files["ground_truth_requests"])
    files["ground_truth_idle"] = out / "ground_truth_idle.parquet"
    pq.write_table(run.idle_truth(), files["ground_truth_idle"])
    if progress:
        progress("truth", 1.0)
    traces = list(result.moe.values())
    for k, trace in enumerate(traces):
        if trace.engine.engine_kind == "sglang":
            write_sglang_dumps(trace, run, out, write_pt=write_pt)
        if trace.engine.eplb:
            files[f"eplb_log:{trace.engine.instance}"] = write_eplb_log(trace, run, out)
        if progress:
            progress("experts", (k + 1) / len(traces))
    if traces:
        files["planted_hot"] = out / "experts" / "planted_hot.json"
        files["planted_hot"].parent.mkdir(parents=True, exist_ok=True)
        files["planted_hot"].write_text(json.dumps(planted_truth(traces, run), indent=1))
    result.out = out
    return files
