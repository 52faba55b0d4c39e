"""MoE routing of the simulated MoE instances, and the files real engines write about it.

Per MoE layer the router's load is Zipf-like over a random order of the experts, with a few
*planted hot experts* that carry several times the load of the hottest cold one; at every dump
``hot_drift_per_dump`` hot experts per layer are replaced by cold ones (drift). Tokens routed in
a window = tokens the instance processed in it (from its batching blocks) x top-k, drawn as a
multinomial per layer. Leading dense layers (DeepSeek-V3's first 3) have no routed experts and
keep zero counts, as in SGLang's recorder.

Outputs (interfaces.md): SGLang dumps ``experts/<instance>/expert_distribution_recorder_<ms>.json``
alternating the ``stat`` and ``per_pass`` forms (``.pt`` as well when torch imports), vLLM EPLB
log lines in ``logs/<instance>.log``, and the planted truth in ``experts/planted_hot.json``.
"""

from __future__ import annotations

import importlib.util
import json
import zlib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np

from simulator.fleet import Engine, iso
from simulator.fleetrun import FleetRun

BUFFER_STEPS = 4
PASSES = 4


@dataclass
class MoeTrace:
    engine: Engine
    edges: np.ndarray  # window edges, seconds from the window start (W + 1)
    counts: np.ndarray  # int64 [W, layers, experts] logical tokens routed
    hot: list[dict[int, list[int]]]  # per window: layer -> planted hot experts (hottest first)
    phys_to_log: np.ndarray  # [layers, physical] physical -> logical expert map
    steps_at_edges: np.ndarray  # engine steps run by each edge
    _phys: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def balancedness(self, w: int) -> np.ndarray:
        """Mean / max token load per GPU (EP rank) and layer in window ``w``; 1.0 where no load."""
        phys = self.physical_counts(w)
        ranks = phys.reshape(phys.shape[0], self.engine.ep, -1).sum(axis=2).astype(np.float64)
        mx = ranks.max(axis=1)
        return np.where(mx > 0, ranks.mean(axis=1) / np.maximum(mx, 1), 1.0)

    def physical_counts(self, w: int) -> np.ndarray:
        """Counts per physical expert: a logical expert's tokens split evenly over its replicas."""
        if w not in self._phys:
            self._phys[w] = self._physical_counts(w)
        return self._phys[w]

    def _physical_counts(self, w: int) -> np.ndarray:
        logical = self.counts[w]
        layers = np.arange(logical.shape[0])[:, None]
        replicas = np.zeros_like(logical)
        np.add.at(replicas, (layers, self.phys_to_log), 1)
        share = logical[layers, self.phys_to_log] // np.maximum(replicas[layers, self.phys_to_log], 1)
        rem = logical.copy()
        np.add.at(rem, (layers, self.phys_to_log), -share)  # what integer division left over
        first = np.zeros_like(self.phys_to_log, dtype=bool)
        for layer in range(self.phys_to_log.shape[0]):
            _, idx = np.unique(self.phys_to_log[layer], return_index=True)
            first[layer, idx] = True
        return share + np.where(first, rem[layers, self.phys_to_log], 0)


def trace_moe(run: FleetRun, engine_index: int) -> MoeTrace:
    fleet = run.fleet
    e = fleet.engines[engine_index]
    moe = e.spec.moe
    assert moe is not None
    rng = np.random.default_rng([fleet.seed, 2, engine_index])
    interval = float(fleet.option("expert_dump_interval_s", 900))
    edges = np.unique(np.append(np.arange(0.0, fleet.duration_s, interval), fleet.duration_s))
    blk = run.runs[engine_index]
    tokens = (blk.block_prefill_tokens + blk.block_decoders * blk.block_steps).astype(np.float64)
    x = np.concatenate(([0.0], blk.block_start + blk.block_time))
    cum_tok = np.interp(edges, x, np.concatenate(([0.0], np.cumsum(tokens))))
    steps_at = np.interp(edges, x, np.concatenate(([0.0], np.cumsum(blk.block_steps)))).astype(np.int64)
    per_window = np.diff(np.floor(cum_tok)).astype(np.int64)
    n_hot = max(1, min(int(fleet.option("hot_experts_per_layer", 4)), moe.experts // 8))
    drift = int(fleet.option("hot_drift_per_dump", 1))
    L, E = moe.layers, moe.experts
    hot_sets = [list(rng.choice(E, n_hot, replace=False)) for _ in range(L)]
    order = [rng.permutation(E) for _ in range(L)]
    zipf = 1.0 / np.arange(1, E + 1) ** 0.7
    counts = np.zeros((len(per_window), L, E), dtype=np.int64)
    hot_log: list[dict[int, list[int]]] = []
    for w, n_tok in enumerate(per_window):
        if w > 0:
            for layer in range(L):
                for _ in range(min(drift, n_hot)):
                    out = int(rng.integers(n_hot))
                    cold = np.setdiff1d(np.arange(E), hot_sets[layer])
                    hot_sets[layer][out] = int(rng.choice(cold))
        hot_log.append({})
        for layer in range(moe.dense_layers, L):
            weight = np.empty(E)
            weight[order[layer]] = zipf
            hot = hot_sets[layer]
            weight[hot] = zipf[0] * np.linspace(4.0, 2.5, n_hot)
            counts[w, layer] = rng.multinomial(n_tok * moe.top_k, weight / weight.sum())
            hot_log[w][layer] = [int(i) for i in hot]
    # redundant physical experts replicate the hottest experts of the first window (EPLB placement)
    P = E + moe.redundant_experts
    p2l = np.tile(np.arange(P) % E, (L, 1))
    if moe.redundant_experts:
        total = counts.sum(axis=0)
        for layer in range(L):
            hottest = np.argsort(-total[layer], kind="stable")
            p2l[layer, E:] = hottest[np.arange(moe.redundant_experts) % E]
    if P % e.ep:
        raise ValueError(f"{e.instance}: {P} physical experts do not split over ep={e.ep} ranks")
    return MoeTrace(e, edges, counts, hot_log, p2l, steps_at)


def write_sglang_dumps(trace: MoeTrace, run: FleetRun, out: Path, write_pt: bool | None = None) -> list[Path]:
    """One dump per window, alternating ``stat`` and ``per_pass`` JSON (and ``.pt`` with torch)."""
    folder = out / "experts" / trace.engine.instance
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([run.fleet.seed, 3, zlib.crc32(trace.engine.instance.encode())])
    start_ms = int(run.fleet.start.timestamp() * 1000)
    torch = None
    if write_pt is None:
        write_pt = importlib.util.find_spec("torch") is not None
    if write_pt:
        try:
            import torch
        except ImportError:
            torch = None
    paths = []
    for w in range(len(trace.edges) - 1):
        ts_ms = start_ms + int(round(trace.edges[w + 1] * 1000))
        logical = trace.counts[w]
        if w % 2 == 0:
            split = rng.multinomial(logical, np.full(BUFFER_STEPS, 1.0 / BUFFER_STEPS))  # [L, E, B]
            doc = {"rank": 0, "logical_count": np.moveaxis(split, -1, 0).tolist(),
                   "average_utilization_rate_over_window": float(trace.balancedness(w).mean())}
        else:
            phys = trace.physical_counts(w)
            split = rng.multinomial(phys, np.full(PASSES, 1.0 / PASSES))  # [L, P, passes]
            doc = {"rank": 0, "records": [{"global_physical_count": split[..., k].tolist()} for k in range(PASSES)],
                   "last_physical_to_logical_map": trace.phys_to_log.tolist()}
        path = folder / f"expert_distribution_recorder_{ts_ms}.json"
        path.write_text(json.dumps(doc, separators=(",", ":")))
        paths.append(path)
        if torch is not None:
            tdoc = {k: (torch.tensor(v, dtype=torch.int32) if k == "logical_count" else v) for k, v in doc.items()}
            torch.save(tdoc, folder / f"expert_distribution_recorder_{ts_ms}.pt")
    return paths


def write_eplb_log(trace: MoeTrace, run: FleetRun, out: Path) -> Path:
    """vLLM EPLB step lines every ``eplb_log_interval_s`` (new shape; the older shape on v0.10)."""
    fleet = run.fleet
    e = trace.engine
    path = out / "logs" / f"{e.instance}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    every = float(fleet.option("eplb_log_interval_s", 60))
    blk = run.runs[fleet.engines.index(e)]
    x = np.concatenate(([0.0], blk.block_start + blk.block_time))
    steps = np.concatenate(([0], np.cumsum(blk.block_steps)))
    lines = [f"INFO {fleet.start:%m-%d %H:%M:%S} [api_server.py:1880] vLLM API server version 0.33.0"]
    for t in np.arange(every, fleet.duration_s + 1e-9, every):
        w = min(int(np.searchsorted(trace.edges, t, side="right")) - 1, len(trace.edges) - 2)
        phys = trace.physical_counts(w)
        span = float(trace.edges[w + 1] - trace.edges[w])
        per_rank = phys.sum(axis=0).reshape(e.ep, -1).sum(axis=1) * (every / span)
        avg, mx = float(per_rank.mean()), float(per_rank.max())
        bal = avg / mx if mx > 0 else 1.0
        step = int(np.interp(t, x, steps))
        stamp = fleet.start + timedelta(seconds=float(t))
        head = f"INFO {stamp:%m-%d %H:%M:%S} [eplb_state.py:512] EPLB step:"
        if e.vllm_metrics == "v0.10":
            lines.append(f"{head} avg_tokens={avg:.2f}, max_tokens={mx:.0f}, balancedness={bal:.4f}")
        else:
            lines.append(f"{head} {step} for model {e.spec.hf_name}: avg_tokens={avg:.2f}, max_tokens={mx:.0f}, "
                         f"balancedness={bal:.4f}, steps until the next rearrangement: {3000 - step % 3000}")
    path.write_text("\n".join(lines) + "\n")
    return path


def planted_truth(traces: list[MoeTrace], run: FleetRun) -> dict:
    start = run.fleet.start
    return {t.engine.instance: {
        "model": t.engine.spec.hf_name,
        "layers": t.counts.shape[1], "experts": t.counts.shape[2],
        "windows": [{"window_start": iso(start + timedelta(seconds=float(t.edges[w]))),
                     "window_end": iso(start + timedelta(seconds=float(t.edges[w + 1]))),
                     "tokens_routed": int(t.counts[w].sum()),
                     "hot": {str(layer): v for layer, v in t.hot[w].items()}} for w in range(len(t.edges) - 1)],
    } for t in traces}
