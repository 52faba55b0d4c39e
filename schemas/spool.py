"""The spool format shared by the sidecar (writer) and the ingest flow (reader).

A spool is a folder of Arrow IPC *stream* files, one table per file ("segment"), named
``{created_ns:020d}-{node}-{seq:06d}.{table}.arrows``. A segment is written to a ``.tmp``
name, fsynced, then renamed, so a complete name always holds a complete file; the file ends
with the IPC end-of-stream marker, so a segment torn by a crash (or by a disk error) is
detected on read and reported as ``TornSegmentError``.

The segment id (file stem) doubles as the insert deduplication token: shipping a segment
twice leaves its rows once in the store.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc

from schemas.tables import DATA_TIME

SUFFIX = ".arrows"
TMP_SUFFIX = ".tmp"
_NAME_RE = re.compile(r"^(?P<created>\d{20})-(?P<node>[A-Za-z0-9_.\-]+)-(?P<seq>\d{6})\.(?P<table>[a-z_]+)\.arrows$")


_EOS = b"\xff\xff\xff\xff\x00\x00\x00\x00"  # Arrow IPC end-of-stream marker


class TornSegmentError(ValueError):
    """A segment that cannot be read completely; it is skipped and counted, never half-loaded."""


@dataclass(frozen=True)
class SegmentInfo:
    path: Path
    table: str
    node: str
    created_ns: int
    size_bytes: int

    @property
    def segment_id(self) -> str:
        return self.path.name.removesuffix(SUFFIX)


def segment_name(table: str, node: str, created_ns: int, seq: int) -> str:
    safe_node = re.sub(r"[^A-Za-z0-9_.\-]", "_", node) or "node"
    return f"{created_ns:020d}-{safe_node}-{seq % 1_000_000:06d}.{table}{SUFFIX}"


def write_segment(directory: Path, table: str, data: pa.Table, node: str, created_ns: int, seq: int) -> SegmentInfo:
    """Write one table as one segment atomically (tmp file, fsync, rename, fsync dir)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / segment_name(table, node, created_ns, seq)
    tmp = final.with_name(final.name + TMP_SUFFIX)
    with open(tmp, "wb") as fh:
        with ipc.new_stream(fh, data.schema) as writer:
            writer.write_table(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return SegmentInfo(final, table, node, created_ns, final.stat().st_size)


def parse_segment_path(path: Path) -> SegmentInfo | None:
    m = _NAME_RE.match(path.name)
    if not m:
        return None
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    return SegmentInfo(path, m.group("table"), m.group("node"), int(m.group("created")), size)


def list_segments(directory: Path) -> list[SegmentInfo]:
    """Complete segments, oldest first (``.tmp`` leftovers of a crash are not listed)."""
    if not directory.is_dir():
        return []
    found = [info for p in directory.iterdir() if (info := parse_segment_path(p)) is not None]
    found.sort(key=lambda s: (s.created_ns, s.path.name))
    return found


def list_leftover_tmp(directory: Path) -> list[Path]:
    """Temp files left by a writer that died before its rename: never acknowledged, safe to delete."""
    return sorted(directory.glob(f"*{SUFFIX}{TMP_SUFFIX}")) if directory.is_dir() else []


def read_segment(path: Path) -> pa.Table:
    """Read a whole segment; raise TornSegmentError if it is truncated or corrupt."""
    try:
        with open(path, "rb") as fh:
            reader = ipc.open_stream(fh)
            batches = []
            while True:
                try:
                    batches.append(reader.read_next_batch())
                except StopIteration:
                    break
            table = pa.Table.from_batches(batches, schema=reader.schema)
            # a complete stream ends with the end-of-stream marker; a truncated one stops early
            if fh.read(1):
                raise TornSegmentError(f"segment {path.name}: trailing bytes after end of stream")
            fh.seek(-len(_EOS), os.SEEK_END)
            if fh.read(len(_EOS)) != _EOS:
                raise TornSegmentError(f"segment {path.name} has no end-of-stream marker (torn write); it is skipped")
            return table
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise TornSegmentError(f"segment {path.name} is torn or corrupt ({exc}); it is skipped") from exc


def data_range(table: str, data: pa.Table) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Earliest and latest data time of a segment's rows (``DATA_TIME``), widened to whole
    milliseconds; (None, None) for tables without a data time. Recorded in ``spool_segments``
    so late data re-attributes the windows it falls in."""
    cols = DATA_TIME.get(table)
    if cols is None or data.num_rows == 0:
        return None, None
    lo, hi = pc.min(data.column(cols[0])).as_py(), pc.max(data.column(cols[1])).as_py()
    if lo is None or hi is None:
        return None, None
    lo = lo.replace(microsecond=lo.microsecond // 1000 * 1000)
    if hi.microsecond % 1000:
        hi = hi.replace(microsecond=hi.microsecond // 1000 * 1000) + dt.timedelta(milliseconds=1)
    return lo, hi
