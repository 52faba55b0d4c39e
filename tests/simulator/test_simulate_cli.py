"""`fleetledger simulate` writes the interfaces.md files; bad options get one clear line."""

from __future__ import annotations

import csv

import pyarrow.parquet as pq
from typer.testing import CliRunner

from fleetledger.cli.main import app
from schemas.tables import PRICES, RESERVATIONS


def test_simulate_writes_fleet_prices_reservations_and_truth(tmp_path):
    out = tmp_path / "sim"
    result = CliRunner().invoke(app, ["simulate", "--out", str(out), "--hours", "0.1", "--nodes", "2",
                                      "--seed", "3", "--no-pt"])
    assert result.exit_code == 0, result.output
    assert "requests" in result.output
    with (out / "reservations.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [f.name for f in RESERVATIONS if f.name != "loaded_at"]
    assert rows[0]["valid_from"].endswith("Z") and ";" in rows[0]["gpu_uuids"]
    covered = [u for r in rows for u in r["gpu_uuids"].split(";")]
    assert len(set(covered)) == 16
    with (out / "prices.csv").open() as fh:
        prices = list(csv.DictReader(fh))
    assert list(prices[0]) == [f.name for f in PRICES if f.name != "loaded_at"]
    assert {p["kind"] for p in prices} == {"gpu", "energy"}
    assert {"A100", "H100", "H200"} <= {p["gpu_model"].split()[1].split("-")[0] for p in prices if p["kind"] == "gpu"}
    truth = pq.read_table(out / "ground_truth_requests.parquet")
    assert truth.column_names[:12] == ["request_id", "trace_id", "engine_instance", "workflow", "tenant", "route",
                                       "reasoning_mode", "start_ts", "end_ts", "gpu_seconds", "energy_j", "cost_usd"]
    idle = pq.read_table(out / "ground_truth_idle.parquet")
    assert idle.column_names[:6] == ["reservation_id", "gpu_uuid", "hour", "idle_seconds", "idle_cost_usd", "idle_energy_j"]
    assert (out / "fleet.toml").read_text().count("[[collect.engines]]") == 4


def test_simulate_rejects_bad_protocol_and_nodes(tmp_path):
    r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--otlp-protocol", "udp"])
    assert r.exit_code == 2 and "http/protobuf" in r.output
    r = CliRunner().invoke(app, ["simulate", "--out", str(tmp_path), "--nodes", "0"])
    assert r.exit_code == 2
