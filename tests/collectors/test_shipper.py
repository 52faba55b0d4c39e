"""The shipper against the real chDB store: outages, lost acknowledgements, rejected segments,
backoff that shutdown interrupts. Every row must arrive exactly once."""

from __future__ import annotations

import random
import threading
import time

import pyarrow as pa

from collectors.config import ShipperConfig, SpoolConfig
from collectors.shipper import Shipper
from collectors.spool import Spool
from collectors.telemetry import Telemetry
from schemas.spool import list_segments, write_segment
from schemas.store import StoreQueryError, StoreUnavailableError
from tests.collectors.gpu_rows import gpu_sample_rows

FAST = ShipperConfig(poll_interval_s=0.02, backoff_initial_s=0.01, backoff_max_s=0.05)


class FlakyStore:
    """The real store behind a switch: unavailable for the first ``down_calls`` inserts; with
    ``lose_ack`` the insert happens and then the answer is lost (a network cut after the commit)."""

    def __init__(self, store, down_calls: int = 0, lose_ack_calls: int = 0) -> None:
        self.store = store
        self.down_calls = down_calls
        self.lose_ack_calls = lose_ack_calls
        self.calls = 0
        self.closed = 0

    def insert(self, table, data, *, dedup_token=None):
        self.calls += 1
        if self.down_calls > 0:
            self.down_calls -= 1
            raise StoreUnavailableError("store http://default@10.0.0.9:8123/default unavailable: connection refused")
        n = self.store.insert(table, data, dedup_token=dedup_token)
        if self.lose_ack_calls > 0:
            self.lose_ack_calls -= 1
            raise StoreUnavailableError("connection reset by peer after the insert was sent")
        return n

    def close(self):
        self.closed += 1  # the real store belongs to the test fixture


def fill_spool(directory, segments: int, rows: int) -> Spool:
    spool = Spool(SpoolConfig(directory=directory), Telemetry(), node="node-a")
    spool.start()
    for k in range(segments):
        spool.consume("gpu_samples", gpu_sample_rows(k * rows, rows))
    return spool


def stored_ids(store) -> list[int]:
    return [r[0] for r in store.query_rows("SELECT energy_mj FROM gpu_samples ORDER BY energy_mj")]


def wait_until(cond, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.02)
    return cond()


def test_outage_then_recovery_every_row_exactly_once(store, tmp_path):
    directory = tmp_path / "spool"
    fill_spool(directory, segments=5, rows=100)
    flaky = FlakyStore(store, down_calls=4, lose_ack_calls=2)
    opens = []

    def open_store():
        if len(opens) < 2:  # the server is not even reachable at first
            opens.append("refused")
            raise StoreUnavailableError("ClickHouse server http://default@10.0.0.9:8123/default is unreachable")
        opens.append("ok")
        return flaky

    tel = Telemetry()
    shipper = Shipper(directory, open_store, tel, FAST, rng=random.Random(1))
    shipper.start()
    try:
        assert wait_until(lambda: not list_segments(directory))
    finally:
        shipper.shutdown(5)
    assert stored_ids(store) == list(range(500))  # count() without FINAL: no duplicate rows
    assert store.count("gpu_samples") == 500
    assert store.count("spool_segments", final=True) == 5
    # each ledger row carries its data's time range, so late samples re-attribute their window
    covered = store.query_rows(
        "SELECT (SELECT min(data_start) FROM spool_segments FINAL) = (SELECT min(ts) FROM gpu_samples), "
        "(SELECT max(data_end) FROM spool_segments FINAL) = (SELECT max(ts) FROM gpu_samples), "
        "(SELECT countIf(data_start IS NULL) FROM spool_segments FINAL)")
    assert covered == [(1, 1, 0)]
    assert tel.value("shipped_rows") == 500
    assert tel.value("errors", component="shipper", kind="StoreUnavailableError") == 2 + 4 + 2
    assert flaky.closed == 1


def test_reshipping_after_a_crash_keeps_rows_once(store, tmp_path):
    directory = tmp_path / "spool"
    spool = fill_spool(directory, segments=2, rows=50)
    seg = list_segments(directory)[0]
    copy = seg.path.read_bytes()
    shipper = Shipper(directory, lambda: FlakyStore(store), Telemetry(), FAST)
    assert shipper.ship_pending()
    seg.path.write_bytes(copy)  # the sidecar died after the insert, before the delete
    assert shipper.ship_pending()
    assert store.count("gpu_samples") == 100
    assert spool.segments() == []


def test_permanent_rejection_moves_segment_aside_and_goes_on(store, tmp_path):
    directory = tmp_path / "spool"
    good = gpu_sample_rows(0, 10)
    write_segment(directory, "gpu_samples", good, "node-a", 1, 1)
    write_segment(directory, "no_such_table", pa.table({"x": [1, 2]}), "node-a", 2, 2)
    write_segment(directory, "gpu_samples", gpu_sample_rows(10, 10), "node-a", 3, 3)

    class RejectSecond(FlakyStore):
        def insert(self, table, data, *, dedup_token=None):
            if dedup_token and dedup_token.startswith("00000000000000000003") and table == "gpu_samples":
                raise StoreQueryError("Code: 53. Type mismatch in column energy_mj")
            return super().insert(table, data, dedup_token=dedup_token)

    tel = Telemetry()
    shipper = Shipper(directory, lambda: RejectSecond(store), tel, FAST)
    assert shipper.ship_pending()
    assert stored_ids(store) == list(range(10))
    rejected = sorted(p.name for p in (directory / "rejected").iterdir())
    assert len(rejected) == 2
    assert sum(".no_such_table." in n for n in rejected) == 1
    assert tel.value("shipper_rejected_segments") == 2
    assert list_segments(directory) == []


def test_torn_segment_is_quarantined_by_the_shipper(store, tmp_path):
    directory = tmp_path / "spool"
    fill_spool(directory, segments=2, rows=20)
    first = list_segments(directory)[0]
    with open(first.path, "r+b") as fh:
        fh.truncate(first.size_bytes - 20)
    tel = Telemetry()
    assert Shipper(directory, lambda: FlakyStore(store), tel, FAST).ship_pending()
    assert stored_ids(store) == list(range(20, 40))
    assert (directory / "torn" / first.path.name).exists()
    assert tel.value("spool_torn_segments") == 1


def test_backoff_grows_with_jitter_and_shutdown_interrupts_it(tmp_path):
    directory = tmp_path / "spool"
    fill_spool(directory, segments=1, rows=5)
    cfg = ShipperConfig(poll_interval_s=0.05, backoff_initial_s=1.0, backoff_max_s=600.0)

    def down():
        raise StoreUnavailableError("unreachable")

    shipper = Shipper(directory, down, Telemetry(), cfg, rng=random.Random(3))
    delays = []
    for _ in range(5):
        shipper._note_transient(StoreUnavailableError("x"))
        delays.append(shipper.next_delay())
    nominal = [1, 2, 4, 8, 16]
    assert all(n / 2 <= d <= n for d, n in zip(delays, nominal, strict=True))
    assert len({round(d / n, 6) for d, n in zip(delays, nominal, strict=True)}) > 1  # jittered

    slow = Shipper(directory, down, Telemetry(), ShipperConfig(backoff_initial_s=300, backoff_max_s=600))
    slow.start()
    assert wait_until(lambda: slow._failures >= 1, 5)
    began = time.monotonic()
    slow.shutdown(5)
    assert time.monotonic() - began < 2.0  # the 150-300 s wait was interrupted
    assert not any(t.name == "spool-shipper" and t.is_alive() for t in threading.enumerate())
    assert len(list_segments(directory)) == 1  # nothing lost while the store was down
