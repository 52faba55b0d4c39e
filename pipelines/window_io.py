"""Store I/O of attribution: read a window's inputs, write its outputs, find windows to (re)run.

Outputs are replaced, never duplicated: the new rows go in with a higher ``run_version``, then
the window's older versions are deleted (lightweight ``DELETE``). Readers that use ``FINAL``
or take the newest ``run_version`` per window are correct at every moment in between.
"""

from __future__ import annotations

import datetime as dt
import time

import polars as pl

from pipelines.attribution import WindowInputs, WindowResult
from schemas import Store
from schemas.tables import conform

UTC = dt.UTC
SAMPLE_MARGIN_S = 300  # telemetry read around the window so counter deltas span its edges

_WS = "fromUnixTimestamp64Micro({ws:Int64}, 'UTC')"
_WE = "fromUnixTimestamp64Micro({we:Int64}, 'UTC')"
DERIVED_TIME_COLUMN = {"request_costs": "window_start", "workflow_costs_hourly": "hour", "idle_costs_hourly": "hour",
                       "attribution_runs": "window_start"}


def new_run_version() -> int:
    """Microseconds since the epoch: unique and increasing across runs."""
    return time.time_ns() // 1000


def _us(t: dt.datetime) -> int:
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return int(t.replace(microsecond=0).timestamp()) * 1_000_000 + t.microsecond


def _table(store: Store, table: str, sql: str, params: dict) -> pl.DataFrame:
    return pl.from_arrow(conform(table, store.query_arrow(sql, params)))  # type: ignore[return-value]


def load_window_inputs(store: Store, cluster: str, window_start: dt.datetime, window_end: dt.datetime) -> WindowInputs:
    p = {"cluster": cluster, "ws": _us(window_start), "we": _us(window_end),
         "ms": _us(window_start) - SAMPLE_MARGIN_S * 1_000_000, "me": _us(window_end) + SAMPLE_MARGIN_S * 1_000_000}
    span_filter = f"cluster = {{cluster:String}} AND end_ts > {_WS} AND start_ts < {_WE}"
    spans = _table(store, "request_spans", f"SELECT * FROM request_spans FINAL WHERE {span_filter}", p)
    labels = _table(store, "trace_labels",
                    f"SELECT * FROM trace_labels FINAL WHERE trace_id IN (SELECT trace_id FROM request_spans WHERE {span_filter})", p)
    placements = _table(store, "engine_placements",
                        f"SELECT * FROM engine_placements FINAL WHERE cluster = {{cluster:String}} "
                        f"AND valid_from < {_WE} AND valid_to > {_WS}", p)
    valid = f"cluster IN ({{cluster:String}}, '') AND valid_from < {_WE} AND valid_to > {_WS}"
    reservations = _table(store, "reservations", f"SELECT * FROM reservations FINAL WHERE {valid}", p)
    prices = _table(store, "prices", f"SELECT * FROM prices FINAL WHERE {valid}", p)
    samples = pl.from_arrow(store.query_arrow(
        "SELECT ts, node, gpu_uuid, gpu_model, energy_mj, power_w FROM gpu_samples "
        "WHERE cluster = {cluster:String} AND mig_instance = '' "
        "AND ts >= fromUnixTimestamp64Micro({ms:Int64}, 'UTC') AND ts < fromUnixTimestamp64Micro({me:Int64}, 'UTC') "
        "ORDER BY gpu_uuid, ts", p,
    )).with_columns(  # type: ignore[union-attr]
        pl.col("ts").cast(pl.Datetime("ms", "UTC")), pl.col("node", "gpu_uuid", "gpu_model").cast(pl.String),
        pl.col("energy_mj").cast(pl.UInt64), pl.col("power_w").cast(pl.Float64),
    )
    return WindowInputs(cluster, window_start, window_end, spans, labels, placements, reservations, prices, samples)


def write_window(store: Store, result: WindowResult, cluster: str, window_start: dt.datetime,
                 window_end: dt.datetime, run_version: int) -> None:
    """Insert the window's rows under ``run_version``, then drop the window's older versions."""
    store.insert("request_costs", result.request_costs)
    store.insert("workflow_costs_hourly", result.workflow_costs_hourly)
    store.insert("idle_costs_hourly", result.idle_costs_hourly)
    store.insert("attribution_runs", result.run)
    p = {"cluster": cluster, "ws": _us(window_start), "we": _us(window_end), "v": run_version}
    for table, col in DERIVED_TIME_COLUMN.items():
        store.command(
            f"DELETE FROM {table} WHERE cluster = {{cluster:String}} AND {col} >= {_WS} AND {col} < {_WE} "
            "AND run_version < {v:UInt64}", p,
        )


def clusters_in(store: Store, window_start: dt.datetime, window_end: dt.datetime) -> list[str]:
    """Clusters with placements, reservations or spans in the window."""
    p = {"ws": _us(window_start), "we": _us(window_end)}
    rows = store.query_rows(
        f"SELECT cluster FROM engine_placements FINAL WHERE valid_from < {_WE} AND valid_to > {_WS} "
        f"UNION DISTINCT SELECT cluster FROM reservations FINAL WHERE cluster != '' AND valid_from < {_WE} AND valid_to > {_WS} "
        f"UNION DISTINCT SELECT DISTINCT cluster FROM request_spans WHERE end_ts > {_WS} AND start_ts < {_WE}", p,
    )
    found = sorted({str(r[0]) for r in rows})
    return found or ["default"]


def hour_floor(t: dt.datetime) -> dt.datetime:
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hourly_windows(start: dt.datetime, end: dt.datetime) -> list[tuple[dt.datetime, dt.datetime]]:
    """Hour windows covering [start, end) (start floored, end rounded up to the hour)."""
    s, end = hour_floor(start), _aware(end).astimezone(UTC)
    out = []
    while s < end:
        out.append((s, s + dt.timedelta(hours=1)))
        s += dt.timedelta(hours=1)
    return out


# raw tables whose late rows change a window's attribution (energy from samples, labels, spans)
LATE_DATA_TABLES = ("gpu_samples", "request_spans", "trace_labels")


def windows_due(store: Store, now: dt.datetime, allowed_lateness_s: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """The last complete hour, plus earlier hours within the allowed lateness that were never
    attributed, whose spans arrived (``received_at``) after their last run, or for which spool
    segments of spans, labels or GPU samples were loaded after it (``spool_segments`` ranges)."""
    last = hour_floor(now) - dt.timedelta(hours=1)
    first = min(last, hour_floor(now - dt.timedelta(seconds=allowed_lateness_s)))
    due = []
    for ws, we in hourly_windows(first, last + dt.timedelta(hours=1)):
        p = {"ws": _us(ws), "we": _us(we)}
        last_run = store.query_rows(f"SELECT max(computed_at), count() FROM attribution_runs WHERE window_start = {_WS}", p)[0]
        if ws == last or int(last_run[1]) == 0:
            due.append((ws, we))
            continue
        newest = store.query_rows(
            f"SELECT max(received_at), count() FROM request_spans WHERE end_ts > {_WS} AND start_ts < {_WE}", p)[0]
        if int(newest[1]) and newest[0] is not None and _aware(newest[0]) > _aware(last_run[0]):
            due.append((ws, we))
            continue
        # GPU samples (and spans or labels) loaded after the last run, whatever their receive time
        loaded = store.query_rows(
            "SELECT max(ingested_at), count() FROM spool_segments FINAL WHERE table_name IN {t:Array(String)} "
            f"AND data_end >= {_WS} AND data_start < {_WE}", {**p, "t": list(LATE_DATA_TABLES)})[0]
        # >=: a segment loaded in the very millisecond of the run is re-run too (harmless, idempotent)
        if int(loaded[1]) and loaded[0] is not None and _aware(loaded[0]) >= _aware(last_run[0]):
            due.append((ws, we))
    return due


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=UTC)
