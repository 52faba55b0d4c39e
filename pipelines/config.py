"""Typed configuration of the flows (`fleetledger run`, `backfill`, `serve`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from pipelines.attribution.labels import DEFAULT_REQUEST_ID_PATTERN


class PipelineConfig(BaseModel):
    weighting: Literal["tokens", "time"] = Field(default="tokens", description="how busy time is shared")
    decode_weight: float = Field(default=1.0, gt=0, description="weight of one decode token vs one prefill token")
    allowed_lateness_s: int = Field(default=3600, ge=0, description="late data within this re-attributes its window")
    task_runner: Literal["threads", "dask"] = Field(default="threads")
    max_workers: int = Field(default=2, ge=1)
    partitions_per_cluster: int = Field(
        default=0, ge=0, description="instance groups attributed as separate tasks; 0 = 2 x max_workers")
    request_id_pattern: str = Field(
        default=DEFAULT_REQUEST_ID_PATTERN,
        description="regex with named groups (workflow, tenant, route, reasoning_mode, request_class) applied to "
        "request ids of requests without labels; empty disables it",
    )
    report_path: str = Field(
        default="", description="write the HTML report (dashboards.report) here after each hourly run; empty = off")
    cron: str = Field(default="5 * * * *", description="schedule of the hourly flow under `fleetledger serve`")

    @field_validator("request_id_pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @property
    def partitions(self) -> int:
        return self.partitions_per_cluster or 2 * self.max_workers
