"""OTLP/gRPC receiver: ``opentelemetry.proto.collector.trace.v1.TraceService/Export``.

The servicer subclasses the generated ``TraceServiceServicer``; it is registered with a
raw-bytes request deserializer so that a body that does not parse is answered
INVALID_ARGUMENT (as OTLP asks) instead of grpc's generic INTERNAL, and so the size limit is
checked and counted here. Answers: OK with ``partial_success`` (rejected spans and reasons),
INVALID_ARGUMENT, UNAUTHENTICATED (missing/wrong ``authorization: Bearer <token>``),
RESOURCE_EXHAUSTED (message over ``max_request_bytes``; grpc itself refuses messages over
``max_decompressed_bytes`` after its own decompression), UNAVAILABLE (retryable) when the
consumer cannot keep the rows now. Counted like the HTTP receiver, with transport='grpc'.
"""

from __future__ import annotations

import hmac
import logging
import threading
from concurrent import futures

import grpc
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from collectors.component import TransientError
from collectors.otlp.config import OtlpConfig
from collectors.otlp.ingest import TraceIngest
from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


class _TraceServicer(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpGrpcReceiver) -> None:
        self.receiver = receiver

    def Export(self, request: bytes, context: grpc.ServicerContext):  # noqa: N802 - generated name
        return self.receiver._export(request, context)


class OtlpGrpcReceiver:
    name = "otlp-grpc"

    def __init__(self, config: OtlpConfig, ingest: TraceIngest, telemetry: Telemetry) -> None:
        self.config = config
        self.ingest = ingest
        self.telemetry = telemetry
        self._server: grpc.Server | None = None
        self._port: int | None = None
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("receiver not started")
        return self._port

    def start(self) -> None:
        with self._lock:
            if self._server is not None:
                return
            cap = max(self.config.max_decompressed_bytes, self.config.max_request_bytes)
            server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=self.config.grpc_max_workers, thread_name_prefix="otlp-grpc"),
                options=[("grpc.max_receive_message_length", cap), ("grpc.so_reuseport", 0)],
            )
            servicer = _TraceServicer(self)
            handler = grpc.method_handlers_generic_handler(SERVICE, {
                "Export": grpc.unary_unary_rpc_method_handler(
                    servicer.Export,
                    request_deserializer=None,  # raw bytes: parsed in _export
                    response_serializer=ExportTraceServiceResponse.SerializeToString,
                ),
            })
            server.add_generic_rpc_handlers((handler,))
            port = server.add_insecure_port(self.config.grpc_listen)
            if port == 0:
                raise OSError(f"OTLP/gRPC receiver cannot listen on {self.config.grpc_listen}")
            server.start()
            self._server, self._port = server, port
            log.info("OTLP/gRPC receiver listening on %s (port %d)", self.config.grpc_listen, port)

    def shutdown(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            server, self._server = self._server, None
        if server is None:
            return
        try:
            server.stop(grace=max(0.0, timeout_s * 0.8)).wait(timeout_s)
        except Exception as exc:  # noqa: BLE001 - shutdown never raises
            log.warning("OTLP/gRPC receiver shutdown: %s", exc)

    def _fail(self, context, code: grpc.StatusCode, reason: str, message: str):
        self.telemetry.add("otlp_bad_requests", 1, reason=reason, transport="grpc")
        self.telemetry.add("otlp_grpc_requests", 1, code=code.name)
        context.abort(code, message)

    def _export(self, raw: bytes, context: grpc.ServicerContext) -> ExportTraceServiceResponse:
        token = self.config.token
        if token is not None:
            got = dict(context.invocation_metadata()).get("authorization", "")
            scheme, _, value = got.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
                self._fail(context, grpc.StatusCode.UNAUTHENTICATED, "unauthorized",
                           "missing or wrong bearer token (metadata authorization: Bearer <token>)")
        if len(raw) > self.config.max_request_bytes:
            self._fail(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "too_large",
                       f"message of {len(raw)} bytes is over the {self.config.max_request_bytes}-byte limit;"
                       " send smaller batches")
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(raw)
        except DecodeError as exc:
            self._fail(context, grpc.StatusCode.INVALID_ARGUMENT, "bad_protobuf",
                       f"message is not an ExportTraceServiceRequest: {exc}")
        try:
            outcome = self.ingest.export(request, "grpc")
        except TransientError as exc:
            self.telemetry.add("otlp_consumer_unavailable", 1, transport="grpc")
            self.telemetry.add("otlp_grpc_requests", 1, code="UNAVAILABLE")
            context.abort(grpc.StatusCode.UNAVAILABLE, f"rows not kept, retry later: {exc}")
        except Exception as exc:  # noqa: BLE001 - one bad request never stops the receiver
            log.exception("OTLP/gRPC export failed")
            self.telemetry.add("otlp_internal_errors", 1, transport="grpc", error=type(exc).__name__)
            self.telemetry.add("otlp_grpc_requests", 1, code="INTERNAL")
            context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}: {exc}")
        response = ExportTraceServiceResponse()
        if outcome.rejected_spans:
            response.partial_success.rejected_spans = outcome.rejected_spans
            response.partial_success.error_message = outcome.error_message
        self.telemetry.add("otlp_grpc_requests", 1, code="OK")
        return response
