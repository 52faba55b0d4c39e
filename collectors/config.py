"""Typed configuration of the sidecar (`fleetledger collect`), validated at start.

Each component owns one section; `fleetledger.settings.Settings.collect` holds them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from collectors.engines import EngineConfig
from collectors.experts.config import ExpertsConfig
from collectors.otlp.config import OtlpConfig
from collectors.prometheus.config import ScrapeConfig
from schemas.dsn import parse_dsn


class SpoolConfig(BaseModel):
    directory: Path = Field(default=Path(".fleetledger/spool"), description="Arrow IPC segment folder")
    max_bytes: int = Field(default=1 << 30, gt=0, description="oldest segments are dropped past this size")


class NvmlConfig(BaseModel):
    """NVML sampler (`collectors/nvml/`)."""

    enabled: bool = Field(default=True, description="sample GPUs through NVML")
    backend: Literal["pynvml", "simulated"] = Field(
        default="pynvml", description="'pynvml' = the real driver; 'simulated' = a small SimNVML fleet (demos, tests)"
    )
    interval_s: float = Field(default=1.0, gt=0, le=3600, description="seconds between two passes over all GPUs")
    flush_interval_s: float = Field(
        default=5.0, ge=0, description="rows of several passes go to the spool together (0 = every pass); "
        "a crash loses at most this much not-yet-spooled telemetry"
    )
    processes: bool = Field(default=True, description="per-process memory/utilisation + PID -> container/pod")
    xid_events: bool = Field(default=True, description="register an NVML event set for Xid / ECC events")
    proc_root: Path = Field(default=Path("/proc"), description="procfs root for PID -> cgroup (host /proc with hostPID)")
    reprobe_every: int = Field(default=300, ge=1, description="passes after which NOT_SUPPORTED fields are asked again")
    simulated_gpus: int = Field(default=4, ge=1, le=64, description="GPU count of the 'simulated' backend")
    simulated_model: str = Field(default="NVIDIA H100 80GB HBM3", description="GPU name of the 'simulated' backend")


class DcgmConfig(BaseModel):
    """DCGM exporter scraper (`collectors/dcgm/`)."""

    enabled: bool = Field(default=False, description="scrape a dcgm-exporter /metrics endpoint")
    url: str = Field(default="http://127.0.0.1:9400/metrics", description="dcgm-exporter URL")
    interval_s: float = Field(default=10.0, gt=0, description="seconds between scrapes")
    timeout_s: float = Field(default=5.0, gt=0, description="HTTP timeout of one scrape")
    processes: bool = Field(default=True, description="pod/namespace/container labels -> gpu_processes rows")


class ShipperConfig(BaseModel):
    """Spool -> store shipping (only when `collect.ship_to` is set)."""

    poll_interval_s: float = Field(default=1.0, gt=0, description="how often the spool is checked for new segments")
    backoff_initial_s: float = Field(default=0.5, gt=0, description="first retry delay after a transient error")
    backoff_max_s: float = Field(default=60.0, gt=0, description="retry delays grow (jittered, x2) up to this")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="ClickHouse connect timeout")


class CollectorConfig(BaseModel):
    cluster: str = Field(default="default", description="fleet cluster label written on every row")
    node: str = Field(default="", description="node name; empty = this host's name")
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    http_listen: str = Field(default="127.0.0.1:9464", description="/healthz and /metrics of the sidecar")
    ship_to: str = Field(default="", description="server store DSN (http(s)://...) to ship the spool to; empty = spool only")
    shipper: ShipperConfig = Field(default_factory=ShipperConfig)
    nvml: NvmlConfig = Field(default_factory=NvmlConfig)
    dcgm: DcgmConfig = Field(default_factory=DcgmConfig)
    shutdown_timeout_s: float = Field(default=10.0, gt=0, description="time budget for a clean stop (SIGTERM)")

    @field_validator("ship_to")
    @classmethod
    def _server_dsn_only(cls, value: str) -> str:
        if value and parse_dsn(value).embedded:
            raise ValueError(
                "must be a ClickHouse server DSN (http(s)://user:pass@host:8123/db); an embedded chdb:// store "
                "is loaded from the spool by the ingest flow, never opened by a sidecar"
            )
        return value
    otlp: OtlpConfig = Field(default_factory=OtlpConfig, description="OTLP trace receivers")
    scrape: ScrapeConfig = Field(default_factory=ScrapeConfig, description="Prometheus scraper of engine /metrics")
    engines: list[EngineConfig] = Field(default_factory=list, description="[[collect.engines]]: engine instances")
    experts: ExpertsConfig = Field(default_factory=ExpertsConfig, description="[collect.experts]: expert dumps, EPLB logs")
