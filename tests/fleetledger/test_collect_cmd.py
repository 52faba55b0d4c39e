"""`fleetledger collect` as a real subprocess: simulated NVML into the spool, /healthz and /metrics,
clean stop on SIGTERM within the budget; without a driver the real pynvml backend logs one line
and the other collectors run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from schemas.spool import list_segments, read_segment

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, spool: Path, port: int, backend: str) -> Path:
    path.write_text(f"""
[collect]
cluster = "c9"
node = "node-t"
http_listen = "127.0.0.1:{port}"
shutdown_timeout_s = 5

[collect.spool]
directory = "{spool}"

[collect.nvml]
backend = "{backend}"
interval_s = 0.1
simulated_gpus = 2

[collect.otlp]
enabled = false
""")
    return path


def start(config: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLEETLEDGER_")}
    env.update(PYTHONPATH=str(ROOT), COLUMNS="300")
    return subprocess.Popen(
        [sys.executable, "-c", "from fleetledger.cli.main import run; run()", "collect", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def get(port: int, path: str, timeout: float = 20.0) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> tuple[float, str, str]:
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    return time.monotonic() - began, out, err


def test_collect_simulated_serves_health_metrics_and_stops_on_sigterm(tmp_path):
    port = free_port()
    spool = tmp_path / "spool"
    proc = start(write_config(tmp_path / "fleet.toml", spool, port, "simulated"))
    try:
        code, body = get(port, "/healthz")
        assert code == 200, body
        health = json.loads(body)
        assert health["node"] == "node-t" and "nvml" in health["components"] and health["shipping"] is False
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len([s for s in list_segments(spool) if s.table == "gpu_samples"]) < 3:
            time.sleep(0.1)
        code, metrics = get(port, "/metrics")
        assert code == 200
        assert 'fleetledger_samples_total{component="nvml"}' in metrics
        assert "fleetledger_spool_bytes" in metrics and "fleetledger_shipping_lag_seconds" in metrics
        assert get(port, "/nope")[0] == 404
    finally:
        elapsed, out, err = stop(proc)
    assert proc.returncode == 0, err
    assert elapsed < 5 + 3  # the shutdown budget plus interpreter exit
    assert "stopped cleanly" in out
    segs = [s for s in list_segments(spool) if s.table == "gpu_samples"]
    assert len(segs) >= 3
    rows = read_segment(segs[0].path).to_pylist()
    assert {r["gpu_index"] for r in rows} == {0, 1}
    assert {(r["cluster"], r["node"], r["source"]) for r in rows} == {("c9", "node-t", "nvml")}
    energies = [read_segment(s.path).column("energy_mj").to_pylist()[0] for s in segs]
    assert energies == sorted(energies) and energies[-1] > energies[0]  # the simulated GPUs draw power


def test_collect_without_a_driver_runs_the_other_collectors(tmp_path):
    port = free_port()
    proc = start(write_config(tmp_path / "fleet.toml", tmp_path / "spool", port, "pynvml"))
    try:
        code, body = get(port, "/healthz")
        assert code == 200
        assert "nvml" not in json.loads(body)["components"]
        _, metrics = get(port, "/metrics")
        assert 'fleetledger_errors_total{component="nvml",kind="unavailable"} 1.0' in metrics
    finally:
        _, out, err = stop(proc)
    assert proc.returncode == 0, err
    assert sum("NVML cannot be initialised" in line for line in err.splitlines()) == 1


def test_collect_rejects_an_embedded_ship_to(tmp_path):
    cfg = write_config(tmp_path / "fleet.toml", tmp_path / "spool", free_port(), "simulated")
    cfg.write_text(cfg.read_text().replace('cluster = "c9"', f'cluster = "c9"\nship_to = "chdb://{tmp_path}/s"'))
    proc = start(cfg)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "collect.ship_to" in err and "server DSN" in err
