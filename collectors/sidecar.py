"""The sidecar process: assembles the collectors around one spool, ships, serves /healthz and /metrics.

Components are built by each collector module's ``create_components(config, consumer, telemetry)``
(modules listed in ``FACTORY_MODULES``; a module that is not part of this build is skipped), all
writing into one ``Spool``. A ``Shipper`` runs only when ``collect.ship_to`` is a server DSN: in
embedded mode the sidecar never opens the store (one chDB directory belongs to one process);
the ingest flow loads the spool.

Own telemetry goes through an OpenTelemetry ``MeterProvider`` with a ``PrometheusMetricReader``
(its own prometheus_client registry) and is served on ``collect.http_listen`` (127.0.0.1 by
default): ``/metrics`` (samples, spool bytes and segments, dropped rows, shipping lag, errors by
component and kind, ...) and ``/healthz`` (JSON; 200 when every component started).

``shutdown(timeout_s)`` stops producers first, then the shipper, then the HTTP server, within one
time budget; nothing acknowledged is lost because every accepted row is already on disk.
"""

from __future__ import annotations

import importlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from collectors.component import Component
from collectors.config import CollectorConfig
from collectors.shipper import Shipper
from collectors.spool import Spool
from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)

FACTORY_MODULES = [
    "collectors.nvml.factory",
    "collectors.dcgm.factory",
    "collectors.otlp.factory",
    "collectors.prometheus.factory",
    "collectors.experts.factory",
    "collectors.engines",
]


def _split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    try:
        return host or "127.0.0.1", int(port)
    except ValueError:
        raise ValueError(f"collect.http_listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9464") from None


class Sidecar:
    def __init__(
        self,
        config: CollectorConfig,
        *,
        nvml_module: Any = None,
        open_store: Callable[[], Any] | None = None,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.node = config.node or socket.gethostname()
        self.registry = CollectorRegistry()
        self.meter_provider = MeterProvider(metric_readers=[PrometheusMetricReader(scope_info_enabled=False, registry=self.registry)])
        self.telemetry = Telemetry(self.meter_provider.get_meter("fleetledger.sidecar"))
        self.spool = Spool(config.spool, self.telemetry, node=self.node)
        self.components: list[Component] = []
        self.failed: dict[str, str] = {}
        self.shipper: Shipper | None = None
        self._nvml_module = nvml_module
        self._now_ns = now_ns
        self._open_store = open_store
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self._built = False
        self._started = False
        self._stopped = False
        self.started_at = 0.0

    # ------------------------------------------------------------------ assembly

    def build(self) -> None:
        """Create every enabled component (a factory that fails is reported, the rest still run)."""
        if self._built:
            return
        self._built = True
        cfg = self.config.model_copy(update={"node": self.node})
        for name in FACTORY_MODULES:
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name and name.startswith(exc.name):
                    continue  # that collector is not part of this build
                raise
            try:
                if name == "collectors.nvml.factory":
                    comps = module.create_components(cfg, self.spool, self.telemetry,
                                                     nvml_module=self._nvml_module, now_ns=self._now_ns)
                else:
                    comps = module.create_components(cfg, self.spool, self.telemetry)
            except Exception as exc:
                self.failed[name] = f"{type(exc).__name__}: {exc}"
                self.telemetry.add("errors", component=name.split(".")[1], kind="build")
                log.error("collector %s could not be built (%s); the others run", name, exc)
                continue
            self.components.extend(comps)
        if self.config.ship_to:
            self.shipper = Shipper(self.config.spool.directory, self._store_opener(), self.telemetry, self.config.shipper)
        self._register_gauges()

    def _store_opener(self) -> Callable[[], Any]:
        if self._open_store is not None:
            return self._open_store
        from schemas.dsn import parse_dsn
        from schemas.store import Store

        dsn = parse_dsn(self.config.ship_to)  # validated as a server DSN by CollectorConfig
        timeout = self.config.shipper.connect_timeout_s
        return lambda: Store.open(dsn, connect_timeout=timeout)  # the schema is `fleetledger init`'s job

    def _register_gauges(self) -> None:
        t = self.telemetry
        t.gauge("spool_bytes", self.spool.bytes_on_disk, "bytes of segments waiting in the spool")
        t.gauge("spool_pending_segments", lambda: len(self.spool.segments()), "segments waiting in the spool")
        t.gauge("shipping_lag_seconds", self.spool.oldest_age_s, "age of the oldest segment not yet shipped")
        t.gauge("up", lambda: 1.0 if self._started and not self._stopped else 0.0, "1 while the sidecar runs")

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._started:
            return
        self.build()
        self.spool.start()
        for comp in self.components:
            try:
                comp.start()
            except Exception as exc:  # one collector that cannot start does not stop the others
                self.failed[comp.name] = f"{type(exc).__name__}: {exc}"
                self.telemetry.add("errors", component=comp.name, kind="start")
                log.error("collector %s failed to start (%s); the others run", comp.name, exc)
        if self.shipper is not None:
            self.shipper.start()
        self._serve_http()
        self._started = True
        self.started_at = time.time()
        log.info("sidecar on node %s: %d collectors, spool %s, %s", self.node, len(self.components),
                 self.config.spool.directory, f"shipping to {self.config.ship_to.split('@')[-1]}"
                 if self.shipper else "spool only (the ingest flow loads it)")

    def shutdown(self, timeout_s: float | None = None) -> None:
        if self._stopped:
            return
        self._stopped = True
        budget = self.config.shutdown_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + budget
        for comp in reversed(self.components):
            comp.shutdown(max(0.05, deadline - time.monotonic()))
        if self.shipper is not None:
            self.shipper.shutdown(max(0.05, deadline - time.monotonic()))
        self.spool.shutdown(max(0.05, deadline - time.monotonic()))
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
        try:
            self.meter_provider.shutdown(timeout_millis=max(50.0, (deadline - time.monotonic()) * 1000))
        except Exception:
            log.debug("meter provider shutdown failed", exc_info=True)

    # ------------------------------------------------------------------ HTTP

    @property
    def http_port(self) -> int:
        return self._http.server_address[1] if self._http else 0

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok" if not self.failed else "degraded",
            "node": self.node,
            "components": [c.name for c in self.components],
            "failed": self.failed,
            "spool_segments": len(self.spool.segments()),
            "shipping": bool(self.shipper),
            "shipper_last_error": self.shipper.last_error if self.shipper else "",
            "uptime_s": round(time.time() - self.started_at, 3) if self.started_at else 0.0,
        }

    def _serve_http(self) -> None:
        host, port = _split_listen(self.config.http_listen)
        sidecar = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    body, ctype, code = generate_latest(sidecar.registry), CONTENT_TYPE_LATEST, 200
                elif path in ("/healthz", "/health"):
                    h = sidecar.health()
                    body, ctype = json.dumps(h).encode(), "application/json"
                    code = 200 if h["status"] == "ok" else 503
                else:
                    body, ctype, code = b"not found: try /metrics or /healthz\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer((host, port), Handler)
        self._http.daemon_threads = True
        self._http_thread = threading.Thread(target=self._http.serve_forever, name="sidecar-http", daemon=True)
        self._http_thread.start()
