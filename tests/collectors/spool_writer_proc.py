"""A real writer process for the kill -9 test: spools segments in a loop and prints
``ACK <segment_id> <first_row> <rows>`` after each consume() returned (= acknowledged)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from collectors.config import SpoolConfig
from collectors.spool import Spool
from collectors.telemetry import Telemetry
from tests.collectors.gpu_rows import gpu_sample_rows


def main() -> None:
    directory, rows_per_segment = Path(sys.argv[1]), int(sys.argv[2])
    spool = Spool(SpoolConfig(directory=directory, max_bytes=1 << 40), Telemetry(), node="node-a")
    spool.start()
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    template = gpu_sample_rows(0, rows_per_segment)
    while True:
        ids = pa.array(np.arange(first, first + rows_per_segment, dtype=np.uint64))
        spool.consume("gpu_samples", template.set_column(10, "energy_mj", ids))
        newest = spool.last_segment
        print(f"ACK {newest.segment_id} {first} {rows_per_segment}", flush=True)
        first += rows_per_segment


if __name__ == "__main__":
    main()
