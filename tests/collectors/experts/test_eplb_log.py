"""vLLM `EPLB step:` log lines: both shapes, bad lines counted, tailing through rotation/truncation."""

from __future__ import annotations

import calendar
import os
import time

import pyarrow as pa
import pytest

from collectors.component import MemoryConsumer, TransientError
from collectors.experts.eplb_log import EplbLineRejected, EplbLogTailer, parse_eplb_line
from collectors.telemetry import Telemetry

NOW = calendar.timegm((2026, 11, 29, 12, 0, 0, 0, 0, 0))
NEW = ("INFO 11-29 03:00:00 [eplb_state.py:123] EPLB step: 3000 for model deepseek-v3: avg_tokens=512.00, "
       "max_tokens=1024, balancedness=0.5000, steps until the next rearrangement: 0")
OLD = "INFO 11-29 03:05:00 [eplb_state.py:101] EPLB step: avg_tokens=300.50, max_tokens=400, balancedness=0.7512"


def _ms(*ymdhms):
    return calendar.timegm((*ymdhms, 0, 0, 0)) * 1000


def test_both_line_shapes_parse():
    new = parse_eplb_line(NEW, NOW)
    assert (new.ts_ms, new.model, new.step) == (_ms(2026, 11, 29, 3, 0, 0), "deepseek-v3", 3000)
    assert (new.avg_tokens, new.max_tokens, new.balancedness) == (512.0, 1024.0, 0.5)
    old = parse_eplb_line(OLD, NOW)
    assert (old.ts_ms, old.model, old.step) == (_ms(2026, 11, 29, 3, 5, 0), None, None)
    assert old.balancedness == pytest.approx(0.7512)
    # newer vLLM prefixes the engine process and may colour the level
    prefixed = parse_eplb_line("(EngineCore_DP0 pid=4242) \x1b[32mINFO\x1b[0m 11-29 03:00:00 [eplb_state.py:9] "
                               + NEW.split("] ", 1)[1], NOW)
    assert prefixed.model == "deepseek-v3" and prefixed.balancedness == 0.5
    assert parse_eplb_line("INFO 11-29 03:00:00 [engine.py:1] Avg prompt throughput: 10 tokens/s", NOW) is None


def test_year_is_inferred_from_the_clock():
    jan = calendar.timegm((2027, 1, 1, 0, 30, 0, 0, 0, 0))
    s = parse_eplb_line(NEW.replace("11-29 03:00:00", "12-31 23:59:59"), jan)
    assert s.ts_ms == _ms(2026, 12, 31, 23, 59, 59)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (NEW.replace("balancedness=0.5000", "balancedness=1.7"), "out_of_range"),
        (NEW.replace("avg_tokens=512.00", "avg_tokens=-3"), "out_of_range"),
        (NEW.replace("balancedness=0.5000", "balancedness=nan"), "not_finite"),
        ("INFO 11-29 03:00:00 [eplb_state.py:1] EPLB step: rearranging experts", "unparsed"),
        (NEW.replace("11-29", "02-30"), "bad_timestamp"),
    ],
)
def test_bad_eplb_lines_are_rejected(line, reason):
    with pytest.raises(EplbLineRejected) as err:
        parse_eplb_line(line, NOW)
    assert err.value.reason == reason


def _tailer(path, consumer, tel, **kw):
    return EplbLogTailer(path, engine_instance="vllm-deepseek-v3-0", model="cfg-model", cluster="c1",
                         consumer=consumer, telemetry=tel, clock=lambda: NOW, **kw)


def _balancedness(consumer):
    t = consumer.table("expert_balance_samples")
    return [] if t is None else t["balancedness"].to_pylist()


def test_tailer_follows_appends_partial_lines_rotation_and_truncation(tmp_path):
    log_path = tmp_path / "vllm.log"
    consumer, tel = MemoryConsumer(), Telemetry()
    t = _tailer(log_path, consumer, tel)
    assert t.poll_once() == 0  # no file yet
    with open(log_path, "w") as fh:
        fh.write("INFO 11-29 02:59:59 [api_server.py:1] started\n" + NEW + "\n" + OLD[:40])
        fh.flush()
        assert t.poll_once() == 1
        fh.write(OLD[40:] + "\n")
        fh.write(NEW.replace("balancedness=0.5000", "balancedness=3") + "\n")
    assert t.poll_once() == 1
    assert _balancedness(consumer) == [0.5, pytest.approx(0.7512)]
    assert tel.value("eplb_log_lines_rejected", reason="out_of_range") == 1
    rows = consumer.table("expert_balance_samples")
    assert rows["model"].to_pylist() == ["deepseek-v3", "cfg-model"]  # line's model, else the configured one
    assert set(rows["layer"].to_pylist()) == {-1}
    assert set(rows["source"].to_pylist()) == {"vllm_eplb_log"}
    assert rows["ts"].cast(pa.int64()).to_pylist() == [_ms(2026, 11, 29, 3, 0, 0), _ms(2026, 11, 29, 3, 5, 0)]

    # rotation: the old file gets a last line after the rename, then a new file appears
    os.rename(log_path, tmp_path / "vllm.log.1")
    with open(tmp_path / "vllm.log.1", "a") as fh:
        fh.write(NEW.replace("0.5000", "0.6000") + "\n")
    log_path.write_text(NEW.replace("0.5000", "0.6100") + "\n")
    assert t.poll_once() == 2
    assert _balancedness(consumer)[-2:] == [0.6, 0.61]
    assert tel.value("eplb_log_rotations") == 1

    # copytruncate-style truncation: start again from the beginning
    log_path.write_text(OLD.replace("0.7512", "0.9000") + "\n")
    assert t.poll_once() == 1
    assert _balancedness(consumer)[-1] == 0.9
    assert tel.value("eplb_log_truncations") == 1
    t.shutdown()


def test_tailer_keeps_samples_while_the_consumer_is_down(tmp_path):
    log_path = tmp_path / "vllm.log"
    log_path.write_text("\n".join([NEW, OLD, NEW.replace("0.5000", "0.4")]) + "\n")

    class Down(MemoryConsumer):
        down = True

        def consume(self, table, data):
            if self.down:
                raise TransientError("store outage")
            super().consume(table, data)

    consumer, tel = Down(), Telemetry()
    t = _tailer(log_path, consumer, tel, max_pending_rows=2)
    assert t.poll_once() == 0
    assert tel.value("eplb_samples_dropped", reason="pending_full") == 1  # oldest dropped, counted
    consumer.down = False
    assert t.poll_once() == 2
    assert _balancedness(consumer) == [pytest.approx(0.7512), 0.4]


def test_tailer_thread_on_a_file_being_written(tmp_path):
    log_path = tmp_path / "vllm.log"
    log_path.write_text(NEW + "\n")
    consumer, tel = MemoryConsumer(), Telemetry()
    t = _tailer(log_path, consumer, tel, interval_s=0.02, read_existing=False)
    t.start()
    try:
        time.sleep(0.1)
        with open(log_path, "a") as fh:
            for i in range(5):
                fh.write(OLD.replace("0.7512", f"0.{i + 1}") + "\n")
                fh.flush()
                time.sleep(0.03)
        deadline = time.monotonic() + 10
        while len(_balancedness(consumer)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        t.shutdown(2.0)
    assert _balancedness(consumer) == [0.1, 0.2, 0.3, 0.4, 0.5]  # the line present at start was skipped
