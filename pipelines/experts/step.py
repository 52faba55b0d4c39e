"""The experts step of the hourly flow: ``expert_loads`` -> ``expert_hotness``.

``run_expert_hotness(store, window_start, window_end, run_version)`` takes the load windows
that end in ``(window_start, window_end]``, the previous window's top-k of each series from
``expert_hotness`` (for the drift), and each instance's hourly GPU cost read from the tables
the earlier steps wrote: ``request_costs.cost_usd`` of the instance plus
``idle_costs_hourly.idle_cost_usd`` of the GPUs that ``engine_placements`` gives it. It writes
one ``expert_hotness`` row per (model, instance, cluster, window, layer) tagged with
``run_version`` (a re-run replaces the older rows) and returns the number written.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from pipelines.experts.analysis import DEFAULT_TOP_K, SERIES_KEYS, expert_hotness_frame

DRIFT_LOOKBACK = timedelta(days=1)
_TS = "DateTime64(3, 'UTC')"

LOADS_SQL = f"""
SELECT window_start, window_end, cluster, engine_instance, model, layer, expert, sum(tokens) AS tokens
FROM expert_loads FINAL
WHERE window_end > {{ws:{_TS}}} AND window_end <= {{we:{_TS}}}
GROUP BY window_start, window_end, cluster, engine_instance, model, layer, expert
"""

PREVIOUS_SQL = f"""
SELECT model, engine_instance, cluster, layer, argMax(hot_experts, window_end) AS prev_hot
FROM expert_hotness FINAL
WHERE window_end <= {{ws:{_TS}}} AND window_end > {{since:{_TS}}}
GROUP BY model, engine_instance, cluster, layer
"""

REQUEST_COSTS_SQL = f"""
SELECT cluster, engine_instance, toDateTime64(toStartOfHour(window_start), 3, 'UTC') AS hour, sum(cost_usd) AS cost_usd
FROM request_costs FINAL
WHERE window_start >= {{lo:{_TS}}} AND window_start < {{hi:{_TS}}}
GROUP BY cluster, engine_instance, hour
"""

# A GPU counts for an instance in an hour when one of its placements overlaps that hour; DISTINCT
# keeps a GPU once even when several placement rows (restarts, sources) name it.
IDLE_COSTS_SQL = f"""
SELECT cluster, engine_instance, hour, sum(idle_cost_usd) AS cost_usd
FROM (
    SELECT DISTINCT i.cluster AS cluster, p.engine_instance AS engine_instance, i.hour AS hour,
           i.gpu_uuid AS gpu_uuid, i.reservation_id AS reservation_id, i.idle_cost_usd AS idle_cost_usd
    FROM (SELECT hour, cluster, gpu_uuid, reservation_id, idle_cost_usd
          FROM idle_costs_hourly FINAL
          WHERE hour >= {{lo:{_TS}}} AND hour < {{hi:{_TS}}}) AS i
    INNER JOIN (SELECT cluster, engine_instance, arrayJoin(gpu_uuids) AS gpu_uuid, valid_from, valid_to
                FROM engine_placements FINAL) AS p
        ON i.cluster = p.cluster AND i.gpu_uuid = p.gpu_uuid
    WHERE p.valid_from < i.hour + INTERVAL 1 HOUR AND p.valid_to > i.hour
)
GROUP BY cluster, engine_instance, hour
"""


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def instance_costs_hourly(store, lo: datetime, hi: datetime) -> pl.DataFrame:
    """Hourly GPU cost of each engine instance: attributed request cost + its GPUs' idle cost."""
    params = {"lo": lo, "hi": hi}
    parts = [store.query_polars(REQUEST_COSTS_SQL, params), store.query_polars(IDLE_COSTS_SQL, params)]
    frames = [
        p.select(
            pl.col("cluster").cast(pl.String),
            pl.col("engine_instance").cast(pl.String),
            pl.col("hour").cast(pl.Datetime("ms", "UTC")),
            pl.col("cost_usd").cast(pl.Float64),
        )
        for p in parts
        if p.height
    ]
    if not frames:
        return pl.DataFrame(schema={"cluster": pl.String, "engine_instance": pl.String,
                                    "hour": pl.Datetime("ms", "UTC"), "cost_usd": pl.Float64})
    return pl.concat(frames).group_by("cluster", "engine_instance", "hour").agg(pl.col("cost_usd").sum())


def _strings(df: pl.DataFrame, *cols: str) -> pl.DataFrame:
    return df.with_columns(pl.col(c).cast(pl.String) for c in cols)


def run_expert_hotness(
    store,
    window_start: datetime,
    window_end: datetime,
    run_version: int,
    top_k: int = DEFAULT_TOP_K,
) -> int:
    """Write ``expert_hotness`` for the load windows ending in ``(window_start, window_end]``."""
    ws, we = _utc(window_start), _utc(window_end)
    loads = store.query_polars(LOADS_SQL, {"ws": ws, "we": we})
    if loads.height == 0:
        return 0
    loads = _strings(loads, "cluster", "engine_instance", "model").with_columns(
        pl.col("window_start").cast(pl.Datetime("ms", "UTC")), pl.col("window_end").cast(pl.Datetime("ms", "UTC"))
    )
    previous = _strings(
        store.query_polars(PREVIOUS_SQL, {"ws": ws, "since": ws - DRIFT_LOOKBACK}), "cluster", "engine_instance", "model"
    )
    if previous.height:
        previous = previous.with_columns(pl.col("layer").cast(loads.schema["layer"])).select(*SERIES_KEYS, "prev_hot")
    lo = loads["window_start"].min().replace(minute=0, second=0, microsecond=0)
    hi = loads["window_end"].max()
    costs = instance_costs_hourly(store, lo, hi)
    frame = expert_hotness_frame(loads, costs, previous if previous.height else None, top_k=top_k, unique_experts=True)
    frame = frame.with_columns(
        run_version=pl.lit(run_version, dtype=pl.UInt64),
        computed_at=pl.lit(datetime.now(UTC)).cast(pl.Datetime("ms", "UTC")),
    )
    return store.insert("expert_hotness", frame)
