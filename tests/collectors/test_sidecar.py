"""The assembled sidecar in-process: simulated NVML -> spool -> shipper -> the real chDB store,
with /healthz and /metrics served from its own registry."""

from __future__ import annotations

import json
import time
import urllib.request

from collectors.config import CollectorConfig
from collectors.sidecar import Sidecar
from schemas.spool import list_segments, read_segment
from schemas.store import StoreUnavailableError
from simulator.nvml import SimNVML, demo_gpus


class Borrowed:
    """The test's store, unavailable for the first ``down`` opens; close() leaves it open."""

    def __init__(self, store, down: int) -> None:
        self.store, self.down = store, down

    def open(self):
        if self.down > 0:
            self.down -= 1
            raise StoreUnavailableError("ClickHouse server http://default@127.0.0.1:1/default is unreachable")
        return self

    def insert(self, table, data, *, dedup_token=None):
        return self.store.insert(table, data, dedup_token=dedup_token)

    def close(self):
        pass


def test_sidecar_samples_spools_and_ships(store, tmp_path):
    cfg = CollectorConfig(
        cluster="c1", node="node-a", http_listen="127.0.0.1:0", ship_to="http://default@127.0.0.1:1/default",
        spool={"directory": tmp_path / "spool"}, otlp={"enabled": False},
        nvml={"backend": "simulated", "interval_s": 0.05, "flush_interval_s": 0.2},
        shipper={"poll_interval_s": 0.05, "backoff_initial_s": 0.02, "backoff_max_s": 0.1},
    )
    nvml = SimNVML(demo_gpus(3))
    borrowed = Borrowed(store, down=3)
    sidecar = Sidecar(cfg, nvml_module=nvml, open_store=borrowed.open)
    sidecar.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and sidecar.telemetry.value("shipped_rows", component="shipper", table="gpu_samples") < 15:
            time.sleep(0.05)
        with urllib.request.urlopen(f"http://127.0.0.1:{sidecar.http_port}/healthz", timeout=5) as resp:
            health = json.loads(resp.read())
        with urllib.request.urlopen(f"http://127.0.0.1:{sidecar.http_port}/metrics", timeout=5) as resp:
            metrics = resp.read().decode()
    finally:
        sidecar.shutdown(5)
    assert health["status"] == "ok" and health["shipping"] is True and health["components"] == ["nvml"]
    assert 'fleetledger_errors_total{component="shipper",kind="StoreUnavailableError"} 3.0' in metrics
    assert "fleetledger_shipped_rows_total" in metrics
    # after shutdown: what was not shipped yet is still in the spool, the rest is in the store once
    left = sum(read_segment(s.path).num_rows for s in list_segments(tmp_path / "spool") if s.table == "gpu_samples")
    shipped = store.count("gpu_samples")
    assert shipped >= 15
    assert sidecar.telemetry.value("samples", component="nvml") == shipped + left  # each row in one place, once
    assert store.query_rows("SELECT uniqExact(gpu_uuid), any(cluster), any(node) FROM gpu_samples")[0] == (3, "c1", "node-a")
