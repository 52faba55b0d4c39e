"""Typed configuration of the OTLP trace receivers (`[collect.otlp]`).

Label attribute keys (defaults, first key found wins, so ``fleetledger.*`` beats the bare name):

=================  =================================================
column             attribute keys looked up on caller and engine spans
=================  =================================================
workflow           ``fleetledger.workflow``, ``workflow``
tenant             ``fleetledger.tenant``, ``tenant``
route              ``fleetledger.route``, ``route``
reasoning_mode     ``fleetledger.reasoning_mode``, ``reasoning_mode``
request_class      ``fleetledger.request_class``, ``request_class``
=================  =================================================

Request spans: vLLM's ``llm_request`` (``request_span_names``) and SGLang's root spans named
``Req <rid>`` or ``<role> Req <rid>``. Every other span is a caller span when it carries a label
key, else it is ignored and counted.
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator


class LabelKeys(BaseModel):
    workflow: list[str] = Field(default_factory=lambda: ["fleetledger.workflow", "workflow"])
    tenant: list[str] = Field(default_factory=lambda: ["fleetledger.tenant", "tenant"])
    route: list[str] = Field(default_factory=lambda: ["fleetledger.route", "route"])
    reasoning_mode: list[str] = Field(default_factory=lambda: ["fleetledger.reasoning_mode", "reasoning_mode"])
    request_class: list[str] = Field(default_factory=lambda: ["fleetledger.request_class", "request_class"])

    def key_map(self) -> dict[str, tuple[int, int]]:
        """attribute key -> (label column index in LABEL_COLUMNS, priority; 0 is highest)."""
        out: dict[str, tuple[int, int]] = {}
        for col, name in enumerate(LABEL_COLUMNS):
            for prio, key in enumerate(getattr(self, name)):
                out.setdefault(key, (col, prio))
        return out


LABEL_COLUMNS = ("workflow", "tenant", "route", "reasoning_mode", "request_class")


def _host_port(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:4318; port 0 picks a free port)")
    return value


class OtlpConfig(BaseModel):
    enabled: bool = Field(default=True, description="run the OTLP receivers")
    http_enabled: bool = Field(default=True)
    http_listen: str = Field(default="127.0.0.1:4318", description="OTLP/HTTP POST /v1/traces")
    grpc_enabled: bool = Field(default=True)
    grpc_listen: str = Field(default="127.0.0.1:4317", description="OTLP/gRPC TraceService/Export")
    grpc_max_workers: int = Field(default=4, ge=1, le=64)
    bearer_token: SecretStr | None = Field(default=None, description="require 'Authorization: Bearer <token>'")
    max_request_bytes: int = Field(default=16 << 20, gt=0, description="largest request body on the wire")
    max_decompressed_bytes: int = Field(default=64 << 20, gt=0, description="largest body after gzip")
    request_span_names: list[str] = Field(default_factory=lambda: ["llm_request"])
    labels: LabelKeys = Field(default_factory=LabelKeys)
    keep_other_attributes: bool = Field(default=True, description="other span attributes into request_spans.attributes")
    latency_slack_s: float = Field(default=0.001, ge=0, description="absolute slack when checking latencies vs span")
    latency_slack_ratio: float = Field(default=0.01, ge=0, description="relative slack (of the span duration)")

    _check_http = field_validator("http_listen")(classmethod(lambda cls, v: _host_port(v)))
    _check_grpc = field_validator("grpc_listen")(classmethod(lambda cls, v: _host_port(v)))

    @property
    def token(self) -> str | None:
        return self.bearer_token.get_secret_value() if self.bearer_token else None
