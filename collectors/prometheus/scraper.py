"""Scrapes vLLM / SGLang ``/metrics`` on a per-target schedule into ``engine_metrics`` rows.

Parsing uses ``prometheus_client``'s text parser. Every sample becomes one row with the
metric name exactly as scraped (histograms as ``_bucket`` rows carrying ``le``, ``_sum``,
``_count``); ``*_created`` series are dropped; only names with one of ``metric_prefixes`` are
kept (default ``vllm:`` and ``sglang:``). ``labels_key`` is the canonical ``k=v,k=v`` of the
labels sorted by key (``\\`` and ``,`` in values escaped).

vLLM renamed some metrics; the scraper keeps the name as scraped and ``RENAMED_METRICS`` says
which newer name an older one corresponds to (for queries that want one series across
versions, e.g. ``vllm:gpu_cache_usage_perc`` -> ``vllm:kv_cache_usage_perc``).

A failed scrape (connection refused, timeout, HTTP status other than 200, a body over the size
limit, text that does not parse) is counted in ``scrape_failures{target,reason}`` and skipped:
no partial rows are written, and the next scrape is tried at the next interval.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pyarrow as pa
from prometheus_client.parser import text_string_to_metric_families

from collectors.component import Consumer
from collectors.telemetry import Telemetry
from schemas.tables import ENGINE_METRICS, LABELS, TS_MS

log = logging.getLogger(__name__)

# older vLLM name -> the name newer vLLM releases use for the same quantity
RENAMED_METRICS = {
    "vllm:gpu_cache_usage_perc": "vllm:kv_cache_usage_perc",
    "vllm:gpu_prefix_cache_queries_total": "vllm:prefix_cache_queries_total",
    "vllm:gpu_prefix_cache_hits_total": "vllm:prefix_cache_hits_total",
    "vllm:time_per_output_token_seconds_bucket": "vllm:inter_token_latency_seconds_bucket",
    "vllm:time_per_output_token_seconds_sum": "vllm:inter_token_latency_seconds_sum",
    "vllm:time_per_output_token_seconds_count": "vllm:inter_token_latency_seconds_count",
}


class ScrapeError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Target:
    url: str
    engine_instance: str
    engine_kind: str
    node: str
    interval_s: float
    timeout_s: float
    bearer_token: str | None = None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,")


def labels_key(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={_escape(v)}" for k, v in sorted(labels.items()))


def parse_metrics(text: str, prefixes: tuple[str, ...] = ("vllm:", "sglang:")) -> tuple[list, list, list, list]:
    """Columns (metric, labels, labels_key, value) of a Prometheus text body; raises ValueError if malformed."""
    names: list[str] = []
    label_maps: list[list[tuple[str, str]]] = []
    keys: list[str] = []
    values: list[float] = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if name.endswith("_created") or (prefixes and not name.startswith(prefixes)):
                continue
            items = sorted(sample.labels.items())
            names.append(name)
            label_maps.append(items)
            keys.append(",".join(f"{k}={_escape(v)}" for k, v in items))
            values.append(float(sample.value))
    return names, label_maps, keys, values


def _kind_of(name: str) -> str:
    head, sep, _ = name.partition(":")
    return head if sep else ""


class PrometheusScraper:
    """One thread scraping every target on its own interval (earliest due first)."""

    name = "prometheus-scraper"

    def __init__(self, targets: list[Target], cluster: str, consumer: Consumer, telemetry: Telemetry,
                 prefixes: list[str] | tuple[str, ...] = ("vllm:", "sglang:"), max_body_bytes: int = 16 << 20,
                 clock=time.time) -> None:
        self.targets = list(targets)
        self.cluster = cluster
        self.consumer = consumer
        self.telemetry = telemetry
        self.prefixes = tuple(prefixes)
        self.max_body_bytes = max_body_bytes
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None or not self.targets:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prometheus-scraper", daemon=True)
        self._thread.start()

    def shutdown(self, timeout_s: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            thread.join(max(0.0, timeout_s))

    def _run(self) -> None:
        due = [(time.monotonic(), i) for i in range(len(self.targets))]
        heapq.heapify(due)
        while not self._stop.is_set():
            when, i = due[0]
            wait = when - time.monotonic()
            if wait > 0:
                if self._stop.wait(wait):
                    return
                continue
            heapq.heapreplace(due, (max(when + self.targets[i].interval_s, time.monotonic()), i))
            self.scrape(self.targets[i])

    def scrape_all(self) -> int:
        return sum(self.scrape(t) for t in self.targets)

    def scrape(self, target: Target) -> int:
        """Scrape one target now; returns the rows handed on (0 when the scrape failed)."""
        ts_ms = int(self.clock() * 1000)
        try:
            body = self._fetch(target)
            try:
                names, label_maps, keys, values = parse_metrics(body.decode("utf-8"), self.prefixes)
            except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
                raise ScrapeError("malformed", f"body is not Prometheus text: {exc}") from None
        except ScrapeError as exc:
            self.telemetry.add("scrape_failures", 1, target=target.engine_instance, reason=exc.reason)
            log.debug("scrape of %s failed (%s): %s; retried next interval", target.url, exc.reason, exc)
            return 0
        self.telemetry.add("scrapes", 1, target=target.engine_instance)
        if not names:
            return 0
        n = len(names)
        kinds = [target.engine_kind] * n if target.engine_kind else [_kind_of(m) for m in names]
        data = pa.Table.from_pydict({
            "ts": pa.array([ts_ms] * n, pa.int64()).cast(TS_MS),
            "cluster": [self.cluster] * n,
            "node": [target.node] * n,
            "engine_kind": kinds,
            "engine_instance": [target.engine_instance] * n,
            "metric": names,
            "labels": pa.array(label_maps, LABELS),
            "labels_key": keys,
            "value": pa.array(values, pa.float64()),
        }, schema=ENGINE_METRICS)
        try:
            self.consumer.consume("engine_metrics", data)
        except Exception as exc:  # noqa: BLE001 - a scrape is a snapshot: count it, the next one follows
            self.telemetry.add("scrape_failures", 1, target=target.engine_instance, reason="consumer")
            log.warning("scraped rows of %s not kept (%s); next scrape in %.0f s", target.url, exc, target.interval_s)
            return 0
        self.telemetry.add("scrape_samples", n, target=target.engine_instance)
        return n

    def _fetch(self, target: Target) -> bytes:
        headers = {"Accept": "text/plain;version=0.0.4"}
        if target.bearer_token:
            headers["Authorization"] = f"Bearer {target.bearer_token}"
        request = urllib.request.Request(target.url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=target.timeout_s) as resp:  # noqa: S310 - http(s) only
                body = resp.read(self.max_body_bytes + 1)
        except urllib.error.HTTPError as exc:
            raise ScrapeError(f"http_{exc.code}", f"HTTP {exc.code} from {target.url}") from None
        except TimeoutError:
            raise ScrapeError("timeout", f"no answer from {target.url} within {target.timeout_s} s") from None
        except urllib.error.URLError as exc:
            reason = "timeout" if isinstance(exc.reason, TimeoutError) else "unreachable"
            raise ScrapeError(reason, f"{target.url}: {exc.reason}") from None
        except (OSError, ValueError) as exc:
            raise ScrapeError("unreachable", f"{target.url}: {exc}") from None
        if len(body) > self.max_body_bytes:
            raise ScrapeError("too_large", f"{target.url} answered more than {self.max_body_bytes} bytes")
        return body
