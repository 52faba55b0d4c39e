"""Spool segments: atomic names, torn writes detected wherever the cut falls."""

from __future__ import annotations

import pyarrow as pa
import pytest

from schemas.spool import TornSegmentError, list_leftover_tmp, list_segments, read_segment, write_segment


def _table(n: int) -> pa.Table:
    return pa.table({"a": pa.array(range(n), pa.int64()), "b": pa.array([f"s{i}" for i in range(n)])})


def test_write_list_read(tmp_path):
    first = write_segment(tmp_path, "gpu_samples", _table(10), "node a/1", created_ns=2, seq=1)
    second = write_segment(tmp_path, "request_spans", _table(3), "node-b", created_ns=1, seq=7)
    listed = list_segments(tmp_path)
    assert [s.segment_id for s in listed] == [second.segment_id, first.segment_id]  # oldest first
    assert listed[1].node == "node_a_1" and listed[1].table == "gpu_samples"
    assert read_segment(first.path).equals(_table(10))


@pytest.mark.parametrize("keep", [0, 10, 0.5, -1, -8])
def test_torn_segment_is_detected(tmp_path, keep):
    seg = write_segment(tmp_path, "gpu_samples", _table(1000), "n", created_ns=1, seq=1)
    data = seg.path.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else (keep if keep >= 0 else len(data) + keep)
    seg.path.write_bytes(data[:cut])
    with pytest.raises(TornSegmentError, match="skipped"):
        read_segment(seg.path)


def test_leftover_tmp_files_are_not_segments(tmp_path):
    write_segment(tmp_path, "gpu_samples", _table(1), "n", created_ns=1, seq=1)
    (tmp_path / "00000000000000000002-n-000002.gpu_samples.arrows.tmp").write_bytes(b"partial")
    assert len(list_segments(tmp_path)) == 1
    assert len(list_leftover_tmp(tmp_path)) == 1
