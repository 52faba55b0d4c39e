"""Typed configuration of the sidecar (`fleetledger collect`), validated at start.

Each component owns one section; `fleetledger.settings.Settings.collect` holds them all.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class SpoolConfig(BaseModel):
    directory: Path = Field(default=Path(".fleetledger/spool"), description="Arrow IPC segment folder")
    max_bytes: int = Field(default=1 << 30, gt=0, description="oldest segments are dropped past this size")


class CollectorConfig(BaseModel):
    cluster: str = Field(default="default", description="fleet cluster label written on every row")
    node: str = Field(default="", description="node name; empty = this host's name")
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    http_listen: str = Field(default="127.0.0.1:9464", description="/healthz and /metrics of the sidecar")
