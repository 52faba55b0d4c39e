"""The sidecar's durable, bounded spool: a ``Consumer`` writing one Arrow IPC segment per call.

``consume(table, data)`` conforms the rows to the contract schema and writes them as one
segment with ``schemas.spool.write_segment`` (temp file, fsync, rename, fsync of the folder):
when it returns, the rows survive ``kill -9`` and power loss. Errors say whether a retry can
help: bad rows or a table the sidecar may not write raise ``PermanentError``; a disk error
(full, read-only) raises ``TransientError``.

The spool is bounded in bytes (``spool.max_bytes``): past the bound the oldest segments are
deleted first and counted (``spool_dropped_segments``, ``spool_dropped_rows``) — a long store
outage loses the oldest telemetry, never the process. The newest segment is never dropped.

At ``start()`` the folder is recovered: ``.tmp`` leftovers of a writer that died before its
rename (never acknowledged) are deleted and counted (``spool_tmp_leftovers``); every complete
segment is read once, and a torn or corrupt one is moved to ``<spool>/torn/`` and counted
(``spool_torn_segments``), so readers never see it again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from collectors.component import PermanentError, TransientError
from collectors.config import SpoolConfig
from collectors.telemetry import Telemetry
from schemas.spool import (
    SegmentInfo,
    TornSegmentError,
    list_leftover_tmp,
    list_segments,
    read_segment,
    write_segment,
)
from schemas.tables import SPOOLABLE_TABLES, conform, schema_for

log = logging.getLogger(__name__)

TORN_DIR = "torn"


def quarantine(path: Path, folder: str) -> Path | None:
    """Move a segment into ``<spool>/<folder>/`` (torn, rejected); None if it vanished."""
    target_dir = path.parent / folder
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    return target


class Spool:
    """Bounded Arrow IPC spool (Consumer + Component)."""

    name = "spool"

    def __init__(
        self,
        config: SpoolConfig,
        telemetry: Telemetry,
        node: str,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.directory = Path(config.directory)
        self.telemetry = telemetry
        self.node = node
        self.clock_ns = clock_ns
        self._lock = threading.Lock()
        self._seq = 0
        self._last_ns = 0
        self._index: dict[Path, tuple[int, int]] = {}  # path -> (bytes, rows), oldest first
        self._index_bytes = 0  # sum of the sizes in _index
        self._started = False
        self.recovered_rows = 0
        self.last_segment: SegmentInfo | None = None  # the newest segment this process wrote

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Recover the folder (idempotent): drop .tmp leftovers, quarantine torn segments."""
        with self._lock:
            if self._started:
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            for tmp in list_leftover_tmp(self.directory):
                tmp.unlink(missing_ok=True)
                self.telemetry.add("spool_tmp_leftovers", component="spool")
                log.warning("spool: removed %s, a segment whose writer died before acknowledging it", tmp.name)
            for seg in list_segments(self.directory):
                try:
                    rows = read_segment(seg.path).num_rows
                except TornSegmentError as exc:
                    quarantine(seg.path, TORN_DIR)
                    self.telemetry.add("spool_torn_segments", component="spool")
                    log.warning("spool: %s; moved to %s/", exc, TORN_DIR)
                    continue
                self._index[seg.path] = (seg.size_bytes, rows)
                self._index_bytes += seg.size_bytes
                self.recovered_rows += rows
            self._started = True

    def shutdown(self, timeout_s: float = 5.0) -> None:
        """Nothing is buffered: every acknowledged segment is already on disk."""

    # ------------------------------------------------------------------ Consumer

    def consume(self, table: str, data: pa.Table) -> None:
        if table not in SPOOLABLE_TABLES:
            self.telemetry.add("spool_rejected_rows", data.num_rows, component="spool", reason="table")
            raise PermanentError(f"table {table!r} is not written by sidecars; spoolable: {', '.join(sorted(SPOOLABLE_TABLES))}")
        try:
            # rows already in the exact contract schema (the receivers build them so) need no cast
            rows = data if data.schema.equals(schema_for(table), check_metadata=True) else conform(table, data)
        except (ValueError, KeyError) as exc:
            self.telemetry.add("spool_rejected_rows", data.num_rows, component="spool", reason="schema")
            raise PermanentError(f"rows for {table} do not fit the contract: {exc}") from exc
        if rows.num_rows == 0:
            return
        if not self._started:
            self.start()
        with self._lock:
            created = max(self.clock_ns(), self._last_ns + 1)
            self._last_ns = created
            self._seq += 1
            try:
                info = write_segment(self.directory, table, rows, self.node, created, self._seq)
            except OSError as exc:
                self.telemetry.add("errors", component="spool", kind=type(exc).__name__)
                raise TransientError(f"spool write to {self.directory} failed ({exc}); the rows were not accepted") from exc
            self._index[info.path] = (info.size_bytes, rows.num_rows)
            self._index_bytes += info.size_bytes
            self.last_segment = info
            self.telemetry.add("spool_rows", rows.num_rows, component="spool", table=table)
            self.telemetry.add("spool_segments_written", component="spool")
            self._enforce_bound(keep=info.path)

    def _enforce_bound(self, keep: Path) -> None:
        if self._index_bytes <= self.config.max_bytes:
            return
        self._refresh_index()  # the shipper may have removed segments already
        total = self._index_bytes
        for path in list(self._index):
            if total <= self.config.max_bytes or path == keep:
                break
            size, rows = self._index.pop(path)
            try:
                path.unlink()
            except FileNotFoundError:
                total -= size
                continue
            total -= size
            self.telemetry.add("spool_dropped_segments", component="spool")
            self.telemetry.add("spool_dropped_rows", rows, component="spool")
            log.warning("spool over %d bytes: dropped the oldest segment %s (%d rows)", self.config.max_bytes, path.name, rows)
        self._index_bytes = total

    def _refresh_index(self) -> None:
        present = {seg.path: seg for seg in list_segments(self.directory)}
        fresh: dict[Path, tuple[int, int]] = {}
        for path, seg in present.items():
            fresh[path] = self._index.get(path, (seg.size_bytes, 0))
        self._index = fresh
        self._index_bytes = sum(size for size, _ in fresh.values())

    # ------------------------------------------------------------------ figures

    def segments(self) -> list[SegmentInfo]:
        return list_segments(self.directory)

    def bytes_on_disk(self) -> int:
        return sum(s.size_bytes for s in list_segments(self.directory))

    def oldest_age_s(self) -> float:
        segs = list_segments(self.directory)
        return max(0.0, (time.time_ns() - segs[0].created_ns) / 1e9) if segs else 0.0
