"""Spool -> store: load every complete segment once, then delete it.

Segments (oldest first) are grouped per table into batches of up to ``batch_rows`` rows and each
batch is one insert: chDB pays a fixed cost per insert (a new part on disk), so hundreds of
small segments loaded one by one cost seconds, batched they cost one part per table.

For each batch: segments whose id ``spool_segments`` already records (a crash after the insert
but before the delete) are skipped and deleted; the rest are inserted together with a
deduplication token derived from their ids (a re-run that rebuilds the same batch is a no-op;
one that groups differently inserts rows that the ReplacingMergeTree keys collapse), recorded in
``spool_segments`` and deleted. A torn or unreadable segment is moved to ``<spool>/torn/`` and
counted, never half-loaded; so is a segment of a table the sidecar may not write, or one whose
rows do not fit the contract. A store error stops the pass (the segments stay for the next run).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from schemas import Store
from schemas.spool import (
    SegmentInfo,
    TornSegmentError,
    data_range,
    list_leftover_tmp,
    list_segments,
    read_segment,
)
from schemas.tables import SPOOLABLE_TABLES, TS_MS, conform

log = logging.getLogger(__name__)
TORN_DIR = "torn"
BATCH_ROWS = 1_000_000


@dataclass
class IngestReport:
    segments: int = 0
    rows: int = 0
    already_loaded: int = 0
    torn: int = 0
    rejected: int = 0
    inserts: int = 0
    rows_by_table: dict[str, int] = field(default_factory=dict)


def _quarantine(spool: Path, path: Path) -> None:
    target = spool / TORN_DIR
    target.mkdir(exist_ok=True)
    shutil.move(str(path), target / path.name)


def _loaded_ids(store: Store, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = store.query_rows("SELECT segment_id FROM spool_segments WHERE segment_id IN {ids:Array(String)}", {"ids": ids})
    return {r[0] for r in rows}


def ingest_spool(store: Store, spool: Path, *, max_segments: int | None = None,
                 batch_rows: int = BATCH_ROWS) -> IngestReport:
    spool = Path(spool)
    report = IngestReport()
    for tmp in list_leftover_tmp(spool):  # never acknowledged by the writer
        tmp.unlink(missing_ok=True)
    segments = list_segments(spool)
    if max_segments is not None:
        segments = segments[:max_segments]
    loaded = _loaded_ids(store, [s.segment_id for s in segments])
    pending: dict[str, list[tuple[SegmentInfo, pa.Table]]] = {}
    for seg in segments:
        if seg.table not in SPOOLABLE_TABLES:
            log.warning("segment %s names table %r that the sidecar may not write; moved to %s/",
                        seg.path.name, seg.table, TORN_DIR)
            _quarantine(spool, seg.path)
            report.rejected += 1
            continue
        if seg.segment_id in loaded:
            seg.path.unlink(missing_ok=True)
            report.already_loaded += 1
            continue
        try:
            data = conform(seg.table, read_segment(seg.path))
        except TornSegmentError as exc:
            log.warning("%s; moved to %s/", exc, TORN_DIR)
            _quarantine(spool, seg.path)
            report.torn += 1
            continue
        except ValueError as exc:  # does not fit the contract schema: permanent for this segment
            log.warning("segment %s rejected (%s); moved to %s/", seg.path.name, exc, TORN_DIR)
            _quarantine(spool, seg.path)
            report.rejected += 1
            continue
        batch = pending.setdefault(seg.table, [])
        batch.append((seg, data))
        if sum(t.num_rows for _, t in batch) >= batch_rows:
            _load_batch(store, seg.table, pending.pop(seg.table), report)
    for table, batch in pending.items():
        _load_batch(store, table, batch, report)
    return report


def _load_batch(store: Store, table: str, batch: list[tuple[SegmentInfo, pa.Table]], report: IngestReport) -> None:
    ids = [seg.segment_id for seg, _ in batch]
    token = "spool:" + hashlib.sha256("\n".join(ids).encode()).hexdigest()[:32]
    data = pa.concat_tables([t for _, t in batch])
    rows = store.insert(table, data, dedup_token=token)
    # millisecond precision, the column's: windows_due compares it with the last run's computed_at
    now = dt.datetime.now(dt.UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)
    ranges = [data_range(table, t) for _, t in batch]
    store.insert("spool_segments", pa.table({
        "segment_id": ids,
        "table_name": [table] * len(batch),
        "node": [seg.node for seg, _ in batch],
        "rows": pa.array([t.num_rows for _, t in batch], pa.uint64()),
        "ingested_at": pa.array([now] * len(batch), TS_MS),
        "data_start": pa.array([r[0] for r in ranges], TS_MS),
        "data_end": pa.array([r[1] for r in ranges], TS_MS),
    }))
    for seg, _ in batch:
        seg.path.unlink(missing_ok=True)
    report.inserts += 1
    report.segments += len(batch)
    report.rows += rows
    report.rows_by_table[table] = report.rows_by_table.get(table, 0) + rows
