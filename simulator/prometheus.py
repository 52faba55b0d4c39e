"""Prometheus text of the simulated engines and DCGM exporters, served on loopback HTTP.

``MetricsServer(run, telemetry)`` binds ``127.0.0.1:0`` and serves, at the virtual time of the
telemetry (or ``set_time``):
- ``/engines/<instance>/metrics``: vLLM (labels ``engine``, ``model_name``; ``v0.33`` new names
  only, ``v0.10`` also the old ``gpu_cache_usage_perc`` / ``gpu_prefix_cache_*`` /
  ``time_per_output_token_seconds``, as in the captured vLLM /metrics) or SGLang (``sglang:*``,
  labels ``model_name``, ``engine_type``, ``tp_rank``, ``pp_rank``, ``moe_ep_rank``; MoE instances
  add the ``sglang:eplb_balancedness`` summary and the ``sglang:eplb_gpu_physical_count``
  histogram, label ``layer``, buckets = EP ranks);
- ``/dcgm/<node>/metrics``: DCGM exporter fields with its label shape (``gpu``, ``UUID``,
  ``pci_bus_id``, ``device``, ``modelName``, ``Hostname``, ``DCGM_FI_DRIVER_VERSION``, and
  ``container``/``namespace``/``pod``/``pod_uid`` on GPUs an engine uses).
Text is produced by prometheus_client's own exposition code from custom collectors.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)

from simulator.fleetrun import FleetRun
from simulator.moe import MoeTrace
from simulator.telemetry import FleetTelemetry

LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0]
TOKEN_BUCKETS = [1, 10, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000]


def _hist(name: str, doc: str, labels: dict[str, str], values: np.ndarray, buckets: list[float]) -> HistogramMetricFamily:
    fam = HistogramMetricFamily(name, doc, labels=list(labels))
    counts = np.searchsorted(np.sort(values), buckets, side="right")
    fam.add_metric(list(labels.values()), [(str(float(b)), float(c)) for b, c in zip(buckets, counts, strict=True)]
                   + [("+Inf", float(len(values)))], float(values.sum()))
    return fam


class _EngineView:
    """An instance's requests ordered by completion, to read counters at any virtual time."""

    def __init__(self, run: FleetRun, index: int, moe: MoeTrace | None) -> None:
        a, b = run.bounds[index]
        r, inst = run.requests, run.runs[index]
        self.engine = run.fleet.engines[index]
        order = np.argsort(inst.t_end, kind="stable")
        self.t_end = inst.t_end[order]
        self.t_admit = np.sort(inst.t_admit)
        self.arrival = r.arrival[a:b]
        arr = r.arrival[a:b][order]
        self.cols = {
            "prompt": r.prompt_tokens[a:b][order].astype(np.float64),
            "cached": r.cached_tokens[a:b][order].astype(np.float64),
            "gen": r.completion_tokens[a:b][order].astype(np.float64),
            "e2e": self.t_end - arr, "ttft": inst.t_first[order] - arr, "queue": inst.t_admit[order] - arr,
            "prefill": (inst.t_first - inst.t_admit)[order], "decode": (inst.t_end - inst.t_first)[order],
        }
        self.cols["tpot"] = self.cols["decode"] / np.maximum(self.cols["gen"] - 1, 1)
        self.finish = r.finish_reason[a:b][order]
        self.moe = moe

    def families(self, t: float) -> list:
        e = self.engine
        k = int(np.searchsorted(self.t_end, t, side="right"))
        admitted = int(np.searchsorted(self.t_admit, t, side="right"))
        running, waiting = admitted - k, int(np.searchsorted(self.arrival, t, side="right")) - admitted
        c = {name: v[:k] for name, v in self.cols.items()}
        kv = min(1.0, running / e.spec.max_batch) * 0.9
        if e.engine_kind == "vllm":
            return self._vllm(c, k, running, waiting, kv)
        return self._sglang(c, k, running, waiting, kv, t)

    def _vllm(self, c, k, running, waiting, kv) -> list:
        e = self.engine
        lab = {"engine": "0", "model_name": e.spec.hf_name}
        ln, lv = list(lab), list(lab.values())
        out = []
        for name, doc, value in [("vllm:num_requests_running", "Number of requests in model execution batches.", running),
                                 ("vllm:num_requests_waiting", "Number of requests waiting to be processed.", waiting),
                                 ("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", kv)]:
            out.append(GaugeMetricFamily(name, doc, labels=ln))
            out[-1].add_metric(lv, float(value))
        counters = [("vllm:prompt_tokens", "Number of prefill tokens processed.", c["prompt"].sum()),
                    ("vllm:generation_tokens", "Number of generation tokens processed.", c["gen"].sum()),
                    ("vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens.", c["prompt"].sum()),
                    ("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.", c["cached"].sum()),
                    ("vllm:num_preemptions", "Cumulative number of preemption from the engine.", 0.0)]
        if e.vllm_metrics == "v0.10":
            g = GaugeMetricFamily("vllm:gpu_cache_usage_perc", "GPU KV-cache usage. 1 means 100 percent usage."
                                  "DEPRECATED: Use vllm:kv_cache_usage_perc instead.", labels=ln)
            g.add_metric(lv, float(kv))
            out.append(g)
            counters += [("vllm:gpu_prefix_cache_queries", "GPU prefix cache queries. DEPRECATED: Use "
                          "vllm:prefix_cache_queries instead.", c["prompt"].sum()),
                         ("vllm:gpu_prefix_cache_hits", "GPU prefix cache hits. DEPRECATED: Use "
                          "vllm:prefix_cache_hits instead.", c["cached"].sum())]
        for name, doc, value in counters:
            f = CounterMetricFamily(name, doc, labels=ln)
            f.add_metric(lv, float(value))
            out.append(f)
        f = CounterMetricFamily("vllm:request_success", "Count of successfully processed requests.",
                                labels=["engine", "finished_reason", "model_name"])
        fin = self.finish[:k]
        for reason in ("stop", "length", "abort"):
            f.add_metric(["0", reason, e.spec.hf_name], float(np.count_nonzero(fin == reason)))
        out.append(f)
        hists = [("vllm:time_to_first_token_seconds", "ttft", LATENCY_BUCKETS),
                 ("vllm:e2e_request_latency_seconds", "e2e", LATENCY_BUCKETS),
                 ("vllm:request_queue_time_seconds", "queue", LATENCY_BUCKETS),
                 ("vllm:request_prefill_time_seconds", "prefill", LATENCY_BUCKETS),
                 ("vllm:request_decode_time_seconds", "decode", LATENCY_BUCKETS),
                 ("vllm:inter_token_latency_seconds", "tpot", LATENCY_BUCKETS),
                 ("vllm:request_prompt_tokens", "prompt", TOKEN_BUCKETS),
                 ("vllm:request_generation_tokens", "gen", TOKEN_BUCKETS)]
        if e.vllm_metrics == "v0.10":
            hists.append(("vllm:time_per_output_token_seconds", "tpot", LATENCY_BUCKETS))
        out += [_hist(n, f"Histogram of {col} of finished requests.", lab, c[col], b) for n, col, b in hists]
        return out

    def _sglang(self, c, k, running, waiting, kv, t) -> list:
        e = self.engine
        lab = {"model_name": e.spec.hf_name, "engine_type": "unified", "tp_rank": "0", "pp_rank": "0", "moe_ep_rank": "0"}
        ln, lv = list(lab), list(lab.values())
        out = []
        hit = float(c["cached"].sum() / c["prompt"].sum()) if k else 0.0
        for name, doc, value in [("sglang:num_running_reqs", "The number of running requests.", running),
                                 ("sglang:num_queue_reqs", "The number of requests in the waiting queue.", waiting),
                                 ("sglang:token_usage", "The token usage.", kv),
                                 ("sglang:cache_hit_rate", "The prefix cache hit rate.", hit)]:
            out.append(GaugeMetricFamily(name, doc, labels=ln))
            out[-1].add_metric(lv, float(value))
        for name, doc, value in [("sglang:prompt_tokens", "Number of prefill tokens processed.", c["prompt"].sum()),
                                 ("sglang:generation_tokens", "Number of generation tokens processed.", c["gen"].sum()),
                                 ("sglang:cached_tokens", "Number of cached prompt tokens.", c["cached"].sum()),
                                 ("sglang:num_requests", "Number of requests processed.", float(k))]:
            f = CounterMetricFamily(name, doc, labels=ln)
            f.add_metric(lv, float(value))
            out.append(f)
        out += [_hist("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", lab, c["ttft"], LATENCY_BUCKETS),
                _hist("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", lab, c["e2e"], LATENCY_BUCKETS),
                _hist("sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", lab, c["tpot"], LATENCY_BUCKETS)]
        if self.moe is not None:
            out += self._eplb(lab, t)
        return out

    def _eplb(self, lab: dict[str, str], t: float) -> list:
        m = self.moe
        done = int(np.searchsorted(m.edges, t, side="right")) - 1  # windows finished by t
        done = max(0, min(done, len(m.edges) - 1))
        steps = float(np.interp(t, m.edges, m.steps_at_edges))
        bal = float(np.mean([m.balancedness(w)[m.engine.spec.moe.dense_layers:].mean() for w in range(max(done, 1))]))
        s = SummaryMetricFamily("sglang:eplb_balancedness", "Balancedness of MoE in expert parallelism.", labels=list(lab))
        s.add_metric(list(lab.values()), count_value=steps, sum_value=steps * bal)
        h = HistogramMetricFamily("sglang:eplb_gpu_physical_count",
                                  "The selected count of physical experts on each layer and GPU rank.", labels=[*lab, "layer"])
        ep = m.engine.ep
        per_rank = sum((m.physical_counts(w).reshape(m.counts.shape[1], ep, -1).sum(axis=2) for w in range(done)),
                       start=np.zeros((m.counts.shape[1], ep), dtype=np.int64))
        for layer in range(m.engine.spec.moe.dense_layers, per_rank.shape[0]):
            cum = np.cumsum(per_rank[layer]).astype(float)
            h.add_metric([*lab.values(), str(layer)], [(str(float(r)), cum[r]) for r in range(ep)] + [("+Inf", cum[-1])],
                         float((per_rank[layer] * np.arange(ep)).sum()))
        return [s, h]


class _Collector:
    def __init__(self, fn) -> None:
        self.collect = fn


class MetricsServer:
    """Loopback HTTP server of every engine's and node's Prometheus text at the virtual time."""

    name = "sim-metrics"

    def __init__(self, run: FleetRun, telemetry: FleetTelemetry | None = None,
                 moe_traces: dict[str, MoeTrace] | None = None, host: str = "127.0.0.1", port: int = 0) -> None:
        self.run, self.telemetry, self.host, self.port = run, telemetry, host, port
        moe_traces = moe_traces or {}
        self.views = {e.instance: _EngineView(run, i, moe_traces.get(e.instance)) for i, e in enumerate(run.fleet.engines)}
        self._t: float | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def set_time(self, t: float) -> None:
        self._t = t

    @property
    def now(self) -> float:
        if self._t is not None:
            return self._t
        return self.telemetry.t if self.telemetry is not None else 0.0

    def engine_text(self, instance: str) -> str:
        reg = CollectorRegistry(auto_describe=False)
        reg.register(_Collector(lambda: self.views[instance].families(self.now)))
        return generate_latest(reg).decode()

    def dcgm_text(self, node: str) -> str:
        if self.telemetry is None:
            self.telemetry = FleetTelemetry(self.run)
        tel = self.telemetry
        pairs = [(g, fg) for g, fg in zip(tel.gpus, tel.fleet_gpus, strict=True) if fg.node == node]
        if not pairs:
            raise KeyError(node)
        owners = {u: e for e in self.run.fleet.engines for u in e.gpu_uuids}
        fields = [("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz).", lambda g: g.sm_clock_mhz),
                  ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz).", lambda g: g.mem_clock_mhz),
                  ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C).", lambda g: g.temperature_c),
                  ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W).", lambda g: g.power_mw / 1000),
                  ("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter", "Total energy consumption since boot (in mJ).",
                   lambda g: g.energy_mj),
                  ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %).", lambda g: g.sm_util_pct),
                  ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %).", lambda g: g.mem_util_pct),
                  ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB).", lambda g: g.memory_used_bytes >> 20),
                  ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB).",
                   lambda g: (g.memory_total_bytes - g.memory_used_bytes) >> 20),
                  ("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "gauge", "Ratio of time the graphics engine is active.",
                   lambda g: round(g.sm_util_pct / 100 * 0.97, 6)),
                  ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered.",
                   lambda g: g.pending_xids[-1] if g.pending_xids else 0)]
        lines = []
        for name, typ, doc, fn in fields:
            lines += [f"# HELP {name} {doc}", f"# TYPE {name} {typ}"]
            for g, fg in pairs:
                if g.lost:
                    continue
                labels = (f'gpu="{fg.index}",UUID="{g.uuid}",pci_bus_id="{g.pci_bus_id}",device="nvidia{fg.index}",'
                          f'modelName="{g.name}",Hostname="{node}",DCGM_FI_DRIVER_VERSION="580.105.08"')
                e = owners.get(g.uuid)
                if e is not None:
                    labels += (f',container="{e.engine_kind}",namespace="inference",pod="{e.instance}-0",pod_uid=""')
                lines.append(f"{name}{{{labels}}} {fn(g)}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        if self._server is not None:
            return
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = self.path.split("?")[0].strip("/").split("/")
                try:
                    if len(parts) == 3 and parts[0] == "engines" and parts[2] == "metrics":
                        body = outer.engine_text(parts[1])
                    elif len(parts) == 3 and parts[0] == "dcgm" and parts[2] == "metrics":
                        body = outer.dcgm_text(parts[1])
                    else:
                        raise KeyError(self.path)
                except KeyError:
                    self.send_error(404, "no such target; try /engines/<instance>/metrics or /dcgm/<node>/metrics")
                    return
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-metrics", daemon=True)
        self._thread.start()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._server = self._thread = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def engine_urls(self) -> dict[str, str]:
        return {name: f"{self.base_url}/engines/{name}/metrics" for name in self.views}

    @property
    def dcgm_urls(self) -> dict[str, str]:
        return {n.name: f"{self.base_url}/dcgm/{n.name}/metrics" for n in self.run.fleet.nodes}
