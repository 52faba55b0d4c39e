"""Watches one engine's expert-dump folder and turns new dumps into ``expert_loads`` rows.

Files named ``expert_distribution_recorder_<ts>[_<rank>].(json|pt)`` are read once they have
been unchanged for ``settle_s`` (a dump still being written is left for the next poll). The
window of a dump ends at its timestamp and starts at the previous dump's (or ``window_s``
before the first one), computed from the sorted folder listing so a restart rebuilds the same
windows and the store's deduplication absorbs re-sent rows. ``per_pass`` files of several
ranks (``..._<ts>_<rank>.pt``, ts within ``rank_merge_s``) form one window and are summed.

A malformed dump is rejected with a reason (``expert_dumps_rejected{reason}``), logged once
and never retried; a consumer's TransientError leaves the files pending for the next poll
(with back-off); a PermanentError drops that window and counts it.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from collectors.component import Consumer, PermanentError, TransientError
from collectors.experts.dumps import (
    DUMP_NAME_RE,
    DumpRejected,
    ParsedDump,
    TorchMissing,
    dump_timestamp_ms,
    load_dump,
)
from collectors.experts.rows import expert_load_rows
from collectors.polling import PollingComponent
from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _DumpFile:
    path: Path
    ts_ms: int
    rank: int | None  # from the name; per_pass files carry it


@dataclass(frozen=True)
class _DumpGroup:
    files: tuple[_DumpFile, ...]
    window_start_ms: int
    window_end_ms: int


def group_dumps(files: list[_DumpFile], window_ms: int, rank_merge_ms: int) -> list[_DumpGroup]:
    """Group sorted dump files into windows: rank-suffixed files close in time share one."""
    groups: list[list[_DumpFile]] = []
    for f in sorted(files, key=lambda d: (d.ts_ms, d.path.name)):
        last = groups[-1] if groups else None
        if (
            last is not None
            and f.rank is not None
            and last[0].rank is not None
            and f.ts_ms - last[0].ts_ms <= rank_merge_ms
            and f.rank not in {x.rank for x in last}
        ):
            last.append(f)
        else:
            groups.append([f])
    out: list[_DumpGroup] = []
    prev_end: int | None = None
    for g in groups:
        end = max(x.ts_ms for x in g)
        start = prev_end if prev_end is not None and prev_end < end else end - window_ms
        out.append(_DumpGroup(tuple(g), start, end))
        prev_end = end
    return out


class ExpertDumpWatcher(PollingComponent):
    """One component per dump folder (one engine instance)."""

    def __init__(
        self,
        directory: Path,
        *,
        engine_instance: str,
        model: str,
        cluster: str,
        consumer: Consumer,
        telemetry: Telemetry,
        interval_s: float = 5.0,
        window_s: float = 3600.0,
        settle_s: float = 2.0,
        rank_merge_s: float = 10.0,
        read_existing: bool = True,
        wall_clock=time.time,
    ) -> None:
        super().__init__(telemetry, interval_s)
        self.name = f"expert-dumps[{engine_instance}]"
        self.directory = Path(directory)
        self.engine_instance = engine_instance
        self.model = model
        self.cluster = cluster
        self.consumer = consumer
        self.window_ms = int(window_s * 1000)
        self.settle_s = settle_s
        self.rank_merge_ms = int(rank_merge_s * 1000)
        self._wall_clock = wall_clock
        self._done: set[str] = set()
        self._torch_warned = False
        self._missing_warned = False
        if not read_existing:
            self._done.update(f.path.name for f in self._list())

    # ------------------------------------------------------------------ polling

    def _list(self) -> list[_DumpFile]:
        try:
            entries = list(os.scandir(self.directory))
        except FileNotFoundError:
            if not self._missing_warned:
                log.warning("%s: dump folder %s does not exist yet; watching for it", self.name, self.directory)
                self._missing_warned = True
            return []
        out = []
        for entry in entries:
            m = DUMP_NAME_RE.match(entry.name)
            if m is None or not entry.is_file():
                continue
            ts = dump_timestamp_ms(Path(entry.name))
            assert ts is not None
            rank = int(m.group("rank")) if m.group("rank") is not None else None
            out.append(_DumpFile(Path(entry.path), ts, rank))
        return out

    def _settled(self, f: _DumpFile) -> bool:
        try:
            return self._wall_clock() - f.path.stat().st_mtime >= self.settle_s
        except FileNotFoundError:
            return False

    def poll_once(self) -> int:
        """Read every new, settled dump; returns the number of rows handed to the consumer."""
        sent = 0
        files = self._list()
        self._done.intersection_update(f.path.name for f in files)  # forget files the engine deleted
        for group in group_dumps(files, self.window_ms, self.rank_merge_ms):
            new = [f for f in group.files if f.path.name not in self._done]
            if not new:
                continue
            if len(new) < len(group.files):  # a rank file that arrived after its window was sent
                for f in new:
                    self._reject(f, DumpRejected("late_rank", f"{f.path.name} arrived after its window was collected"))
                continue
            if not all(self._settled(f) for f in new):
                continue  # still being written: next poll
            try:
                sent += self._send_group(group)
            except TransientError as exc:
                self.telemetry.add("expert_dumps_deferred", reason="consumer_unavailable")
                log.warning("%s: spool refused rows (%s); the dump stays pending and is retried", self.name, exc)
                self.note_transient()
                return sent
        self.note_success()
        return sent

    def _send_group(self, group: _DumpGroup) -> int:
        parsed: list[ParsedDump] = []
        for f in group.files:
            try:
                parsed.append(load_dump(f.path))
            except TorchMissing as exc:
                if not self._torch_warned:
                    log.warning("%s: %s; .pt dumps are skipped until torch is installed", self.name, exc)
                    self._torch_warned = True
                self.telemetry.add("expert_dumps_skipped", reason="torch_missing")
                self._done.add(f.path.name)
            except DumpRejected as exc:
                self._reject(f, exc)
        if not parsed:
            return 0
        counts, source = self._combine(parsed, group)
        if counts is None:
            return 0
        rows = expert_load_rows(
            counts,
            window_start_ms=group.window_start_ms,
            window_end_ms=group.window_end_ms,
            cluster=self.cluster,
            engine_instance=self.engine_instance,
            model=self.model,
            source=source,
        )
        try:
            self.consumer.consume("expert_loads", rows)
        except PermanentError as exc:
            self.telemetry.add("expert_rows_dropped", rows.num_rows, reason="permanent_consumer_error")
            log.warning("%s: rows of %s refused permanently (%s); dropped", self.name, group.files[0].path.name, exc)
        else:
            self.telemetry.add("expert_dumps_collected", len(parsed), source=source)
            self.telemetry.add("expert_load_rows", rows.num_rows, source=source)
        self._done.update(f.path.name for f in group.files)
        return rows.num_rows

    def _combine(self, parsed: list[ParsedDump], group: _DumpGroup) -> tuple[np.ndarray | None, str]:
        kinds = {p.kind for p in parsed}
        if len(kinds) > 1 or len({p.logical_count.shape for p in parsed}) > 1:
            for f in group.files:
                self._reject(f, DumpRejected("inconsistent_ranks", "rank files of one window differ in kind or shape"))
            return None, ""
        total = parsed[0].logical_count.copy()
        for p in parsed[1:]:
            total += p.logical_count
        return total, parsed[0].source

    def _reject(self, f: _DumpFile, exc: DumpRejected) -> None:
        self._done.add(f.path.name)
        self.telemetry.add("expert_dumps_rejected", reason=exc.reason)
        log.warning("%s: rejected %s: %s; collection goes on", self.name, f.path.name, exc)
