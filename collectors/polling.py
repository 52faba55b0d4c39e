"""A component that runs ``poll_once()`` on its own thread every ``interval_s``.

Shared by the DCGM scraper, the expert dump watcher and the EPLB log tailer: idempotent ``start`` /
``shutdown(timeout_s)``, a stop event that interrupts both the interval wait and the jittered
back-off after a transient consumer error, and a ``poll_once`` that tests call directly.
A poll that raises is counted (``poll_errors{component=<name>}``) and the loop goes on.
"""

from __future__ import annotations

import logging
import random
import threading

from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)


class PollingComponent:
    name = "poller"

    def __init__(self, telemetry: Telemetry, interval_s: float, max_backoff_s: float = 60.0) -> None:
        self.telemetry = telemetry
        self.interval_s = interval_s
        self.max_backoff_s = max_backoff_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._failures = 0  # consecutive transient failures: drives the back-off

    def poll_once(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_shutdown(self) -> None:
        """Release files; called once after the thread stopped."""

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"fleetledger-{self.name}", daemon=True)
            self._thread.start()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is None:
                return
            self._stop.set()
        thread.join(timeout=max(0.0, timeout_s))
        if thread.is_alive():
            log.warning("%s did not stop within %.1fs; it exits after its current poll", self.name, timeout_s)
            return
        try:
            self.on_shutdown()
        except Exception:  # shutdown never raises
            log.debug("%s: error while releasing resources", self.name, exc_info=True)

    def note_transient(self) -> None:
        """Record a transient failure; the next wait is an exponential, jittered back-off."""
        self._failures += 1

    def note_success(self) -> None:
        self._failures = 0

    def next_wait_s(self) -> float:
        if self._failures == 0:
            return self.interval_s
        base = min(self.max_backoff_s, self.interval_s * (2 ** min(self._failures, 16)))
        return base * random.uniform(0.5, 1.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # one bad poll never kills the collector
                self.telemetry.add("poll_errors", component=self.name)
                log.warning("%s: poll failed (%s: %s); retrying next interval", self.name, type(exc).__name__, exc)
            self._stop.wait(self.next_wait_s())
