"""Spool segments -> the real chDB store: loaded once, torn ones quarantined, files removed."""

from __future__ import annotations

from pipelines.ingest import ingest_spool
from schemas.spool import write_segment
from tests.pipelines.builders import frame, span


def test_segments_are_loaded_recorded_and_deleted_torn_ones_quarantined(tmp_path, store):
    spool = tmp_path / "spool"
    spans = frame("request_spans", [span("a", 0, prefill=1, decode=1), span("a", 5, prefill=1, decode=1)]).to_arrow()
    good = write_segment(spool, "request_spans", spans, "node-a", 1_000, 1)
    torn = write_segment(spool, "request_spans", spans, "node-a", 2_000, 2)
    torn.path.write_bytes(torn.path.read_bytes()[:-20])  # cut the end-of-stream marker off
    bogus = write_segment(spool, "request_costs", spans, "node-a", 3_000, 3)  # flows' table, not the sidecar's
    report = ingest_spool(store, spool)
    assert (report.segments, report.rows, report.torn, report.rejected) == (1, 2, 1, 1)
    assert store.count("request_spans") == 2
    assert not good.path.exists()
    assert sorted(p.name for p in (spool / "torn").iterdir()) == sorted([torn.path.name, bogus.path.name])
    assert store.query_rows("SELECT segment_id, rows FROM spool_segments") == [(good.segment_id, 2)]


def test_a_segment_seen_before_is_not_inserted_twice(tmp_path, store):
    spool = tmp_path / "spool"
    spans = frame("request_spans", [span("a", 0, prefill=1, decode=1)]).to_arrow()
    seg = write_segment(spool, "request_spans", spans, "node-a", 1_000, 1)
    copy = seg.path.read_bytes()
    ingest_spool(store, spool)
    seg.path.write_bytes(copy)  # the process died after the insert, before deleting the file
    report = ingest_spool(store, spool)
    assert report.already_loaded == 1 and report.segments == 0
    assert store.count("request_spans") == 1 and not seg.path.exists()


def test_many_segments_of_a_table_load_in_one_insert_and_each_is_recorded(tmp_path, store):
    spool = tmp_path / "spool"
    segs = []
    for i in range(12):
        spans = frame("request_spans", [span(f"r{i}", i, prefill=1, decode=1)]).to_arrow()
        segs.append(write_segment(spool, "request_spans", spans, "node-a", 1_000 + i, i))
    report = ingest_spool(store, spool, batch_rows=5)
    assert (report.segments, report.rows, report.inserts) == (12, 12, 3)  # 5 + 5 + 2 rows
    assert store.count("request_spans") == 12
    recorded = {r[0] for r in store.query_rows("SELECT segment_id FROM spool_segments")}
    assert recorded == {s.segment_id for s in segs}
    assert not any(s.path.exists() for s in segs)


def test_a_rebuilt_batch_after_a_crash_is_not_inserted_twice(tmp_path, store):
    spool = tmp_path / "spool"
    copies = []
    for i in range(3):
        spans = frame("request_spans", [span(f"r{i}", i, prefill=1, decode=1)]).to_arrow()
        seg = write_segment(spool, "request_spans", spans, "node-a", 1_000 + i, i)
        copies.append((seg.path, seg.path.read_bytes()))
    ingest_spool(store, spool)
    store.command("TRUNCATE TABLE spool_segments")  # died after the data insert, before recording
    for path, data in copies:
        path.write_bytes(data)
    report = ingest_spool(store, spool)
    assert report.segments == 3
    assert store.count("request_spans") == 3  # the same batch, the same token: deduplicated


def test_each_segment_records_the_time_range_of_its_data(tmp_path, store):
    import datetime as dt

    import pyarrow as pa

    from schemas.tables import TS_US

    spool = tmp_path / "spool"
    spans = frame("request_spans", [span("a", 10, prefill=1, decode=2), span("a", 30, prefill=1, decode=1)]).to_arrow()
    starts = pa.array([dt.datetime(2026, 11, 28, 10, 0, 0, 123_456, tzinfo=dt.UTC),
                       dt.datetime(2026, 11, 28, 10, 0, 30, tzinfo=dt.UTC)], TS_US)
    ends = pa.array([dt.datetime(2026, 11, 28, 10, 0, 3, tzinfo=dt.UTC),
                     dt.datetime(2026, 11, 28, 10, 0, 32, 654_321, tzinfo=dt.UTC)], TS_US)
    spans = spans.set_column(spans.column_names.index("start_ts"), "start_ts", starts)
    spans = spans.set_column(spans.column_names.index("end_ts"), "end_ts", ends)
    seg = write_segment(spool, "request_spans", spans, "node-a", 1_000, 1)
    ingest_spool(store, spool)
    row = store.query_arrow("SELECT data_start, data_end FROM spool_segments WHERE segment_id = {s:String}",
                            {"s": seg.segment_id}).to_pylist()[0]
    # widened to whole milliseconds, never narrower than the data
    assert row["data_start"] == dt.datetime(2026, 11, 28, 10, 0, 0, 123_000, tzinfo=dt.UTC)
    assert row["data_end"] == dt.datetime(2026, 11, 28, 10, 0, 32, 655_000, tzinfo=dt.UTC)
