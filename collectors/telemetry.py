"""The sidecar's own telemetry: OpenTelemetry counters and gauges, with a local tally.

Components count through ``Telemetry.add(name, value, **attrs)``; the collect command installs
a MeterProvider with a Prometheus reader so the same counts are served on ``/metrics``. The
local tally (``Telemetry.value``) lets tests and health checks read counts without scraping.
Bad input is counted here, not logged per item.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

from opentelemetry import metrics


class Telemetry:
    def __init__(self, meter: metrics.Meter | None = None, prefix: str = "fleetledger") -> None:
        self._meter = meter or metrics.get_meter("fleetledger.collectors")
        self._prefix = prefix
        self._counters: dict[str, metrics.Counter] = {}
        self._tally: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._lock = threading.Lock()

    def add(self, name: str, value: float = 1, **attrs: str) -> None:
        """Add to counter ``name`` (e.g. 'otlp_spans_rejected', attrs reason='negative_tokens')."""
        key = (name, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        with self._lock:
            counter = self._counters.get(name)
            if counter is None:
                counter = self._meter.create_counter(f"{self._prefix}_{name}")
                self._counters[name] = counter
            self._tally[key] += value
        counter.add(value, attributes=dict(key[1]))

    def gauge(self, name: str, callback: Callable[[], float], description: str = "") -> None:
        """Register an observable gauge read at collection time (spool bytes, shipping lag)."""

        def observe(_options: metrics.CallbackOptions):
            yield metrics.Observation(float(callback()))

        self._meter.create_observable_gauge(f"{self._prefix}_{name}", callbacks=[observe], description=description)

    def value(self, name: str, **attrs: str) -> float:
        """The local tally of ``name``; with attrs, only the matching series; else their sum."""
        with self._lock:
            if attrs:
                return self._tally.get((name, tuple(sorted((k, str(v)) for k, v in attrs.items()))), 0.0)
            return sum(v for (n, _), v in self._tally.items() if n == name)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return {n + ("{" + ",".join(f"{k}={v}" for k, v in a) + "}" if a else ""): v for (n, a), v in self._tally.items()}
