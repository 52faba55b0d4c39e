"""The DCGM exporter scraper component: GET the exporter's /metrics each interval, map, consume.

A failed or malformed scrape is counted (``errors{component=dcgm,kind=...}``), logged once per
kind of failure in a row, and skipped; the next interval tries again. Rows the consumer refuses
are counted as dropped.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from collectors.component import Consumer
from collectors.config import DcgmConfig
from collectors.dcgm.mapping import DcgmParseError, map_dcgm
from collectors.polling import PollingComponent
from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024 * 1024


class DcgmScraper(PollingComponent):
    name = "dcgm"

    def __init__(self, config: DcgmConfig, consumer: Consumer, telemetry: Telemetry, *, cluster: str, node: str,
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self.config = config
        self.consumer = consumer
        self.telemetry = telemetry
        self.cluster = cluster
        self.node = node
        self.now_ns = now_ns
        self._last_xid: dict[str, int] = {}
        self._last_failure = ""
        super().__init__(telemetry, config.interval_s)

    def poll_once(self) -> None:
        self.scrape_once()

    def fetch(self) -> str:
        req = urllib.request.Request(self.config.url, headers={"Accept": "text/plain"})
        with urllib.request.urlopen(req, timeout=self.config.timeout_s) as resp:  # noqa: S310 - configured URL
            body = resp.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            raise DcgmParseError(f"body larger than {MAX_BODY_BYTES} bytes")
        return body.decode("utf-8", errors="replace")

    def scrape_once(self) -> int:
        """One scrape; returns the gpu_samples rows produced (0 on a failed scrape)."""
        try:
            text = self.fetch()
            tables = map_dcgm(text, self.now_ns() // 1_000_000, self.cluster, self.node, self._last_xid)
        except (OSError, urllib.error.URLError, DcgmParseError, ValueError) as exc:
            kind = "parse" if isinstance(exc, DcgmParseError | ValueError) else "fetch"
            self.telemetry.add("errors", component="dcgm", kind=kind)
            msg = f"{kind}: {exc}"
            if msg != self._last_failure:
                log.warning("DCGM scrape of %s failed (%s); skipped, next try in %.0fs", self.config.url, exc,
                            self.config.interval_s)
            self._last_failure = msg
            return 0
        self._last_failure = ""
        self.telemetry.add("scrapes", component="dcgm")
        if not self.config.processes:
            tables.pop("gpu_processes", None)
        for table, data in tables.items():
            try:
                self.consumer.consume(table, data)
            except Exception as exc:
                self.telemetry.add("rows_dropped", data.num_rows, component="dcgm", reason=type(exc).__name__)
                log.warning("DCGM rows for %s not accepted (%s); dropped", table, exc)
        n = tables["gpu_samples"].num_rows if "gpu_samples" in tables else 0
        self.telemetry.add("samples", n, component="dcgm")
        return n
