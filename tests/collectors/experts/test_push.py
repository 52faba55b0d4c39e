"""`POST /v1/expert-loads` handler: JSON and Arrow bodies, partial success, bad bodies."""

from __future__ import annotations

import calendar
import io
import json

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from collectors.component import MemoryConsumer, PermanentError, TransientError
from collectors.experts.push import handle_push
from collectors.telemetry import Telemetry

ARROW = "application/vnd.apache.arrow.stream"


def _row(**kw):
    row = {"window_start": "2026-11-29T02:00:00Z", "window_end": "2026-11-29T03:00:00Z",
           "engine_instance": "trt-mixtral-0", "model": "mixtral-8x7b", "layer": 3, "expert": 5, "tokens": 1200}
    row.update(kw)
    return row


def _arrow_body(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def test_json_rows_are_accepted():
    consumer, tel = MemoryConsumer(), Telemetry()
    body = json.dumps({"rows": [_row(), _row(expert=6, tokens=0, window_start=1_795_000_000_000,
                                             window_end=1_795_003_600_000, cluster="east")]}).encode()
    status, answer = handle_push(body, "application/json; charset=utf-8", consumer, tel)
    assert status == 200 and answer == {"accepted": 2, "rejected": 0, "errors": []}
    rows = consumer.table("expert_loads")
    assert rows["source"].to_pylist() == ["push", "push"]
    assert rows["cluster"].to_pylist() == ["default", "east"]
    assert rows["expert"].to_pylist() == [5, 6] and rows["tokens"].to_pylist() == [1200, 0]
    assert rows["window_start"].cast(pa.int64()).to_pylist() == [calendar.timegm((2026, 11, 29, 2, 0, 0)) * 1000, 1_795_000_000_000]
    assert tel.value("expert_push_rows_accepted") == 2


def test_json_partial_success_names_the_bad_rows():
    consumer, tel = MemoryConsumer(), Telemetry()
    rows = [_row(), _row(tokens=-1), _row(layer=70000), _row(engine_instance=""), _row(window_end="yesterday"),
            _row(window_end="2026-11-29T01:00:00Z"), _row(expert=1.5), "not an object", _row(model=7)]
    status, answer = handle_push(json.dumps({"rows": rows}).encode(), "application/json", consumer, tel)
    assert status == 200
    assert answer["accepted"] == 1 and answer["rejected"] == 8
    text = " | ".join(answer["errors"])
    for fragment in ("row 1: tokens", "row 2: layer", "row 3: engine_instance", "row 4: window_end missing",
                     "row 5: window_end must be after", "row 6: expert", "row 8: model"):
        assert fragment in text
    assert consumer.rows("expert_loads") == 1
    assert tel.value("expert_push_rows_rejected") == 8


def test_arrow_stream_body_with_timestamps_and_epoch_ms():
    consumer, tel = MemoryConsumer(), Telemetry()
    table = pa.table({
        "window_start": pa.array([1_795_000_000_000_000, 1_795_000_000_000_000], type=pa.timestamp("us", tz="UTC")),
        "window_end": pa.array([1_795_003_600_000, 1_795_003_600_000], type=pa.int64()),
        "engine_instance": ["x-0", "x-0"],
        "model": ["m", "m"],
        "layer": pa.array([0, 1], type=pa.int32()),
        "expert": pa.array([7, 8], type=pa.uint32()),
        "tokens": pa.array([10, 2**40], type=pa.uint64()),
    })
    status, answer = handle_push(_arrow_body(table), ARROW, consumer, tel, cluster="c9")
    assert (status, answer["accepted"], answer["rejected"]) == (200, 2, 0)
    rows = consumer.table("expert_loads")
    assert rows["tokens"].to_pylist() == [10, 2**40]
    assert rows["window_start"].cast(pa.int64()).to_pylist() == [1_795_000_000_000] * 2
    assert rows["cluster"].to_pylist() == ["c9", "c9"]


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"{not json", "application/json", 400),
        (b'{"row": []}', "application/json", 400),
        (b'{"rows": [{"tokens": 5}]}', "application/json", 400),
        (b"\x00\x01garbage", ARROW, 400),
        (b'{"rows": []}', "text/plain", 415),
    ],
)
def test_bad_bodies(body, ctype, status):
    consumer, tel = MemoryConsumer(), Telemetry()
    got, answer = handle_push(body, ctype, consumer, tel)
    assert got == status and answer.get("error") or answer.get("errors")
    assert consumer.rows("expert_loads") == 0
    assert tel.value("expert_push_rejected") + tel.value("expert_push_rows_rejected") >= 1


def test_arrow_body_missing_columns_or_float_counts():
    consumer, tel = MemoryConsumer(), Telemetry()
    status, answer = handle_push(_arrow_body(pa.table({"window_start": [1], "tokens": [1]})), ARROW, consumer, tel)
    assert status == 400 and "window_end" in answer["error"]
    float_tokens = pa.table({"window_start": [1], "window_end": [2], "engine_instance": ["e"], "layer": [0],
                             "expert": [0], "tokens": [1.5]})
    status, answer = handle_push(_arrow_body(float_tokens), ARROW, consumer, tel)
    assert status == 400 and "tokens" in answer["error"]


def test_too_many_rows_and_consumer_errors():
    body = json.dumps({"rows": [_row(expert=i) for i in range(5)]}).encode()
    status, _ = handle_push(body, "application/json", MemoryConsumer(), Telemetry(), max_rows=4)
    assert status == 413

    class Down(MemoryConsumer):
        def __init__(self, exc):
            super().__init__()
            self.exc = exc

        def consume(self, table, data):
            raise self.exc

    status, answer = handle_push(body, "application/json", Down(TransientError("spool full")), Telemetry())
    assert status == 503 and answer["accepted"] == 0 and "retry" in answer["error"]
    status, answer = handle_push(body, "application/json", Down(PermanentError("bad")), Telemetry())
    assert status == 400 and answer["accepted"] == 0
