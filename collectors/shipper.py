"""Ships spool segments to a ClickHouse server store, oldest first, at least once, without duplicates.

Each segment is inserted with ``Store.insert(table, rows, dedup_token=segment_id)`` and recorded
in ``spool_segments``; only then is the file deleted. A crash between insert and delete ships
the segment again, and the engine's insert deduplication (same token, same block) keeps its
rows once.

Errors decide what happens next:
- transient (``StoreUnavailableError``, ``TransientError``, a connection ``OSError``): the segment
  stays, the shipper waits a jittered, doubling delay (``backoff_initial_s`` .. ``backoff_max_s``)
  and tries again; ``shutdown`` interrupts the wait at once;
- permanent (``StoreQueryError`` — the engine rejected the rows — ``PermanentError``, an unknown
  table, rows that do not fit the contract): the segment is moved to ``<spool>/rejected/`` and
  counted (``shipper_rejected_segments``), and shipping goes on with the next one;
- torn segments are moved to ``<spool>/torn/`` and counted.

The sidecar runs a shipper only when ``collect.ship_to`` names a server DSN; in embedded mode the
ingest flow loads the spool instead (one chDB directory belongs to one process).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from collectors.component import PermanentError, TransientError
from collectors.config import ShipperConfig
from collectors.spool import TORN_DIR, quarantine
from collectors.telemetry import Telemetry
from schemas.spool import SegmentInfo, TornSegmentError, data_range, list_segments, read_segment
from schemas.store import StoreQueryError, StoreUnavailableError
from schemas.tables import SPOOL_SEGMENTS, UnknownTableError

log = logging.getLogger(__name__)

REJECTED_DIR = "rejected"
_TRANSIENT = (StoreUnavailableError, TransientError, ConnectionError, TimeoutError)
_PERMANENT = (StoreQueryError, PermanentError, UnknownTableError, ValueError)


class Shipper:
    """Component: spool folder -> store, with jittered backoff that shutdown interrupts."""

    name = "shipper"

    def __init__(
        self,
        directory: Path,
        open_store: Callable[[], Any],
        telemetry: Telemetry,
        config: ShipperConfig | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.open_store = open_store
        self.telemetry = telemetry
        self.config = config or ShipperConfig()
        self._rng = rng or random.Random()
        self._store: Any = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = 0
        self._closed = False
        self.last_error: str = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is not None or self._closed:
            return
        self._thread = threading.Thread(target=self._run, name="spool-shipper", daemon=True)
        self._thread.start()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        self._close_store()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                shipped_all = self.ship_pending()
            except Exception as exc:  # never let the thread die
                log.exception("shipper pass failed")
                self._note_transient(exc)
                shipped_all = False
            if shipped_all:
                self._stop.wait(self.config.poll_interval_s)
            else:
                self._stop.wait(self.next_delay())

    # ------------------------------------------------------------------ work

    def ship_pending(self) -> bool:
        """Ship every segment now in the folder, oldest first. False after a transient failure
        (the caller backs off); True when the folder was drained or shutdown began."""
        for seg in list_segments(self.directory):
            if self._stop.is_set():
                return True
            if not self.ship_segment(seg):
                return False
        return True

    def ship_segment(self, seg: SegmentInfo) -> bool:
        """One segment: True when it is dealt with (shipped, rejected or torn), False to retry."""
        try:
            data = read_segment(seg.path)
        except TornSegmentError as exc:
            if not seg.path.exists():
                return True  # dropped by the spool's bound meanwhile
            quarantine(seg.path, TORN_DIR)
            self.telemetry.add("spool_torn_segments", component="shipper")
            log.warning("shipper: %s; moved to %s/", exc, TORN_DIR)
            return True
        try:
            store = self._ensure_store()
            store.insert(seg.table, data, dedup_token=seg.segment_id)
            store.insert("spool_segments", self._ledger_row(seg, data), dedup_token=seg.segment_id)
        except _TRANSIENT as exc:
            self._note_transient(exc)
            return False
        except _PERMANENT as exc:
            quarantine(seg.path, REJECTED_DIR)
            self.telemetry.add("shipper_rejected_segments", component="shipper", table=seg.table)
            self.telemetry.add("errors", component="shipper", kind=type(exc).__name__)
            log.error("shipper: segment %s rejected by the store (%s); moved to %s/ and skipped",
                      seg.segment_id, exc, REJECTED_DIR)
            return True
        except OSError as exc:  # network errors below the client
            self._note_transient(exc)
            return False
        seg.path.unlink(missing_ok=True)
        self._failures = 0
        self.last_error = ""
        self.telemetry.add("shipped_rows", data.num_rows, component="shipper", table=seg.table)
        self.telemetry.add("shipped_segments", component="shipper")
        return True

    def _ledger_row(self, seg: SegmentInfo, data: pa.Table) -> pa.Table:
        now = datetime.now(UTC)
        start, end = data_range(seg.table, data)
        return pa.table({
            "segment_id": [seg.segment_id], "table_name": [seg.table], "node": [seg.node],
            "rows": [data.num_rows], "ingested_at": [now], "data_start": [start], "data_end": [end],
        }, schema=SPOOL_SEGMENTS)

    def _ensure_store(self) -> Any:
        if self._store is None:
            self._store = self.open_store()
        return self._store

    def _close_store(self) -> None:
        if self._store is not None:
            try:
                self._store.close()
            except Exception:
                log.debug("closing the shipper's store failed", exc_info=True)
            self._store = None

    def _note_transient(self, exc: BaseException) -> None:
        self._failures += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        self.telemetry.add("errors", component="shipper", kind=type(exc).__name__)
        if self._failures == 1 or self._failures % 20 == 0:
            log.warning("shipper: store unavailable (%s); segments stay in the spool, retry %d in about %.1fs",
                        exc, self._failures, self._nominal_delay())

    # ------------------------------------------------------------------ backoff

    def _nominal_delay(self) -> float:
        exp = min(self._failures - 1, 30) if self._failures else 0
        return min(self.config.backoff_max_s, self.config.backoff_initial_s * (2 ** exp))

    def next_delay(self) -> float:
        """Jittered exponential backoff: uniform in [d/2, d] with d doubling per failure."""
        d = self._nominal_delay()
        return d * (0.5 + 0.5 * self._rng.random())

    def lag_s(self) -> float:
        """Age of the oldest segment not yet shipped (0 when the spool is empty)."""
        segs = list_segments(self.directory)
        return max(0.0, (time.time_ns() - segs[0].created_ns) / 1e9) if segs else 0.0
