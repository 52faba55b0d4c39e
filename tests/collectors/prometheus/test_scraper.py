"""The scraper against a real HTTP server serving the vLLM /metrics capture and bad answers."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from collectors.component import MemoryConsumer
from collectors.config import CollectorConfig
from collectors.prometheus.factory import build_targets, create_components
from collectors.prometheus.scraper import RENAMED_METRICS, PrometheusScraper, Target, labels_key
from collectors.telemetry import Telemetry
from schemas.tables import ENGINE_METRICS

MODEL = "Qwen/Qwen3-4B-Instruct-2507-FP8"


class MetricsServer:
    """Serves ``self.body`` with ``self.status`` after ``self.delay`` seconds."""

    def __init__(self, body: bytes = b""):
        self.body, self.status, self.delay, self.hits = body, 200, 0.0, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                return

            def do_GET(self):  # noqa: N802
                outer.hits += 1
                time.sleep(outer.delay)
                try:
                    self.send_response(outer.status)
                    self.send_header("Content-Type", "text/plain; version=0.0.4")
                    self.send_header("Content-Length", str(len(outer.body)))
                    self.end_headers()
                    self.wfile.write(outer.body)
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def metrics_server(fixtures_dir):
    server = MetricsServer((fixtures_dir / "vllm_metrics_nvcr-vllm-25.09_qwen3-4b.prom").read_bytes())
    yield server
    server.close()


def scraper_for(url, timeout_s=2.0, interval_s=15.0):
    consumer, telemetry = MemoryConsumer(), Telemetry()
    target = Target(url, "vllm-qwen3-4b-0", "vllm", "node-a", interval_s, timeout_s)
    return PrometheusScraper([target], "default", consumer, telemetry, clock=lambda: 1_790_000_000.5), target


def test_vllm_capture_to_exact_rows(metrics_server, store):
    scraper, target = scraper_for(metrics_server.url)
    assert scraper.scrape(target) == 266  # 289 vllm: samples minus 23 *_created series
    table = scraper.consumer.table("engine_metrics")
    assert table.schema.equals(ENGINE_METRICS)
    rows = {(r["metric"], r["labels_key"]): r for r in table.to_pylist()}
    base = f"engine=0,model_name={MODEL}"
    expected = {
        ("vllm:num_requests_running", base): 0.0,
        ("vllm:gpu_cache_usage_perc", base): 0.0011764705882353343,  # old name, kept as scraped
        ("vllm:kv_cache_usage_perc", base): 0.0011764705882353343,
        ("vllm:prompt_tokens_total", base): 246.0,
        ("vllm:generation_tokens_total", base): 1739.0,
        ("vllm:request_success_total", f"engine=0,finished_reason=stop,model_name={MODEL}"): 6.0,
        ("vllm:e2e_request_latency_seconds_bucket", f"engine=0,le=0.3,model_name={MODEL}"): 0.0,
        ("vllm:e2e_request_latency_seconds_count", base): 6.0,
        ("vllm:e2e_request_latency_seconds_sum", base): 41.35763955116272,
    }
    for key, value in expected.items():
        assert rows[key]["value"] == value, key
    bucket = rows[("vllm:e2e_request_latency_seconds_bucket", f"engine=0,le=0.3,model_name={MODEL}")]
    assert dict(bucket["labels"]) == {"engine": "0", "le": "0.3", "model_name": MODEL}
    assert (bucket["engine_instance"], bucket["engine_kind"], bucket["node"], bucket["cluster"]) == (
        "vllm-qwen3-4b-0", "vllm", "node-a", "default")
    assert str(bucket["ts"]) == "2026-09-21 14:13:20.500000+00:00"
    assert not any(m.endswith("_created") or not m.startswith("vllm:") for m, _ in rows)
    assert sum(1 for m, _ in rows if m == "vllm:e2e_request_latency_seconds_bucket") == 22
    assert "vllm:time_per_output_token_seconds_count" in {m for m, _ in rows}
    assert RENAMED_METRICS["vllm:gpu_cache_usage_perc"] == "vllm:kv_cache_usage_perc"
    assert store.insert("engine_metrics", table) == 266
    assert store.query_rows("SELECT value FROM engine_metrics WHERE metric = 'vllm:prompt_tokens_total'") == [(246.0,)]


def test_failed_scrapes_are_counted_and_skipped(metrics_server):
    scraper, target = scraper_for(metrics_server.url, timeout_s=0.3)
    good = metrics_server.body
    metrics_server.body = good[:5000] + b"\nvllm:broken{engine=\"0\" 1.0\n"
    assert scraper.scrape(target) == 0
    metrics_server.body, metrics_server.status = good, 500
    assert scraper.scrape(target) == 0
    metrics_server.status, metrics_server.delay = 200, 1.0
    assert scraper.scrape(target) == 0
    metrics_server.delay = 0.0
    assert scraper.scrape(target) == 266  # good again after each failure
    t = scraper.telemetry
    assert t.value("scrape_failures", target="vllm-qwen3-4b-0", reason="malformed") == 1
    assert t.value("scrape_failures", target="vllm-qwen3-4b-0", reason="http_500") == 1
    assert t.value("scrape_failures", target="vllm-qwen3-4b-0", reason="timeout") == 1
    assert scraper.consumer.rows("engine_metrics") == 266
    closed = MetricsServer()
    closed.close()
    scraper2, target2 = scraper_for(closed.url)
    assert scraper2.scrape(target2) == 0
    assert scraper2.telemetry.value("scrape_failures", target="vllm-qwen3-4b-0", reason="unreachable") == 1


def test_sglang_names_and_kind_from_prefix():
    body = (b"# TYPE sglang:num_running_reqs gauge\n"
            b'sglang:num_running_reqs{engine_type="unified",model_name="deepseek-v3",tp_rank="0",pp_rank="0",'
            b'moe_ep_rank="0"} 12.0\n'
            b"# TYPE sglang:eplb_balancedness gauge\n"
            b'sglang:eplb_balancedness{model_name="deepseek-v3"} 0.71\n')
    server = MetricsServer(body)
    try:
        consumer, telemetry = MemoryConsumer(), Telemetry()
        target = Target(server.url, "sglang-deepseek-v3-0", "", "node-b", 15.0, 2.0)
        assert PrometheusScraper([target], "default", consumer, telemetry).scrape(target) == 2
        rows = consumer.table("engine_metrics").to_pylist()
        assert [r["engine_kind"] for r in rows] == ["sglang", "sglang"]
        assert rows[0]["labels_key"] == "engine_type=unified,model_name=deepseek-v3,moe_ep_rank=0,pp_rank=0,tp_rank=0"
        assert rows[1]["value"] == 0.71
    finally:
        server.close()


def test_labels_key_is_canonical():
    assert labels_key({"b": "2", "a": "x,y"}) == "a=x\\,y,b=2"


def test_schedule_per_target_interval(metrics_server):
    config = CollectorConfig.model_validate({"cluster": "c1", "node": "node-a", "engines": [
        {"instance": "vllm-qwen3-4b-0", "model": "qwen3-4b", "node": "node-a", "metrics_url": metrics_server.url}],
        "scrape": {"interval_s": 0.2, "timeout_s": 0.1,
                   "targets": [{"url": "http://127.0.0.1:9/metrics", "engine_instance": "gone",
                                "interval_s": 30, "timeout_s": 0.1}]}})
    targets = build_targets(config.scrape, config.engines, "node-a")
    assert [(t.engine_instance, t.interval_s, t.timeout_s) for t in targets] == [
        ("gone", 30.0, 0.1), ("vllm-qwen3-4b-0", 0.2, 0.1)]
    consumer, telemetry = MemoryConsumer(), Telemetry()
    [scraper] = create_components(config, consumer, telemetry)
    scraper.start()
    try:
        deadline = time.monotonic() + 20
        while telemetry.value("scrapes", target="vllm-qwen3-4b-0") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        scraper.shutdown(2.0)
    assert telemetry.value("scrapes", target="vllm-qwen3-4b-0") >= 3
    assert telemetry.value("scrape_failures", target="gone", reason="unreachable") == 1  # 30 s interval: once
    assert consumer.table("engine_metrics").column("cluster").unique().to_pylist() == ["c1"]
    with pytest.raises(ValueError, match="longer than interval_s"):
        CollectorConfig.model_validate({"scrape": {"targets": [{"url": "http://x/metrics", "interval_s": 1,
                                                                "timeout_s": 5}]}})
