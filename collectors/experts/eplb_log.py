"""Tails a vLLM log file for ``EPLB step:`` lines -> ``expert_balance_samples`` (layer -1).

Both shapes vLLM has printed are parsed (an optional ``(EngineCore_DP0 pid=..)`` prefix and
ANSI colours are tolerated)::

    INFO 11-29 03:00:00 [eplb_state.py:123] EPLB step: 3000 for model deepseek-v3: avg_tokens=512.00,
        max_tokens=1024, balancedness=0.5000, steps until the next rearrangement: 0
    INFO 11-29 03:00:00 [eplb_state.py:123] EPLB step: avg_tokens=512.00, max_tokens=1024, balancedness=0.5000

vLLM's log time has no year and is taken as UTC: the year is the clock's, or the one before
when that would put the line more than a day in the future. The tailer follows the file
through rotation (new inode: the old handle is drained first) and truncation (size below the
read position: start again from 0), keeps a partial last line until its newline arrives, and
keeps parsed rows while the consumer is unavailable (bounded, oldest dropped and counted).
"""

from __future__ import annotations

import calendar
import logging
import math
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from collectors.component import Consumer, PermanentError, TransientError
from collectors.experts.rows import balance_rows
from collectors.polling import PollingComponent
from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)

_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf"
EPLB_LINE_RE = re.compile(
    r"(?P<level>DEBUG|INFO|WARNING|ERROR)\s+(?P<month>\d{2})-(?P<day>\d{2})\s+"
    r"(?P<hms>\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?\s+\[[^\]]*\]\s+EPLB step:\s*"
    r"(?:(?P<step>\d+)\s+for model\s+(?P<model>\S+?):\s*)?"
    rf"avg_tokens=(?P<avg>{_NUM}),\s*max_tokens=(?P<max>{_NUM}),\s*balancedness=(?P<bal>{_NUM})"
)
MARKER = b"EPLB step:"
MAX_LINE_BYTES = 64 * 1024
READ_CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class EplbSample:
    ts_ms: int
    model: str | None
    step: int | None
    avg_tokens: float
    max_tokens: float
    balancedness: float


class EplbLineRejected(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _infer_ts_ms(month: int, day: int, hms: str, frac: str | None, now_s: float) -> int:
    h, m, s = (int(x) for x in hms.split(":"))
    year = time.gmtime(now_s).tm_year
    for y in (year, year - 1):
        try:
            ts = calendar.timegm((y, month, day, h, m, s, 0, 0, 0))
        except (ValueError, OverflowError):
            continue
        if time.gmtime(ts)[:3] != (y, month, day):  # e.g. 02-30, or 02-29 of a common year
            continue
        if ts <= now_s + 86400:
            millis = int((frac or "0")[:3].ljust(3, "0"))
            return ts * 1000 + millis
    raise EplbLineRejected("bad_timestamp", f"no valid date for {month:02d}-{day:02d} {hms}")


def parse_eplb_line(line: str, now_s: float) -> EplbSample | None:
    """The sample of one log line; None for lines without ``EPLB step:``; EplbLineRejected for
    an EPLB line that cannot be read or holds impossible values."""
    if "EPLB step:" not in line:
        return None
    m = EPLB_LINE_RE.search(_ANSI_RE.sub("", line))
    if m is None:
        raise EplbLineRejected("unparsed", f"unrecognised EPLB line: {line[:160]!r}")
    avg, mx, bal = float(m.group("avg")), float(m.group("max")), float(m.group("bal"))
    if not all(math.isfinite(v) for v in (avg, mx, bal)):
        raise EplbLineRejected("not_finite", f"non-finite value in EPLB line: {line[:160]!r}")
    if avg < 0 or mx < 0 or not 0.0 <= bal <= 1.0 + 1e-9:
        raise EplbLineRejected("out_of_range", f"EPLB values out of range (balancedness must be 0..1): {line[:160]!r}")
    ts = _infer_ts_ms(int(m.group("month")), int(m.group("day")), m.group("hms"), m.group("frac"), now_s)
    step = m.group("step")
    return EplbSample(ts, m.group("model"), int(step) if step else None, avg, mx, min(bal, 1.0))


class EplbLogTailer(PollingComponent):
    """One component per engine log file."""

    def __init__(
        self,
        path: Path,
        *,
        engine_instance: str,
        model: str,
        cluster: str,
        consumer: Consumer,
        telemetry: Telemetry,
        interval_s: float = 5.0,
        read_existing: bool = True,
        max_pending_rows: int = 200_000,
        clock=time.time,
    ) -> None:
        super().__init__(telemetry, interval_s)
        self.name = f"eplb-log[{engine_instance}]"
        self.path = Path(path)
        self.engine_instance = engine_instance
        self.model = model
        self.cluster = cluster
        self.consumer = consumer
        self._clock = clock
        self._fh = None
        self._ident: tuple[int, int] | None = None
        self._partial = b""
        self._skip_existing = not read_existing
        self._pending: deque[EplbSample] = deque()
        self._max_pending = max_pending_rows

    # ------------------------------------------------------------------ file following

    def _open(self, at_end: bool) -> None:
        fh = open(self.path, "rb")  # noqa: SIM115 - kept open across polls, closed in _close
        st = os.fstat(fh.fileno())
        self._fh, self._ident, self._partial = fh, (st.st_dev, st.st_ino), b""
        if at_end:
            fh.seek(0, os.SEEK_END)

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.close()
        self._fh, self._ident = None, None

    def _read_new_bytes(self) -> list[bytes]:
        """Complete new lines since the last poll (following rotation and truncation)."""
        lines: list[bytes] = []
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self._fh is None:
            if st is None:
                return lines
            self._open(at_end=self._skip_existing)
            self._skip_existing = False
        elif st is not None and (st.st_dev, st.st_ino) != self._ident:
            lines += self._drain()  # rotated: finish the old file, then follow the new one
            if self._partial:
                lines.append(self._partial)
            self._close()
            self.telemetry.add("eplb_log_rotations")
            self._open(at_end=False)
        elif st is not None and st.st_size < self._fh.tell():
            self.telemetry.add("eplb_log_truncations")
            self._fh.seek(0)
            self._partial = b""
        lines += self._drain()
        return lines

    def _drain(self) -> list[bytes]:
        assert self._fh is not None
        out: list[bytes] = []
        while True:
            chunk = self._fh.read(READ_CHUNK_BYTES)
            if not chunk:
                return out
            parts = (self._partial + chunk).split(b"\n")
            self._partial = parts.pop()
            if len(self._partial) > MAX_LINE_BYTES:
                self.telemetry.add("eplb_log_lines_rejected", reason="line_too_long")
                self._partial = b""
            out.extend(p for p in parts if MARKER in p)

    # ------------------------------------------------------------------ polling

    def poll_once(self) -> int:
        """Parse new lines and hand pending samples to the consumer; returns rows sent."""
        now = self._clock()
        for raw in self._read_new_bytes():
            if MARKER not in raw:
                continue
            try:
                sample = parse_eplb_line(raw.decode("utf-8", "replace"), now)
            except EplbLineRejected as exc:
                self.telemetry.add("eplb_log_lines_rejected", reason=exc.reason)
                continue
            if sample is not None:
                self._pending.append(sample)
        overflow = len(self._pending) - self._max_pending
        if overflow > 0:
            for _ in range(overflow):
                self._pending.popleft()
            self.telemetry.add("eplb_samples_dropped", overflow, reason="pending_full")
        return self._flush()

    def _flush(self) -> int:
        if not self._pending:
            self.note_success()
            return 0
        batch = list(self._pending)
        rows = balance_rows(
            [s.ts_ms for s in batch],
            [s.avg_tokens for s in batch],
            [s.max_tokens for s in batch],
            [s.balancedness for s in batch],
            [s.model or self.model for s in batch],
            cluster=self.cluster,
            engine_instance=self.engine_instance,
            source="vllm_eplb_log",
        )
        try:
            self.consumer.consume("expert_balance_samples", rows)
        except TransientError as exc:
            self.note_transient()
            log.warning("%s: spool refused %d samples (%s); kept and retried", self.name, len(batch), exc)
            return 0
        except PermanentError as exc:
            self.telemetry.add("eplb_samples_dropped", len(batch), reason="permanent_consumer_error")
            log.warning("%s: %d samples refused permanently (%s); dropped", self.name, len(batch), exc)
        else:
            self.telemetry.add("eplb_samples_collected", len(batch))
        self._pending.clear()
        self.note_success()
        return rows.num_rows

    def on_shutdown(self) -> None:
        self._close()
