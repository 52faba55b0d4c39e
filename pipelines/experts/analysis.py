"""Expert-routing analysis in Polars: balance, hot experts, drift and the imbalance tax.

Input: ``expert_loads`` rows (window_start, window_end, cluster, engine_instance, model, layer,
expert, tokens). Per (model, instance, cluster, window, layer):

- ``balancedness`` = mean / max tokens over the model's logical experts (1.0 is perfect; a
  layer with no tokens counts as balanced), ``max_vio`` = max / mean - 1;
- ``hot_experts`` / ``hot_shares``: the top-k experts by tokens (ties by expert id, experts with
  no tokens never listed) and their share of the layer's tokens;
- ``hot_drift`` = 1 - Jaccard(top-k, the previous window's top-k of the same instance and
  layer); 0.0 when there is no previous window;
- ``imbalance_tax_usd``: the instance's GPU cost in the window x (1 - balancedness), shared
  over the window's layers (each row carries cost / layers x (1 - balancedness), so summing a
  window's rows gives cost x (1 - mean balancedness) and never more than the cost).

The model's expert count is max(expert) + 1 over all its rows, so pushed loads that omit
cold experts still average over every expert. Everything is expressions over whole frames:
no Python loop over layers, experts or windows.
"""

from __future__ import annotations

import polars as pl

INSTANCE_KEYS = ["model", "engine_instance", "cluster"]
WINDOW_KEYS = [*INSTANCE_KEYS, "window_start", "window_end"]
LAYER_KEYS = [*WINDOW_KEYS, "layer"]
SERIES_KEYS = [*INSTANCE_KEYS, "layer"]
DEFAULT_TOP_K = 8


EXPERT_BITS = 20  # expert ids below 2**20 (DeepSeek-V3 has 256); the rank key packs tokens above them
_EXPERT_MASK = (1 << EXPERT_BITS) - 1
_MAX_RANKED_TOKENS = (1 << (64 - EXPERT_BITS)) - 1  # 1.7e13 tokens per expert and window; above ties


def layer_stats(
    loads: pl.DataFrame | pl.LazyFrame, top_k: int = DEFAULT_TOP_K, unique_experts: bool = False
) -> pl.DataFrame:
    """Balance and top-k per layer and window (no drift, no tax yet).

    Rows naming the same (layer key, expert) twice (two sources, a re-sent window) are summed
    first, unless ``unique_experts`` says the caller already did (the step's SQL does).
    One pass over the rows: the top-k comes from ``top_k`` on a packed key ``tokens << 20 |
    (mask - expert)`` (hotter first, ties to the lower expert id), never a sort of all rows.
    """
    lf = loads.lazy().select(*LAYER_KEYS, pl.col("expert").cast(pl.UInt64), pl.col("tokens").cast(pl.UInt64))
    if not unique_experts:
        lf = lf.group_by(*LAYER_KEYS, "expert").agg(pl.col("tokens").sum())
    rank_key = pl.col("tokens").clip(upper_bound=_MAX_RANKED_TOKENS) * (1 << EXPERT_BITS) + (_EXPERT_MASK - pl.col("expert"))
    stats = lf.group_by(LAYER_KEYS).agg(
        total_tokens=pl.col("tokens").sum(),
        max_tokens=pl.col("tokens").max(),
        max_expert=pl.col("expert").max(),
        hot_keys=rank_key.filter(pl.col("tokens") > 0).top_k(top_k).sort(descending=True),
    )
    n_experts = (pl.col("max_expert").max().over("model") + 1).cast(pl.Float64)
    mean = pl.col("total_tokens").cast(pl.Float64) / n_experts
    max_tokens = pl.col("max_tokens").cast(pl.Float64)
    busy = pl.col("max_tokens") > 0
    return (
        stats.with_columns(
            balancedness=pl.when(busy).then(mean / max_tokens).otherwise(1.0),
            max_vio=pl.when(busy).then(max_tokens / mean - 1.0).otherwise(0.0),
            hot_experts=pl.col("hot_keys").list.eval(_EXPERT_MASK - (pl.element() % (1 << EXPERT_BITS))).cast(pl.List(pl.UInt32)),
            hot_shares=pl.col("hot_keys").list.eval((pl.element() // (1 << EXPERT_BITS)).cast(pl.Float64))
            / pl.col("total_tokens").cast(pl.Float64),
        )
        .drop("hot_keys", "max_tokens", "max_expert")
        .sort(LAYER_KEYS)
        .collect()
    )


def add_drift(stats: pl.DataFrame, previous: pl.DataFrame | None = None) -> pl.DataFrame:
    """``hot_drift`` against the previous window of each (model, instance, cluster, layer).

    ``previous`` holds the top-k of windows before ``stats`` (columns of SERIES_KEYS and
    ``prev_hot``), e.g. the last ``expert_hotness`` row of each series; the first window of a
    series with no previous one gets 0.0.
    """
    prev = pl.col("hot_experts").shift(1).over(SERIES_KEYS, order_by="window_start")
    df = stats.with_columns(prev_hot=prev)
    if previous is not None and previous.height:
        earlier = previous.select(*SERIES_KEYS, pl.col("prev_hot").cast(pl.List(pl.UInt32)).alias("earlier_hot"))
        df = (
            df.join(earlier, on=SERIES_KEYS, how="left", nulls_equal=True)
            .with_columns(prev_hot=pl.coalesce("prev_hot", "earlier_hot"))
            .drop("earlier_hot")
        )
    inter = pl.col("hot_experts").list.set_intersection("prev_hot").list.len()
    union = pl.col("hot_experts").list.set_union("prev_hot").list.len()
    drift = pl.when(pl.col("prev_hot").is_null()).then(0.0).when(union == 0).then(0.0).otherwise(1.0 - inter / union)
    return df.with_columns(hot_drift=drift.cast(pl.Float64)).drop("prev_hot")


def window_costs(windows: pl.DataFrame, instance_costs_hourly: pl.DataFrame) -> pl.DataFrame:
    """GPU cost of each (cluster, engine_instance, window): hourly instance costs (columns
    cluster, engine_instance, hour, cost_usd) prorated by the window's overlap with each hour."""
    keys = ["cluster", "engine_instance", "window_start", "window_end"]
    w = windows.select(keys).unique()
    if w.height == 0 or instance_costs_hourly.height == 0:
        return w.with_columns(window_cost_usd=pl.lit(0.0))
    hours = w.with_columns(
        hour=pl.datetime_ranges(
            pl.col("window_start").dt.truncate("1h"),
            (pl.col("window_end") - pl.duration(milliseconds=1)).dt.truncate("1h"),
            interval="1h",
        )
    ).explode("hour")
    costs = instance_costs_hourly.select(
        "cluster", "engine_instance", pl.col("hour").cast(hours.schema["hour"]), pl.col("cost_usd").cast(pl.Float64)
    ).group_by("cluster", "engine_instance", "hour").agg(pl.col("cost_usd").sum())
    hour_end = pl.col("hour") + pl.duration(hours=1)
    overlap_ms = (
        pl.min_horizontal(pl.col("window_end"), hour_end) - pl.max_horizontal(pl.col("window_start"), pl.col("hour"))
    ).dt.total_milliseconds()
    return (
        hours.join(costs, on=["cluster", "engine_instance", "hour"], how="left")
        .with_columns(part=pl.col("cost_usd").fill_null(0.0) * overlap_ms.clip(lower_bound=0) / 3_600_000.0)
        .group_by(keys)
        .agg(window_cost_usd=pl.col("part").sum())
    )


def add_imbalance_tax(stats: pl.DataFrame, costs: pl.DataFrame) -> pl.DataFrame:
    """``imbalance_tax_usd`` = window cost / layers in the window x (1 - balancedness)."""
    keys = ["cluster", "engine_instance", "window_start", "window_end"]
    layers = pl.len().over(WINDOW_KEYS)
    return (
        stats.join(costs.select(*keys, "window_cost_usd"), on=keys, how="left")
        .with_columns(
            imbalance_tax_usd=pl.col("window_cost_usd").fill_null(0.0) / layers * (1.0 - pl.col("balancedness"))
        )
        .drop("window_cost_usd")
    )


def expert_hotness_frame(
    loads: pl.DataFrame | pl.LazyFrame,
    instance_costs_hourly: pl.DataFrame | None = None,
    previous: pl.DataFrame | None = None,
    top_k: int = DEFAULT_TOP_K,
    unique_experts: bool = False,
) -> pl.DataFrame:
    """All of it: the rows of ``expert_hotness`` (less run_version / computed_at)."""
    stats = add_drift(layer_stats(loads, top_k, unique_experts), previous)
    costs = window_costs(stats, instance_costs_hourly if instance_costs_hourly is not None else _no_costs(stats))
    return add_imbalance_tax(stats, costs)


def _no_costs(stats: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame(
        schema={"cluster": pl.String, "engine_instance": pl.String, "hour": stats.schema["window_start"], "cost_usd": pl.Float64}
    )
