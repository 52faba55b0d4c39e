"""gpu_samples rows for spool/shipper tests: row ``i`` carries ``energy_mj = i`` so rows can be counted
one by one after a crash or an outage."""

from __future__ import annotations

import pyarrow as pa

from schemas.tables import GPU_SAMPLES

T0_MS = 1_795_000_000_000


def gpu_sample_rows(start: int, n: int, node: str = "node-a") -> pa.Table:
    ids = list(range(start, start + n))
    return pa.table({
        "ts": pa.array([T0_MS + i * 10 for i in ids], GPU_SAMPLES.field("ts").type),
        "cluster": ["c1"] * n,
        "node": [node] * n,
        "gpu_uuid": [f"GPU-{i % 8:08d}-0000-0000-0000-000000000000" for i in ids],
        "gpu_index": pa.array([i % 8 for i in ids], pa.uint16()),
        "gpu_model": ["NVIDIA H100 80GB HBM3"] * n,
        "mig_profile": [""] * n,
        "mig_instance": [""] * n,
        "sm_util_pct": pa.array([float(i % 100) for i in ids], pa.float32()),
        "power_w": [300.0 + i % 7 for i in ids],
        "energy_mj": pa.array(ids, pa.uint64()),
        "source": ["nvml"] * n,
    })
