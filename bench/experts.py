"""Expert-routing analysis speed: 61 layers x 256 experts x 24 hourly windows x 10 instances.

Figures (one JSON line each):
* ``hotness_wall_s``: ``pipelines.experts.analysis.expert_hotness_frame`` (balance, top-8, drift,
  imbalance tax with hourly costs) over the whole grid, best of 3, on rows already summed per
  expert by the store (as the flow step reads them); ``hotness_with_dedupe_wall_s`` also sums
  duplicate rows in Polars; baseline side by side: a plain
  Python-loop implementation of the same figures over the same rows (given as Python lists, not
  timed), run on a slice and scaled linearly to the full row count (``baseline_measured_rows``).
  The two are checked to agree on the slice before any time is reported.
* ``eplb_plan_wall_s``: the DeepSeek EPLB plan for 61 x 256 loads onto 288 slots, 4 nodes,
  32 GPUs (vectorised across layers); baseline: the same code called one layer at a time.
"""

from __future__ import annotations

import datetime as dt
import math
import time

import numpy as np
import polars as pl

from bench.common import best_of, emit, log, parser, peak_rss_mib
from pipelines.experts.analysis import expert_hotness_frame
from pipelines.experts.eplb import rebalance_experts

BENCH = "experts"
T0 = dt.datetime(2026, 11, 29, tzinfo=dt.UTC)
TOP_K = 8


def make_loads(instances: int, windows: int, layers: int, experts: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    per_window = layers * experts
    n = instances * windows * per_window
    tokens = rng.poisson(200, size=n).astype(np.uint64)
    hot = rng.integers(0, experts, size=(instances * windows * layers, 4))  # planted hot experts
    tokens.reshape(-1, experts)[np.arange(hot.shape[0])[:, None], hot] += np.uint64(20_000)
    win = np.repeat(np.arange(windows), per_window)
    win = np.tile(win, instances)
    starts = (np.datetime64(T0.replace(tzinfo=None), "ms") + win.astype("timedelta64[h]")).astype("datetime64[ms]")
    return pl.DataFrame({
        "window_start": starts,
        "window_end": starts + np.timedelta64(1, "h"),
        "cluster": "default",
        "engine_instance": np.repeat([f"sglang-deepseek-v3-{i}" for i in range(instances)], windows * per_window),
        "model": "deepseek-v3",
        "layer": np.tile(np.repeat(np.arange(layers, dtype=np.uint16), experts), instances * windows),
        "expert": np.tile(np.arange(experts, dtype=np.uint32), instances * windows * layers),
        "tokens": tokens,
    }).with_columns(pl.col("window_start", "window_end").dt.replace_time_zone("UTC"))


def make_costs(instances: int, windows: int) -> pl.DataFrame:
    hours = [T0 + dt.timedelta(hours=w) for w in range(windows)]
    return pl.DataFrame({
        "cluster": "default",
        "engine_instance": [f"sglang-deepseek-v3-{i}" for i in range(instances) for _ in hours],
        "hour": hours * instances,
        "cost_usd": [8 * 3.5] * (instances * windows),
    }).with_columns(pl.col("hour").dt.cast_time_unit("ms"))


def python_hotness(rows: list[tuple], costs: dict[tuple, float], top_k: int = TOP_K) -> dict[tuple, tuple]:
    """The baseline: dictionaries and loops, one row at a time (window costs: whole hours)."""
    per_layer: dict[tuple, dict[int, int]] = {}
    n_experts: dict[str, int] = {}
    for ws, we, cluster, inst, model, layer, expert, tokens in rows:
        d = per_layer.setdefault((model, inst, cluster, ws, we, layer), {})
        d[expert] = d.get(expert, 0) + tokens
        if expert + 1 > n_experts.get(model, 0):
            n_experts[model] = expert + 1
    layers_in_window: dict[tuple, int] = {}
    for key in per_layer:
        layers_in_window[key[:5]] = layers_in_window.get(key[:5], 0) + 1
    out: dict[tuple, tuple] = {}
    previous: dict[tuple, list[int]] = {}
    for key in sorted(per_layer, key=lambda k: (k[0], k[1], k[2], k[5], k[3])):
        model, inst, cluster, ws, we, layer = key
        loads = per_layer[key]
        total = sum(loads.values())
        mx = max(loads.values())
        mean = total / n_experts[model]
        bal = mean / mx if mx > 0 else 1.0
        vio = mx / mean - 1.0 if mx > 0 else 0.0
        ranked = sorted((e for e in loads if loads[e] > 0), key=lambda e: (-loads[e], e))[:top_k]
        shares = [loads[e] / total for e in ranked]
        series = (model, inst, cluster, layer)
        prev = previous.get(series)
        if prev is None:
            drift = 0.0
        else:
            union = set(ranked) | set(prev)
            drift = 1.0 - len(set(ranked) & set(prev)) / len(union) if union else 0.0
        previous[series] = ranked
        cost = costs.get((cluster, inst, ws), 0.0)
        tax = cost / layers_in_window[key[:5]] * (1.0 - bal)
        out[key] = (total, bal, vio, ranked, shares, drift, tax)
    return out


def _check_agree(vec: pl.DataFrame, ref: dict[tuple, tuple]) -> None:
    assert vec.height == len(ref), (vec.height, len(ref))
    for r in vec.iter_rows(named=True):
        key = (r["model"], r["engine_instance"], r["cluster"], r["window_start"], r["window_end"], r["layer"])
        total, bal, vio, ranked, shares, drift, tax = ref[key]
        assert r["total_tokens"] == total and r["hot_experts"] == ranked, key
        for a, b in ((r["balancedness"], bal), (r["max_vio"], vio), (r["hot_drift"], drift), (r["imbalance_tax_usd"], tax)):
            assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), (key, a, b)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--windows", type=int, default=24)
    p.add_argument("--layers", type=int, default=61)
    p.add_argument("--experts", type=int, default=256)
    args = p.parse_args(argv)
    inst, win = (2, 2) if args.quick else (args.instances, args.windows)
    layers, experts = args.layers, args.experts
    repeat = 1 if args.quick else 3

    loads = make_loads(inst, win, layers, experts)
    costs = make_costs(inst, win)
    log(f"experts bench: {loads.height:,} expert_loads rows ({inst} instances x {win} windows x {layers} x {experts})")
    # the flow step's path: the store's SQL already summed rows per (window, layer, expert)
    vec_s = best_of(lambda: expert_hotness_frame(loads, costs, top_k=TOP_K, unique_experts=True), repeat)
    dedupe_s = best_of(lambda: expert_hotness_frame(loads, costs, top_k=TOP_K), repeat)

    # baseline on a slice: one instance, up to 3 windows (checked against the vectorised output)
    slice_df = loads.filter(
        (pl.col("engine_instance") == "sglang-deepseek-v3-0") & (pl.col("window_start") < T0 + dt.timedelta(hours=3))
    )
    rows = list(slice_df.iter_rows())
    cost_map = {(c, i, h): v for c, i, h, v in costs.iter_rows()}
    t0 = time.perf_counter()
    ref = python_hotness(rows, cost_map)
    base_slice_s = time.perf_counter() - t0
    _check_agree(expert_hotness_frame(slice_df, costs, top_k=TOP_K), ref)
    base_s = base_slice_s * loads.height / len(rows)
    emit(BENCH, "hotness_wall_s", vec_s, "s", baseline=round(base_s, 4), ratio=round(base_s / vec_s, 2),
         rows=loads.height, layer_windows=inst * win * layers, baseline_measured_rows=len(rows),
         baseline_measured_s=round(base_slice_s, 4), rows_per_s=round(loads.height / vec_s), peak_rss_mib=round(peak_rss_mib()))

    emit(BENCH, "hotness_with_dedupe_wall_s", dedupe_s, "s", baseline=round(base_s, 4), ratio=round(base_s / dedupe_s, 2),
         rows=loads.height, note="also sums duplicate (layer, expert) rows in Polars")

    weight = loads.filter(pl.col("engine_instance") == "sglang-deepseek-v3-0", pl.col("window_start") == T0) \
        .sort("layer", "expert")["tokens"].to_numpy().reshape(layers, experts)
    replicas, groups, nodes, gpus = experts + 32, 8, 4, 32
    plan_s = best_of(lambda: rebalance_experts(weight, replicas, groups, nodes, gpus), repeat)
    one_by_one = best_of(lambda: [rebalance_experts(weight[i:i + 1], replicas, groups, nodes, gpus) for i in range(layers)], repeat)
    emit(BENCH, "eplb_plan_wall_s", plan_s, "s", baseline=round(one_by_one, 4), ratio=round(one_by_one / plan_s, 2),
         layers=layers, experts=experts, replicas=replicas, nodes=nodes, gpus=gpus, baseline_kind="same code per layer")


if __name__ == "__main__":
    main()
