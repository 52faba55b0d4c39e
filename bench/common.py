"""Helpers shared by the benchmarks: JSON-line output, peak RSS, argument parsing."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections.abc import Callable
from typing import Any


def emit(bench: str, metric: str, value: float, unit: str, **extra: Any) -> dict:
    row = {"bench": bench, "metric": metric, "value": round(value, 6) if isinstance(value, float) else value, "unit": unit}
    row.update(extra)
    print(json.dumps(row), flush=True)
    return row


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="small sizes: seconds, for smoke runs")
    return p


def best_of(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
