"""OTLP/HTTP receiver: ``POST /v1/traces`` (application/x-protobuf or application/json, gzip
or identity) and ``POST /v1/expert-loads`` (handed to ``collectors.experts.push.handle_push``
when that module is installed, else 404).

Answers follow the OTLP/HTTP specification: 200 with an ``ExportTraceServiceResponse`` in the
request's encoding (``partial_success`` with the rejected span count and reasons), 400 for a
body that does not decode, 401 for a missing or wrong bearer token, 411 without
Content-Length, 413 for a body over ``max_request_bytes`` on the wire or over
``max_decompressed_bytes`` after gzip (decompressed with a cap, so a gzip bomb costs at most
the cap), 415 for another content type or encoding, 503 (retryable, ``Retry-After``) when the
consumer cannot keep the rows now. Error bodies are a ``google.rpc.Status``. Each answer is
counted in ``otlp_http_requests{code}``; bad input also in ``otlp_bad_requests{reason}``.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collectors.component import Consumer, TransientError
from collectors.otlp.config import OtlpConfig
from collectors.otlp.ingest import TraceIngest
from collectors.otlp.otlp_json import OtlpJsonError, parse_otlp_json
from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


class HttpError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


def gunzip_capped(body: bytes, cap: int) -> bytes:
    """Decompress gzip (one or more members) producing at most ``cap`` bytes, else HttpError 413."""
    out = bytearray()
    data = body
    while data:
        d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            chunk = d.decompress(data, cap + 1 - len(out))
        except zlib.error as exc:
            raise HttpError(400, "bad_gzip", f"body is not valid gzip: {exc}") from None
        out += chunk
        if len(out) > cap or d.unconsumed_tail:
            raise HttpError(413, "decompressed_too_large",
                            f"body is larger than {cap} bytes after decompression; send smaller batches")
        if not d.eof:
            raise HttpError(400, "bad_gzip", "gzip body is truncated")
        data = d.unused_data
    return bytes(out)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class OtlpHttpReceiver:
    """The OTLP/HTTP receiver component (see the module docstring for its answers)."""

    name = "otlp-http"

    def __init__(self, config: OtlpConfig, ingest: TraceIngest, consumer: Consumer, telemetry: Telemetry) -> None:
        self.config = config
        self.ingest = ingest
        self.consumer = consumer
        self.telemetry = telemetry
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._push = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("receiver not started")
        return self._server.server_address[1]

    def start(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            try:
                from collectors.experts.push import handle_push
            except ImportError:
                handle_push = None
            self._push = handle_push
            host, _, port = self.config.http_listen.rpartition(":")
            server = _Server((host.strip("[]"), int(port)), self._handler_class())
            self._server = server
            self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                            name="otlp-http", daemon=True)
            self._thread.start()
            log.info("OTLP/HTTP receiver listening on %s:%d", host, self.port)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        try:
            stopper = threading.Thread(target=server.shutdown, daemon=True)
            stopper.start()
            stopper.join(timeout_s)
            server.server_close()
            if thread is not None:
                thread.join(max(0.0, timeout_s))
        except Exception as exc:  # noqa: BLE001 - shutdown never raises
            log.warning("OTLP/HTTP receiver shutdown: %s", exc)

    # ------------------------------------------------------------------ handling

    def _handler_class(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "fleetledger-otlp"
            timeout = 30

            def log_message(self, format, *args):  # noqa: A002 - counted, not logged per request
                return

            def do_POST(self):  # noqa: N802
                receiver._handle(self)

        return Handler

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        ctype = (h.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        reply_type = JSON if ctype == JSON else PROTOBUF
        try:
            if path not in ("/v1/traces", "/v1/expert-loads") or (path == "/v1/expert-loads" and self._push is None):
                raise HttpError(404, "not_found", f"no such endpoint {path}; OTLP traces go to POST /v1/traces")
            self._authorize(h)
            if path == "/v1/expert-loads":
                body = self._read_body(h)
                status, doc = self._push(body, ctype, self.consumer, self.telemetry,
                                         cluster=self.ingest.decoder.cluster)
                self._send(h, status, JSON, json.dumps(doc).encode())
                return
            if ctype not in (PROTOBUF, JSON):
                raise HttpError(415, "unsupported_media_type",
                                f"Content-Type {ctype or '(none)'} is not supported; use {PROTOBUF} or {JSON}")
            body = self._read_body(h)
            try:
                if ctype == PROTOBUF:
                    request = ExportTraceServiceRequest()
                    request.ParseFromString(body)
                else:
                    request = parse_otlp_json(body)
            except DecodeError as exc:
                raise HttpError(400, "bad_protobuf", f"body is not an ExportTraceServiceRequest: {exc}") from None
            except OtlpJsonError as exc:
                raise HttpError(400, "bad_json", str(exc)) from None
            outcome = self.ingest.export(request, "http")
            response = ExportTraceServiceResponse()
            if outcome.rejected_spans:
                response.partial_success.rejected_spans = outcome.rejected_spans
                response.partial_success.error_message = outcome.error_message
            self._send_message(h, 200, reply_type, response)
        except HttpError as exc:
            if exc.code != 404:
                self.telemetry.add("otlp_bad_requests", 1, reason=exc.reason, transport="http")
            self._send_status(h, exc.code, reply_type, str(exc))
        except TransientError as exc:
            self.telemetry.add("otlp_consumer_unavailable", 1, transport="http")
            self._send_status(h, 503, reply_type, f"rows not kept, retry later: {exc}", retry_after=True)
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the receiver
            log.exception("OTLP/HTTP request failed")
            self.telemetry.add("otlp_internal_errors", 1, transport="http", error=type(exc).__name__)
            self._send_status(h, 500, reply_type, f"internal error: {type(exc).__name__}: {exc}")

    def _authorize(self, h: BaseHTTPRequestHandler) -> None:
        token = self.config.token
        if token is None:
            return
        got = h.headers.get("Authorization") or ""
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HttpError(401, "unauthorized", "missing or wrong bearer token (Authorization: Bearer <token>)")

    def _read_body(self, h: BaseHTTPRequestHandler) -> bytes:
        length = h.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            h.close_connection = True
            raise HttpError(411, "length_required", "a Content-Length header is required")
        n = int(length)
        if n > self.config.max_request_bytes:
            h.close_connection = True  # the body is not read; the connection cannot be reused
            raise HttpError(413, "too_large",
                            f"body of {n} bytes is over the {self.config.max_request_bytes}-byte limit; send smaller batches")
        body = h.rfile.read(n)
        if len(body) != n:
            h.close_connection = True
            raise HttpError(400, "short_body", f"body ended after {len(body)} of {n} bytes")
        encoding = (h.headers.get("Content-Encoding") or "identity").strip().lower()
        if encoding == "gzip":
            return gunzip_capped(body, self.config.max_decompressed_bytes)
        if encoding != "identity":
            raise HttpError(415, "unsupported_encoding", f"Content-Encoding {encoding} is not supported; use gzip")
        return body

    def _send_status(self, h, code: int, ctype: str, message: str, retry_after: bool = False) -> None:
        status = status_pb2.Status(code=_GRPC_CODE.get(code, 2), message=message)
        self._send_message(h, code, ctype, status, retry_after)

    def _send_message(self, h, code: int, ctype: str, message, retry_after: bool = False) -> None:
        if ctype == JSON:
            body = json_format.MessageToJson(message, indent=None).encode()
        else:
            body = message.SerializeToString()
        self._send(h, code, ctype, body, retry_after)

    def _send(self, h, code: int, ctype: str, body: bytes, retry_after: bool = False) -> None:
        self.telemetry.add("otlp_http_requests", 1, code=str(code))
        try:
            h.send_response(code)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(body)))
            if code == 401:
                h.send_header("WWW-Authenticate", 'Bearer realm="fleetledger"')
            if retry_after:
                h.send_header("Retry-After", "1")
            if h.close_connection:
                h.send_header("Connection", "close")
            h.end_headers()
            h.wfile.write(body)
        except OSError:  # the client went away; nothing to answer
            h.close_connection = True


# google.rpc.Code of each HTTP answer (google/rpc/code.proto mapping)
_GRPC_CODE = {400: 3, 401: 16, 404: 5, 411: 3, 413: 8, 415: 3, 500: 13, 503: 14}
