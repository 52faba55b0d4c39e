"""Typed configuration of the flows (`fleetledger run`, `backfill`, `serve`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PipelineConfig(BaseModel):
    weighting: Literal["tokens", "time"] = Field(default="tokens", description="how busy time is shared")
    decode_weight: float = Field(default=1.0, gt=0, description="weight of one decode token vs one prefill token")
    allowed_lateness_s: int = Field(default=3600, ge=0, description="late data within this re-attributes its window")
    task_runner: Literal["threads", "dask"] = Field(default="threads")
    max_workers: int = Field(default=2, ge=1)
