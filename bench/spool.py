"""Spool throughput: rows/s of gpu_samples through ``Spool.consume`` (conform, IPC write, fsync,
rename, directory fsync) against a baseline of a plain pyarrow IPC stream write without fsync.

Prints one JSON object per line: {"bench", "metric", "value", "unit", "baseline", "ratio", ...}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from collectors.config import SpoolConfig
from collectors.spool import Spool
from collectors.telemetry import Telemetry
from schemas.tables import GPU_SAMPLES


def sample_table(rows: int) -> pa.Table:
    i = np.arange(rows)
    n = rows
    return pa.table({
        "ts": pa.array(1_795_000_000_000 + i * 1000, GPU_SAMPLES.field("ts").type),
        "cluster": ["c1"] * n, "node": ["node-a"] * n,
        "gpu_uuid": pa.array([f"GPU-{k % 8:08d}-0000-0000-0000-000000000000" for k in range(n)]),
        "gpu_index": pa.array(i % 8, pa.uint16()), "gpu_model": ["NVIDIA H100 80GB HBM3"] * n,
        "mig_profile": [""] * n, "mig_instance": [""] * n,
        "sm_util_pct": pa.array((i % 100).astype(np.float32)), "mem_util_pct": pa.array((i % 50).astype(np.float32)),
        "memory_used_bytes": pa.array((i * 1024).astype(np.uint64)),
        "memory_total_bytes": pa.array(np.full(n, 80 << 30, dtype=np.uint64)),
        "power_w": pa.array(300.0 + (i % 7)), "energy_mj": pa.array(i.astype(np.uint64) * 300_000),
        "sm_clock_mhz": pa.array(np.full(n, 1980, dtype=np.uint32)),
        "temperature_c": pa.array(np.full(n, 60, dtype=np.float32)), "source": ["nvml"] * n,
    })


def spool_rate(directory: Path, data: pa.Table, segments: int) -> float:
    spool = Spool(SpoolConfig(directory=directory, max_bytes=1 << 40), Telemetry(), node="node-a")
    spool.start()
    t0 = time.perf_counter()
    for _ in range(segments):
        spool.consume("gpu_samples", data)
    return data.num_rows * segments / (time.perf_counter() - t0)


def baseline_rate(directory: Path, data: pa.Table, segments: int) -> float:
    directory.mkdir(parents=True, exist_ok=True)
    data = data.cast(GPU_SAMPLES) if data.schema != GPU_SAMPLES else data
    t0 = time.perf_counter()
    for k in range(segments):
        with open(directory / f"{k:06d}.arrows", "wb") as fh, ipc.new_stream(fh, data.schema) as w:
            w.write_table(data)
    return data.num_rows * segments / (time.perf_counter() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small sizes, seconds")
    ap.add_argument("--dir", type=Path, default=None, help="folder on the disk to measure (default: a temp dir)")
    args = ap.parse_args(argv)
    sizes = [(8, 200), (800, 100)] if args.quick else [(8, 2000), (800, 500), (40_000, 50)]
    for rows, segments in sizes:
        data = sample_table(rows)
        conformed = pa.table({f.name: data.column(f.name) if f.name in data.column_names
                              else pa.nulls(rows, f.type) for f in GPU_SAMPLES}, schema=GPU_SAMPLES)
        root = Path(tempfile.mkdtemp(prefix="bench-spool-", dir=args.dir))
        try:
            value = spool_rate(root / "spool", data, segments)
            base = baseline_rate(root / "plain", conformed, segments)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        print(json.dumps({"bench": "spool", "metric": "rows_per_s", "value": round(value), "unit": "rows/s",
                          "baseline": round(base), "ratio": round(value / base, 3),
                          "baseline_kind": "plain pyarrow IPC stream write, no fsync, no rename",
                          "rows_per_segment": rows, "segments": segments,
                          "segments_per_s": round(value / rows, 1)}), flush=True)


if __name__ == "__main__":
    main()
