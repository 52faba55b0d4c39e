"""Prometheus text of vLLM, SGLang and DCGM over loopback HTTP parses and follows the load."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        return resp.read().decode()


def _samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def test_every_text_parses_and_counters_grow(small_sim, fixtures_dir):
    tel = small_sim.telemetry()
    server = small_sim.metrics_server(tel)
    server.start()
    try:
        assert server.base_url.startswith("http://127.0.0.1:")
        tel.advance_to(300.0)
        early = {name: _samples(_get(url)) for name, url in server.engine_urls.items()}
        dcgm = {node: _get(url) for node, url in server.dcgm_urls.items()}
        tel.advance_to(900.0)
        late = {name: _samples(_get(url)) for name, url in server.engine_urls.items()}
        try:
            urllib.request.urlopen(server.base_url + "/nope", timeout=5)
            raise AssertionError("404 expected")
        except urllib.error.HTTPError as exc:
            assert exc.code == 404
    finally:
        server.shutdown()
        server.shutdown()  # idempotent
    fixture_names = {f.name for f in text_string_to_metric_families(
        (fixtures_dir / "vllm_metrics_nvcr-vllm-25.09_qwen3-4b.prom").read_text()) if f.name.startswith("vllm:")}
    for name, s in late.items():
        if name.startswith("vllm-"):
            key = "vllm:generation_tokens_total"
            assert {x.labels["model_name"] for x in s[key]} and s[key][0].labels["engine"] == "0"
            assert "vllm:kv_cache_usage_perc" in s and "vllm:request_success_total" in s
            old = "vllm:gpu_cache_usage_perc" in s
            assert old == (small_sim.fleet.engines[[e.instance for e in small_sim.fleet.engines].index(name)].vllm_metrics == "v0.10")
        else:
            key = "sglang:generation_tokens_total"
            lab = s[key][0].labels
            assert set(lab) == {"model_name", "engine_type", "tp_rank", "pp_rank", "moe_ep_rank"}
            assert "sglang:eplb_balancedness_count" in s
            buckets = [x for x in s["sglang:eplb_gpu_physical_count_bucket"] if x.labels["layer"] == "10"]
            assert len(buckets) == 9  # 8 EP ranks + Inf
        assert s[key][0].value > early[name][key][0].value > 0
    # the old and new vLLM names we serve are names the captured vLLM /metrics has
    v010 = next(n for n in late if n.startswith("vllm-llama3-8b"))
    ours = {n.removesuffix("_total").removesuffix("_bucket").removesuffix("_count").removesuffix("_sum") for n in late[v010]}
    both = {"vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc", "vllm:gpu_prefix_cache_hits", "vllm:prefix_cache_hits",
            "vllm:prompt_tokens", "vllm:time_to_first_token_seconds", "vllm:time_per_output_token_seconds"}
    assert both <= ours and both <= fixture_names
    for node, text in dcgm.items():
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        power = fams["DCGM_FI_DEV_POWER_USAGE"].samples
        assert len(power) == 8
        assert set(power[0].labels) >= {"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"}
        assert all(s.labels["Hostname"] == node for s in power)
        assert "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION" in fams
