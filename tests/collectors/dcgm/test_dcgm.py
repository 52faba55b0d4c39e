"""DCGM exporter capture -> rows, written down by hand; the lowercase `hostname` variant; a real
HTTP scrape; bad scrapes counted and skipped."""

from __future__ import annotations

import datetime as dt
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from collectors.component import MemoryConsumer
from collectors.config import DcgmConfig
from collectors.dcgm.mapping import map_dcgm
from collectors.dcgm.scraper import DcgmScraper
from collectors.telemetry import Telemetry
from schemas.tables import GPU_PROCESSES, GPU_SAMPLES

TS_MS = 1_795_000_000_000
TS = dt.datetime.fromtimestamp(TS_MS / 1000, dt.UTC)
NULLS = {"gr_engine_active": None, "memory_used_bytes": None, "memory_total_bytes": None, "energy_mj": None,
         "sm_clock_mhz": None, "mem_clock_mhz": None, "throttle_reasons": None, "ecc_sbe_total": None,
         "ecc_dbe_total": None}


def expected_sample(gpu, uuid, temp, power, util, mem_util, node="gpu-node-1"):
    return {"ts": TS, "cluster": "c1", "node": node, "gpu_uuid": uuid, "gpu_index": gpu,
            "gpu_model": "NVIDIA H100 80GB HBM3", "mig_profile": "", "mig_instance": "",
            "sm_util_pct": util, "mem_util_pct": mem_util, "power_w": power, "temperature_c": temp,
            "source": "dcgm", **NULLS}


EXPECTED = {
    0: expected_sample(0, "GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005", 30.0, 113.611, 0.0, 0.0),
    1: expected_sample(1, "GPU-bc5610b9-79c8-fedd-8899-07539c7f868a", 29.0, 68.347, 0.0, 0.0),
    5: expected_sample(5, "GPU-39e28159-8c62-ee71-64db-b748edd61e15", 26.0, 65.742, 0.0, 0.0),
    # the capture has no DCGM_FI_DEV_MEM_COPY_UTIL line for GPUs 6 and 7: null, not 0
    7: expected_sample(7, "GPU-04d228d3-3b5a-3534-f5cf-969706647d56", 26.0, 66.997, 0.0, None),
}
EXPECTED_PROCESS = {
    "ts": TS, "cluster": "c1", "node": "gpu-node-1", "gpu_uuid": "GPU-c4529c8d-69c4-b61d-e0bc-7b2460096005",
    "pid": 0, "process_name": "", "container_id": "", "pod": "vllm-agg-0-vllmdecodeworker-s65j5",
    "namespace": "dynamo-workload", "container": "main", "used_memory_bytes": None, "sm_util_pct": None,
    "source": "dcgm",
}


def _check(tables, node="gpu-node-1"):
    samples = tables["gpu_samples"]
    assert samples.schema == GPU_SAMPLES
    rows = samples.to_pylist()
    assert [r["gpu_index"] for r in rows] == list(range(8))
    for idx, exp in EXPECTED.items():
        got = rows[idx]
        exp = {**exp, "node": node}
        assert got.keys() == exp.keys()
        for key, value in exp.items():
            assert got[key] == (pytest.approx(value) if isinstance(value, float) else value), (idx, key)
    procs = tables["gpu_processes"]
    assert procs.schema == GPU_PROCESSES
    assert procs.to_pylist() == [{**EXPECTED_PROCESS, "node": node}]


def test_fixture_maps_to_hand_written_rows(fixtures_dir):
    text = (fixtures_dir / "dcgm_exporter_h100_eks_capture.prom").read_text()
    tables = map_dcgm(text, TS_MS, "c1", "fallback-node", {})
    assert set(tables) == {"gpu_samples", "gpu_processes"}
    _check(tables)


def test_lowercase_hostname_variant(fixtures_dir):
    text = (fixtures_dir / "dcgm_exporter_h100_eks_capture.prom").read_text()
    text = text.replace('Hostname="gpu-node-1"', 'hostname="gpu-node-7"')
    assert "Hostname" not in text
    _check(map_dcgm(text, TS_MS, "c1", "fallback-node", {}), node="gpu-node-7")


def test_units_fb_mib_energy_and_xid_changes():
    lab = 'gpu="0",UUID="GPU-1",modelName="NVIDIA H200",Hostname="n1"'
    text = "\n".join([
        f"DCGM_FI_DEV_FB_USED{{{lab}}} 1024",
        f"DCGM_FI_DEV_FB_FREE{{{lab}}} 3000",
        f"DCGM_FI_DEV_FB_RESERVED{{{lab}}} 72",
        f"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{{{lab}}} 123456789012",
        f"DCGM_FI_PROF_GR_ENGINE_ACTIVE{{{lab}}} 0.75",
        f"DCGM_FI_DEV_SM_CLOCK{{{lab}}} 1980",
        f"DCGM_FI_DEV_CLOCK_THROTTLE_REASONS{{{lab}}} 4",
        f"DCGM_FI_DEV_XID_ERRORS{{{lab}}} 79",
        'DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-1",modelName="NVIDIA H200",Hostname="n1",GPU_I_PROFILE="1g.18gb",GPU_I_ID="3"} 10',
        "",
    ])
    last: dict[str, int] = {}
    t = map_dcgm(text, TS_MS, "c1", "x", last)
    whole, mig = t["gpu_samples"].to_pylist()
    assert whole["memory_used_bytes"] == 1024 * 1024 * 1024
    assert whole["memory_total_bytes"] == (1024 + 3000 + 72) * 1024 * 1024
    assert whole["energy_mj"] == 123456789012 and whole["gr_engine_active"] == pytest.approx(0.75)
    assert (whole["sm_clock_mhz"], whole["throttle_reasons"]) == (1980, 4)
    assert (mig["mig_profile"], mig["mig_instance"], mig["memory_used_bytes"]) == ("1g.18gb", "3", 10 * 1024 * 1024)
    assert [(e["xid"], e["event_kind"]) for e in t["gpu_events"].to_pylist()] == [(79, "xid")]
    assert "gpu_events" not in map_dcgm(text, TS_MS + 1000, "c1", "x", last)  # unchanged: not reported again


class _Exporter(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.end_headers()
        self.wfile.write(type(self).body)

    def log_message(self, *args):
        pass


@pytest.fixture
def exporter():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_scrape_over_http_and_bad_scrapes_are_skipped(exporter, fixtures_dir):
    _Exporter.body = (fixtures_dir / "dcgm_exporter_h100_eks_capture.prom").read_bytes()
    url = f"http://127.0.0.1:{exporter.server_address[1]}/metrics"
    out, tel = MemoryConsumer(), Telemetry()
    scraper = DcgmScraper(DcgmConfig(enabled=True, url=url, timeout_s=2), out, tel, cluster="c1", node="n",
                          now_ns=lambda: TS_MS * 1_000_000)
    assert scraper.scrape_once() == 8
    _check({k: out.table(k) for k in ("gpu_samples", "gpu_processes")})
    _Exporter.body = b"DCGM_FI_DEV_GPU_TEMP{gpu=\"0\",UUID=\"GPU-1\" 30\n"  # broken label block
    assert scraper.scrape_once() == 0
    assert tel.value("errors", component="dcgm", kind="parse") == 1
    exporter.shutdown()
    exporter.server_close()
    assert scraper.scrape_once() == 0  # connection refused
    assert tel.value("errors", component="dcgm", kind="fetch") == 1
    assert out.rows("gpu_samples") == 8
