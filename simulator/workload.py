"""Requests of the simulated fleet: who sends what, when, to which engine instance.

Per workflow: a non-homogeneous Poisson arrival process (diurnal cosine around a peak hour,
plus bursts that multiply the rate for a while), drawn by thinning; lognormal prompt and output
lengths (outputs clipped at ``max_tokens``, which makes ``finish_reason = "length"``); prefix
cache hits (a block-aligned share of the prompt); categorical tenants, routes, reasoning modes
and target models. A request goes to one instance serving its model (uniformly). All draws are
vectorised and come from a seeded generator per workflow: the same seed gives the same requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.fleet import Fleet, Workflow

CACHE_BLOCK = 16  # prefix caching works on whole KV blocks


@dataclass
class Requests:
    """Columnar requests of the whole fleet, sorted by (instance, arrival)."""

    arrival: np.ndarray  # seconds from the window start
    instance: np.ndarray  # index into fleet.engines
    workflow: np.ndarray  # str (object arrays for the label columns)
    tenant: np.ndarray
    route: np.ndarray
    reasoning_mode: np.ndarray
    label_source: np.ndarray  # 'caller' | 'engine_span' | 'none'
    prompt_tokens: np.ndarray
    cached_tokens: np.ndarray
    completion_tokens: np.ndarray
    max_tokens: np.ndarray
    finish_reason: np.ndarray
    request_id: np.ndarray
    trace_id: np.ndarray
    caller_span_id: np.ndarray
    span_id: np.ndarray

    def __len__(self) -> int:
        return len(self.arrival)

    def take(self, idx: np.ndarray) -> Requests:
        return Requests(**{k: v[idx] for k, v in self.__dict__.items()})

    @property
    def uncached_tokens(self) -> np.ndarray:
        return np.maximum(self.prompt_tokens - self.cached_tokens, 1)


def _choice(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(weights), dtype=object)
    p = np.array(list(weights.values()), dtype=np.float64)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def _hex_ids(rng: np.random.Generator, n: int, nbytes: int) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, nbytes), dtype=np.uint8)
    raw[:, 0] |= 1  # never all-zero (invalid in OTLP)
    return np.array([row.tobytes().hex() for row in raw], dtype=object)


def _arrivals(rng: np.random.Generator, wf: Workflow, fleet: Fleet) -> np.ndarray:
    duration = fleet.duration_s
    n_bursts = rng.poisson(wf.bursts_per_hour * fleet.hours)
    burst_start = rng.uniform(0, duration, n_bursts)
    peak = wf.rate_per_s * (1 + abs(wf.diurnal_amplitude)) * max(1.0, wf.burst_multiplier)
    t = np.sort(rng.uniform(0, duration, rng.poisson(peak * duration)))
    hour_of_day = (fleet.start.hour + fleet.start.minute / 60 + t / 3600.0) % 24
    rate = wf.rate_per_s * (1 + wf.diurnal_amplitude * np.cos(2 * np.pi * (hour_of_day - wf.peak_hour_utc) / 24))
    in_burst = np.zeros(len(t), dtype=bool)
    for s in burst_start:
        in_burst |= (t >= s) & (t < s + wf.burst_duration_s)
    rate = np.where(in_burst, rate * wf.burst_multiplier, rate)
    keep = rng.uniform(0, peak, len(t)) < rate
    return t[keep]


def generate_requests(fleet: Fleet) -> Requests:
    """All requests of the window, routed to the fleet's engine instances."""
    by_model: dict[str, list[int]] = {}
    for i, e in enumerate(fleet.engines):
        by_model.setdefault(e.model, []).append(i)
    unl = float(fleet.option("unlabelled_fraction", 0.08))
    on_engine = float(fleet.option("engine_span_label_fraction", 0.1))
    parts: list[dict[str, np.ndarray]] = []
    for w_idx, wf in enumerate(fleet.workflows):
        rng = np.random.default_rng([fleet.seed, 1, w_idx])
        t = _arrivals(rng, wf, fleet)
        n = len(t)
        if n == 0 or not fleet.engines:
            continue
        prompt = np.clip(rng.lognormal(np.log(wf.prompt_median), wf.prompt_sigma, n), 8, wf.prompt_max).astype(np.int64)
        wanted = np.rint(rng.lognormal(np.log(wf.output_median), wf.output_sigma, n)).astype(np.int64)
        completion = np.clip(wanted, 1, wf.max_tokens)
        finish = np.where(wanted >= wf.max_tokens, "length", "stop").astype(object)
        lo, hi = wf.cache_fraction
        frac = np.where(rng.uniform(size=n) < wf.cache_hit_prob, rng.uniform(lo, hi, n), 0.0)
        cached = np.minimum((prompt * frac).astype(np.int64) // CACHE_BLOCK * CACHE_BLOCK, prompt - 1)
        models = {m: p for m, p in wf.models.items() if m in by_model} or {e.model: 1.0 for e in fleet.engines}
        model = _choice(rng, models, n)
        instance = np.empty(n, dtype=np.int64)
        pick = rng.uniform(size=n)
        for m in models:
            sel = model == m
            cands = np.asarray(by_model[m])
            instance[sel] = cands[np.minimum((pick[sel] * len(cands)).astype(np.int64), len(cands) - 1)]
        u = rng.uniform(size=n)
        label_source = np.where(u < unl, "none", np.where(u < unl + on_engine, "engine_span", "caller")).astype(object)
        parts.append({
            "arrival": t, "instance": instance, "workflow": np.full(n, wf.name, dtype=object),
            "tenant": _choice(rng, wf.tenants, n), "route": _choice(rng, wf.routes, n),
            "reasoning_mode": _choice(rng, wf.reasoning_modes, n), "label_source": label_source,
            "prompt_tokens": prompt, "cached_tokens": cached, "completion_tokens": completion,
            "max_tokens": np.full(n, wf.max_tokens, dtype=np.int64), "finish_reason": finish,
            "request_id": _hex_ids(rng, n, 16), "trace_id": _hex_ids(rng, n, 16),
            "caller_span_id": _hex_ids(rng, n, 8), "span_id": _hex_ids(rng, n, 8),
        })
    if not parts:
        empty = {k: np.zeros(0, dtype=object) for k in Requests.__dataclass_fields__}
        for k in ("arrival",):
            empty[k] = np.zeros(0)
        for k in ("instance", "prompt_tokens", "cached_tokens", "completion_tokens", "max_tokens"):
            empty[k] = np.zeros(0, dtype=np.int64)
        return Requests(**empty)
    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    order = np.lexsort((cols["request_id"].astype(str), cols["arrival"], cols["instance"]))
    reqs = Requests(**{k: v[order] for k, v in cols.items()})
    # vLLM request ids look like OpenAI completion ids; SGLang uses a bare hex rid
    kinds = np.array([e.engine_kind for e in fleet.engines], dtype=object)[reqs.instance]
    prefix = np.where(reqs.route == "/v1/completions", "cmpl-", "chatcmpl-").astype(object)
    reqs.request_id = np.where(kinds == "vllm", prefix + reqs.request_id, reqs.request_id)
    return reqs
