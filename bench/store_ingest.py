"""Store ingest: rows/s of gpu_samples through Store.insert (chDB fast path) vs clickhouse-connect's
plain ``insert_arrow`` on the same embedded store, measured in the same run."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute  # noqa: F401

from bench.common import emit, log, parser
from schemas import Store
from schemas.tables import GPU_SAMPLES


def make_gpu_samples(n: int, seed: int = 7) -> pa.Table:
    """n rows of 1 Hz samples over 1,024 GPUs on 128 nodes, realistic value ranges."""
    rng = np.random.default_rng(seed)
    gpus = 1024
    idx = np.arange(n)
    gpu = idx % gpus
    start_ms = (int(time.time()) // 86400 - 1) * 86_400_000  # yesterday: inside any retention window
    ts = (start_ms + (idx // gpus) * 1000).astype("datetime64[ms]")
    uuids = np.array([f"GPU-{g:08x}-0000-0000-0000-{g:012x}" for g in range(gpus)])
    nodes = np.array([f"node-{g // 8:03d}" for g in range(gpus)])
    power = rng.uniform(90, 700, n)
    cols = {
        "ts": pa.array(ts, pa.timestamp("ms")).cast(pa.timestamp("ms", tz="UTC")),
        "cluster": pa.array(np.full(n, "prod-1")),
        "node": pa.array(nodes[gpu]),
        "gpu_uuid": pa.array(uuids[gpu]),
        "gpu_index": pa.array((gpu % 8).astype(np.uint16)),
        "gpu_model": pa.array(np.full(n, "NVIDIA H100 80GB HBM3")),
        "mig_profile": pa.array(np.full(n, "")),
        "mig_instance": pa.array(np.full(n, "")),
        "sm_util_pct": pa.array(rng.uniform(0, 100, n).astype(np.float32)),
        "gr_engine_active": pa.nulls(n, pa.float32()),
        "mem_util_pct": pa.array(rng.uniform(0, 100, n).astype(np.float32)),
        "memory_used_bytes": pa.array(rng.integers(0, 80 << 30, n, dtype=np.uint64)),
        "memory_total_bytes": pa.array(np.full(n, 80 << 30, dtype=np.uint64)),
        "power_w": pa.array(power),
        "energy_mj": pa.array((idx // gpus * 500_000 + gpu).astype(np.uint64)),
        "sm_clock_mhz": pa.array(rng.integers(1000, 1980, n, dtype=np.uint32)),
        "mem_clock_mhz": pa.array(np.full(n, 2619, dtype=np.uint32)),
        "temperature_c": pa.array(rng.uniform(30, 80, n).astype(np.float32)),
        "throttle_reasons": pa.array(np.zeros(n, dtype=np.uint64)),
        "ecc_sbe_total": pa.array(np.zeros(n, dtype=np.uint64)),
        "ecc_dbe_total": pa.array(np.zeros(n, dtype=np.uint64)),
        "source": pa.array(np.full(n, "nvml")),
    }
    return pa.table(cols, schema=GPU_SAMPLES)


def shifted(data: pa.Table, hours: int) -> pa.Table:
    """The same rows moved ``hours`` later: a distinct block (insert deduplication) with keys that no
    other block has (ReplacingMergeTree merges would otherwise collapse overlapping rows)."""
    ts = pa.compute.add(data.column("ts"), pa.scalar(hours * 3_600_000, pa.duration("ms")))
    return data.set_column(0, "ts", ts)


def main(argv: list[str] | None = None) -> None:
    args = parser(__doc__ or "").parse_args(argv)
    total = 200_000 if args.quick else 5_000_000
    batch = 100_000 if args.quick else 500_000
    data = make_gpu_samples(batch)
    tmp = Path(tempfile.mkdtemp(prefix="fl-bench-ingest-"))
    try:
        store = Store.open(f"chdb://{tmp / 'store'}")
        store.migrate()
        batches = total // batch
        log(f"store_ingest: {total:,} gpu_samples rows in {batches} inserts of {batch:,}")

        # distinct blocks: identical ones would be dropped by insert deduplication
        blocks = [shifted(data, i) for i in range(batches)]
        t0 = time.perf_counter()
        for block in blocks:
            store.insert("gpu_samples", block)
        ours = total / (time.perf_counter() - t0)
        assert store.count("gpu_samples") == total

        store.command("TRUNCATE TABLE gpu_samples")
        blocks = [shifted(data, batches + i) for i in range(batches)]  # unseen blocks for the baseline
        t0 = time.perf_counter()
        for block in blocks:
            store.client.insert_arrow("gpu_samples", block)
        base = total / (time.perf_counter() - t0)
        assert store.count("gpu_samples") == total
        store.close()
        emit("store_ingest", "rows_per_s", ours, "rows/s", rows=total, baseline=round(base, 1),
             baseline_name="clickhouse-connect insert_arrow (chDB)", ratio=round(ours / base, 3))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
