"""What every GPU costs and draws over time, and which GPUs each engine instance owns.

Builds ``Step`` functions from the user's inputs and the raw telemetry:
- ``gpu_prices``: $/s per GPU from the reservation covering it (the newest ``valid_from`` wins
  when rows overlap, which is how a reloaded reservation keeps its history); a reservation
  without a rate (``usd_per_gpu_hour`` <= 0) takes the price catalog's rate for its provider,
  pricing model, GPU model and cluster (the most specific, newest row wins).
- ``energy_price``: $/J of the cluster from the catalog's ``kind = 'energy'`` rows ($/kWh).
- ``gpu_energy``: watts per GPU from NVML energy-counter deltas between samples; an interval
  whose counter is missing or went backwards (driver reload) uses the mean of its two power
  samples instead and the GPU is marked ``power_samples``.
- ``memberships``: per engine instance, a 0/1 step per GPU from ``engine_placements``; a newer
  placement of the same instance supersedes the older one from its ``valid_from``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from pipelines.attribution.steps import Step, step_product

J_PER_KWH = 3_600_000.0
SECONDS_PER_HOUR = 3600.0
SMALL_FRAME = 4096  # below this many rows, plain Python on eager columns beats a Polars query's fixed cost


def _us(col: str) -> pl.Expr:
    return pl.col(col).dt.epoch("us")


def _resolve(edges: np.ndarray, candidates: list[tuple[tuple, int, int, Step]]) -> tuple[np.ndarray, np.ndarray]:
    """For each edge, the index of the highest-priority candidate covering it (-1 for none).

    ``candidates`` = (priority, valid_from_us, valid_to_us, rate step); later priority wins.
    """
    chosen = np.full(edges.size, -1, dtype=np.int64)
    order = sorted(range(len(candidates)), key=lambda i: candidates[i][0])
    for i in order:
        _, vf, vt, _ = candidates[i]
        chosen[(edges >= vf) & (edges < vt)] = i
    return chosen, np.array(order)


def _pick(edges: np.ndarray, candidates: list[tuple[tuple, int, int, Step]]) -> tuple[Step, np.ndarray]:
    """Resolve overlapping priced periods into one step; also the chosen candidate per edge."""
    if not candidates:
        return Step.zero(), np.zeros(0, dtype=np.int64)
    chosen, _ = _resolve(edges, candidates)
    values = np.zeros(edges.size, dtype=np.float64)
    for i, cand in enumerate(candidates):
        mask = chosen == i
        if mask.any():
            values[mask] = cand[3].at(edges[mask])
    return Step(edges, values), chosen


@dataclass(frozen=True)
class GpuPrice:
    price: Step  # $/s
    covered: Step  # 1 where a reservation covers the GPU
    reservation: Step  # index into the reservations list (float), -1 = none


@dataclass
class PricingInputs:
    reservations: list[dict]  # the cluster's reservation rows (dicts), indexed by GpuPrice.reservation
    gpus: dict[str, GpuPrice] = field(default_factory=dict)
    energy_price: Step = field(default_factory=Step.zero)  # $/J


def catalog_rate(prices: pl.DataFrame, *, kind: str, cluster: str, provider: str = "", pricing_model: str = "",
                 gpu_model: str = "") -> Step:
    """The catalog's $/unit-second rate for one key, newest/most specific row winning."""
    if prices.is_empty():
        return Step.zero()
    p = prices.filter((pl.col("kind") == kind) & pl.col("cluster").is_in([cluster, ""]))
    if kind == "gpu":
        p = p.filter(
            (pl.col("pricing_model") == pricing_model)
            & pl.col("gpu_model").is_in([gpu_model, ""])
            & pl.col("provider").is_in([provider, ""])
        )
    if p.is_empty():
        return Step.zero()
    p = p.with_columns(vf=_us("valid_from"), vt=_us("valid_to"), lt=_us("loaded_at"))
    divisor = SECONDS_PER_HOUR if kind == "gpu" else J_PER_KWH
    cands = []
    for row in p.iter_rows(named=True):  # catalog rows: a handful per key
        prio = (row["cluster"] == cluster, row.get("provider", "") == provider,
                row.get("gpu_model", "") == gpu_model, row["vf"], row["lt"])
        cands.append((prio, row["vf"], row["vt"], Step.box(row["vf"], row["vt"], row["usd_per_unit"] / divisor)))
    edges = np.unique(np.array([c[1] for c in cands] + [c[2] for c in cands], dtype=np.int64))
    step, _ = _pick(edges, cands)
    return step


def gpu_prices(reservations: pl.DataFrame, prices: pl.DataFrame, cluster: str,
               gpus_of_node: dict[str, list[str]], gpu_models: dict[str, str]) -> PricingInputs:
    """Price steps of every GPU any reservation of ``cluster`` covers."""
    rows = []
    if not reservations.is_empty():
        rows = _reservation_rows_small(reservations, cluster)
        if rows is None:
            rows = list(reservations.lazy().filter(pl.col("cluster").is_in([cluster, ""]))
                        .with_columns(vf=_us("valid_from"), vt=_us("valid_to"), lt=_us("loaded_at"))
                        .sort("reservation_id", "vf").collect().iter_rows(named=True))
    per_gpu: dict[str, list[tuple[tuple, int, int, Step, int]]] = {}
    for idx, row in enumerate(rows):  # reservations: tens to hundreds, never per request
        rate = row["usd_per_gpu_hour"]
        if rate is not None and rate > 0:
            step = Step.box(row["vf"], row["vt"], rate / SECONDS_PER_HOUR)
        else:
            catalog = catalog_rate(prices, kind="gpu", cluster=cluster, provider=row["provider"],
                                   pricing_model=row["pricing_model"], gpu_model=row["gpu_model"])
            step = step_product(catalog, Step.box(row["vf"], row["vt"], 1.0))
        # an explicit GPU set is exact; the node set means "every GPU of these nodes" only without one
        members = set(row["gpu_uuids"] or [])
        if not members:
            for node in row["nodes"] or []:
                members.update(gpus_of_node.get(node, []))
        for gpu in members:
            per_gpu.setdefault(gpu, []).append(((row["vf"], row["lt"]), row["vf"], row["vt"], step, idx))
        for gpu in members:
            gpu_models.setdefault(gpu, row["gpu_model"])
    out = PricingInputs(reservations=rows, energy_price=catalog_rate(prices, kind="energy", cluster=cluster))
    resolved: dict[tuple[int, ...], GpuPrice] = {}  # GPUs under the same reservations share one (immutable) result
    for gpu, cands in per_gpu.items():
        key = tuple(c[4] for c in cands)
        if key not in resolved:
            edges = np.unique(np.concatenate(
                [np.array([c[1], c[2]], dtype=np.int64) for c in cands] + [c[3].times for c in cands]))
            price, chosen = _pick(edges, [c[:4] for c in cands])
            res_index = np.where(chosen >= 0, np.array([c[4] for c in cands])[np.clip(chosen, 0, None)], -1)
            resolved[key] = GpuPrice(
                price=price,
                covered=Step(edges, (chosen >= 0).astype(np.float64)),
                reservation=Step(edges, res_index.astype(np.float64)),
            )
        out.gpus[gpu] = resolved[key]
    return out


def _reservation_rows_small(reservations: pl.DataFrame, cluster: str) -> list[dict] | None:
    """``gpu_prices``' rows (the cluster's reservations as dicts with vf/vt/lt in µs, sorted by
    id and valid_from) in plain Python for a small frame without nulls in the keys; else None."""
    if reservations.height > SMALL_FRAME:
        return None
    f = reservations.filter(pl.col("cluster").is_in([cluster, ""]))
    if any(f[c].null_count() for c in ("reservation_id", "valid_from")):
        return None
    rows = f.to_dicts()
    for key, col in (("vf", "valid_from"), ("vt", "valid_to"), ("lt", "loaded_at")):
        for row, v in zip(rows, f[col].dt.epoch("us").to_list(), strict=True):
            row[key] = v
    return sorted(rows, key=lambda r: (r["reservation_id"], r["vf"]))


_SCRATCH = threading.local()


def _scratch(n: int) -> np.ndarray:
    """A float64 work array of ``n`` elements, kept per thread between calls: a fresh array of
    samples' size costs a page fault per 4 KiB on every call (glibc hands large blocks back to the OS)."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.size < n:
        buf = _SCRATCH.buf = np.empty(n)
    return buf[:n]


@dataclass
class GpuEnergy:
    watts: Step
    source: str  # 'energy_counter' | 'power_samples' | 'none'
    node: str = ""
    gpu_model: str = ""


def _run_starts(gpu: pl.Series) -> np.ndarray:
    """True where a row starts a new run of equal ``gpu_uuid`` values."""
    return (gpu != gpu.shift(1)).fill_null(True).to_numpy()


def _sorted_by_gpu(samples: pl.DataFrame) -> tuple[pl.DataFrame, np.ndarray]:
    """Samples grouped by GPU, time-ordered within a GPU (the store query returns them so),
    and the run-start mask of the result."""
    starts = _run_starts(samples["gpu_uuid"])
    if samples["ts"].null_count() == 0:
        t = samples["ts"].to_physical().to_numpy()
        ts_sorted = bool(np.all((t[1:] >= t[:-1]) | starts[1:]))
    else:
        ts_sorted = samples.select(
            ok=((pl.col("ts") >= pl.col("ts").shift(1)) | pl.Series(starts)).fill_null(True).all()
        )["ok"][0]
    first = samples["gpu_uuid"].filter(pl.Series(starts))
    if ts_sorted and first.n_unique() == first.len():  # each GPU in one run
        return samples, starts
    samples = samples.sort("gpu_uuid", "ts", maintain_order=True)
    return samples, _run_starts(samples["gpu_uuid"])


def gpu_energy(samples: pl.DataFrame) -> dict[str, GpuEnergy]:
    """Energy rate steps per GPU from ``gpu_samples`` rows (ts, gpu_uuid, energy_mj, power_w[, node, gpu_model]).

    Vectorised over all GPUs at once: rows grouped by GPU (sorted only if they are not already),
    deltas between neighbours of the same GPU, then one slice per GPU. The power fallback is
    evaluated only on the intervals that need it.
    """
    if samples.is_empty():
        return {}
    samples, starts = _sorted_by_gpu(samples)
    t = samples["ts"].dt.epoch("us").to_numpy().astype(np.int64, copy=False)
    e = samples["energy_mj"].cast(pl.Float64).to_numpy()  # nulls -> nan
    p = samples["power_w"].cast(pl.Float64).to_numpy()
    first_rows = np.flatnonzero(starts)
    n = t.size
    dt_s = _scratch(n)  # in-place arithmetic below: fresh large arrays are costly to touch
    dt_s[-1] = 0.0
    np.subtract(t[1:], t[:-1], out=dt_s[:-1])
    has_next = np.zeros(n, dtype=bool)
    np.logical_not(starts[1:], out=has_next[:-1])
    if np.any((dt_s == 0) & has_next):  # duplicate (gpu, ts): keep the last
        keep = np.ones(n, dtype=bool)
        keep[:-1] = starts[1:] | (t[1:] != t[:-1])
        codes = np.cumsum(starts) - 1
        codes, t, e, p = codes[keep], t[keep], e[keep], p[keep]
        starts = np.r_[True, codes[1:] != codes[:-1]]
        n = t.size
        dt_s = np.zeros(n)
        np.subtract(t[1:], t[:-1], out=dt_s[:-1])
        has_next = np.zeros(n, dtype=bool)
        np.logical_not(starts[1:], out=has_next[:-1])
    dt_s /= 1e6
    watts = np.full(n, np.nan)  # energy delta (mJ), then W
    np.subtract(e[1:], e[:-1], out=watts[:-1])
    counter_ok = watts >= 0  # nan compares False
    counter_ok &= has_next
    counter_ok &= dt_s > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        watts /= 1000.0
        watts /= dt_s
        watts[~counter_ok] = 0.0
        fallback = has_next & ~counter_ok
        fb = np.flatnonzero(fallback)
        if fb.size:
            p0, p1 = p[fb], p[fb + 1]  # fb rows have a next row of the same GPU
            p_ok, pn_ok = ~np.isnan(p0), ~np.isnan(p1)
            watts[fb] = np.where(p_ok & pn_ok, (p0 + p1) / 2, np.where(p_ok, p0, np.where(pn_ok, p1, 0.0)))
    bounds = np.flatnonzero(np.r_[starts, True])
    fb_any = (np.add.reduceat(fallback.astype(np.int64), bounds[:-1]) > 0) if fb.size else np.zeros(bounds.size - 1, bool)
    names = samples["gpu_uuid"].gather(first_rows).to_list()
    nodes = samples["node"].gather(first_rows).to_list() if "node" in samples.columns else [""] * len(names)
    models = samples["gpu_model"].gather(first_rows).to_list() if "gpu_model" in samples.columns else [""] * len(names)
    out = {}
    for k in range(bounds.size - 1):  # one slice per GPU
        a, b = bounds[k], bounds[k + 1]
        source = "none" if b - a < 2 else ("power_samples" if fb_any[k] else "energy_counter")
        out[names[k]] = GpuEnergy(Step(t[a:b], watts[a:b]), source, nodes[k] or "", models[k] or "")
    return out


@dataclass
class InstanceInfo:
    engine_instance: str
    model: str
    node: str
    members: dict[str, Step]  # gpu_uuid -> 0/1 membership step


def memberships(placements: pl.DataFrame, cluster: str) -> dict[str, InstanceInfo]:
    """Which GPUs each engine instance owned when; newer placements supersede older ones."""
    if placements.is_empty():
        return {}
    rows = _placement_rows_small(placements, cluster)
    if rows is None:
        rows = (
            placements.lazy().filter(pl.col("cluster") == cluster)
            .with_columns(vf=_us("valid_from"), vt=_us("valid_to"), ut=_us("updated_at"))
            .sort("engine_instance", "vf", "ut")
            .unique(["engine_instance", "vf"], keep="last", maintain_order=True)
            .with_columns(next_vf=pl.col("vf").shift(-1).over("engine_instance"))
            .with_columns(eff_to=pl.min_horizontal("vt", pl.col("next_vf").fill_null(pl.col("vt"))))
            .collect().iter_rows(named=True)
        )
    out: dict[str, InstanceInfo] = {}
    for row in rows:  # placements: one or a few per instance
        info = out.setdefault(row["engine_instance"], InstanceInfo(row["engine_instance"], row["model"], row["node"], {}))
        info.model, info.node = row["model"] or info.model, row["node"] or info.node
        for gpu in row["gpu_uuids"] or []:
            box = Step.box(row["vf"], row["eff_to"], 1.0)
            prev = info.members.get(gpu)
            info.members[gpu] = box if prev is None else _merge_boxes(prev, box)
    return out


def _placement_rows_small(placements: pl.DataFrame, cluster: str) -> list[dict] | None:
    """The rows of ``memberships``' Polars query, computed in plain Python for a small frame without
    nulls in the keys (None otherwise): sorted by (instance, vf, ut), the last row of each
    (instance, vf), each effective until the instance's next placement or its own valid_to."""
    if placements.height > SMALL_FRAME:
        return None
    f = placements.filter(pl.col("cluster") == cluster)
    keys = ("engine_instance", "valid_from", "valid_to", "updated_at")
    if any(f[c].null_count() for c in keys):
        return None
    name = f["engine_instance"].to_list()
    vf, vt, ut = (f[c].dt.epoch("us").to_list() for c in keys[1:])
    model, node, gpus = f["model"].to_list(), f["node"].to_list(), f["gpu_uuids"].to_list()
    order = sorted(range(f.height), key=lambda i: (name[i], vf[i], ut[i]))
    kept = [i for k, i in enumerate(order)
            if k + 1 == len(order) or (name[order[k + 1]], vf[order[k + 1]]) != (name[i], vf[i])]
    rows = []
    for k, i in enumerate(kept):
        nxt = kept[k + 1] if k + 1 < len(kept) and name[kept[k + 1]] == name[i] else None
        rows.append({"engine_instance": name[i], "model": model[i], "node": node[i], "gpu_uuids": gpus[i],
                     "vf": vf[i], "eff_to": vt[i] if nxt is None else min(vt[i], vf[nxt])})
    return rows


def _merge_boxes(a: Step, b: Step) -> Step:
    times = np.unique(np.concatenate([a.times, b.times]))
    return Step(times, np.clip(a.at(times) + b.at(times), 0.0, 1.0))
