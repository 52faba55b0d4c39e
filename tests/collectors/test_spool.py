"""The bounded spool: durable segments, oldest-first drop, recovery after kill -9 of a real writer."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from collectors.component import PermanentError, TransientError
from collectors.config import SpoolConfig
from collectors.spool import Spool
from collectors.telemetry import Telemetry
from schemas.spool import list_leftover_tmp, list_segments, read_segment
from schemas.tables import GPU_SAMPLES
from tests.collectors.gpu_rows import gpu_sample_rows

ROOT = Path(__file__).resolve().parents[2]


def make_spool(directory: Path, max_bytes: int = 1 << 30) -> tuple[Spool, Telemetry]:
    tel = Telemetry()
    spool = Spool(SpoolConfig(directory=directory, max_bytes=max_bytes), tel, node="node-a")
    spool.start()
    return spool, tel


def spooled_energy_ids(directory: Path) -> list[int]:
    ids: list[int] = []
    for seg in list_segments(directory):
        ids.extend(read_segment(seg.path).column("energy_mj").to_pylist())
    return ids


def test_consume_writes_one_conformed_segment(tmp_path):
    spool, tel = make_spool(tmp_path / "spool")
    data = gpu_sample_rows(0, 10).select(["energy_mj", "ts", "cluster", "node", "gpu_uuid", "gpu_index",
                                           "gpu_model", "mig_profile", "mig_instance", "source"])
    spool.consume("gpu_samples", data)
    (seg,) = list_segments(tmp_path / "spool")
    assert seg.table == "gpu_samples" and seg.node == "node-a"
    back = read_segment(seg.path)
    assert back.schema == GPU_SAMPLES  # column order and types of the contract, missing nullable -> null
    assert back.column("energy_mj").to_pylist() == list(range(10))
    assert back.column("power_w").null_count == 10
    assert tel.value("spool_rows", component="spool", table="gpu_samples") == 10


def test_bad_input_is_permanent_and_counted(tmp_path):
    spool, tel = make_spool(tmp_path / "spool")
    with pytest.raises(PermanentError, match="not written by sidecars"):
        spool.consume("request_costs", pa.table({"x": [1]}))
    with pytest.raises(PermanentError, match="required column 'gpu_uuid'"):
        spool.consume("gpu_samples", gpu_sample_rows(0, 3).drop_columns(["gpu_uuid"]))
    assert tel.value("spool_rejected_rows") == 4
    assert list_segments(tmp_path / "spool") == []


def test_disk_error_is_transient(tmp_path):
    spool, _ = make_spool(tmp_path / "spool")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    spool.directory = blocker / "sub"  # a path below a regular file cannot be created
    with pytest.raises(TransientError, match="rows were not accepted"):
        spool.consume("gpu_samples", gpu_sample_rows(0, 3))


def test_bound_drops_oldest_first_and_counts(tmp_path):
    directory = tmp_path / "spool"
    one = make_spool(directory)[0]
    one.consume("gpu_samples", gpu_sample_rows(0, 200))
    seg_size = list_segments(directory)[0].size_bytes
    for seg in list_segments(directory):
        seg.path.unlink()
    spool, tel = make_spool(directory, max_bytes=int(seg_size * 3.5))
    for k in range(6):
        spool.consume("gpu_samples", gpu_sample_rows(k * 200, 200))
    ids = spooled_energy_ids(directory)
    assert ids == list(range(600, 1200))  # the 3 newest segments stay, in order
    assert tel.value("spool_dropped_segments") == 3
    assert tel.value("spool_dropped_rows") == 600
    assert spool.bytes_on_disk() <= 3.5 * seg_size


def test_recovery_quarantines_torn_and_removes_tmp(tmp_path):
    directory = tmp_path / "spool"
    spool, _ = make_spool(directory)
    for k in range(3):
        spool.consume("gpu_samples", gpu_sample_rows(k * 50, 50))
    segs = list_segments(directory)
    with open(segs[1].path, "r+b") as fh:  # a disk error truncated a complete segment
        fh.truncate(segs[1].size_bytes // 2)
    (directory / (segs[2].path.name.replace("000003", "000004") + ".tmp")).write_bytes(b"partial")
    again, tel = make_spool(directory)
    assert tel.value("spool_torn_segments") == 1
    assert tel.value("spool_tmp_leftovers") == 1
    assert (directory / "torn" / segs[1].path.name).exists()
    assert list_leftover_tmp(directory) == []
    assert spooled_energy_ids(directory) == list(range(50)) + list(range(100, 150))
    assert again.recovered_rows == 100


def test_kill_9_mid_segment_loses_nothing_acknowledged(tmp_path):
    """A real writer process is killed with SIGKILL while writing; after restart every
    acknowledged row is in the spool and the half-written segment is detected and counted."""
    rng = random.Random(7)
    directory = tmp_path / "spool"
    acked: dict[str, tuple[int, int]] = {}
    leftovers = 0
    next_first = 0
    for _attempt in range(6):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.collectors.spool_writer_proc", str(directory), "20000", str(next_first)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        seen = 0
        assert proc.stdout is not None
        for line in proc.stdout:
            _, seg_id, first, rows = line.split()
            acked[seg_id] = (int(first), int(rows))
            next_first = int(first) + int(rows)
            seen += 1
            if seen >= 3:
                break
        time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == -signal.SIGKILL, err
        for line in out.splitlines():  # acks printed before the kill landed
            _, seg_id, first, rows = line.split()
            acked[seg_id] = (int(first), int(rows))
            next_first = int(first) + int(rows)
        next_first += 20000  # the killed, unacknowledged segment's ids are never reused
        found_tmp = len(list_leftover_tmp(directory))
        spool, tel = make_spool(directory)  # restart: recovery
        assert tel.value("spool_tmp_leftovers") == found_tmp
        leftovers += found_tmp
        present = {s.segment_id for s in list_segments(directory)}
        assert set(acked) <= present
        ids = set(spooled_energy_ids(directory))
        for first, rows in acked.values():
            assert set(range(first, first + rows)) <= ids
        if leftovers:
            break
    assert leftovers >= 1, "the kill never landed inside a segment write in 6 tries"
    assert len(acked) >= 3
