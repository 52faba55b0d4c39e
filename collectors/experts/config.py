"""Typed configuration of the expert-routing collectors (section ``[collect.experts]``).

Dump folders and EPLB log files normally come from the engines list
(``[[collect.engines]]`` ``expert_dump_dir`` / ``eplb_log_file``); ``dumps`` and ``eplb_logs``
here add sources for engines that are not listed there. The knobs apply to every source.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field


class ExpertDumpSource(BaseModel):
    engine_instance: str = Field(min_length=1)
    model: str = ""
    directory: Path


class EplbLogSource(BaseModel):
    engine_instance: str = Field(min_length=1)
    model: str = ""
    path: Path


class ExpertsConfig(BaseModel):
    enabled: bool = Field(default=True, description="run the dump watchers and EPLB log tailers")
    poll_interval_s: float = Field(default=5.0, gt=0, description="how often folders and logs are checked")
    window_s: float = Field(default=3600.0, gt=0, description="window of the first dump when no earlier dump exists")
    settle_s: float = Field(default=2.0, ge=0, description="a dump is read once unchanged this long (still being written)")
    rank_merge_s: float = Field(default=10.0, ge=0, description="per_pass rank files this close in time form one window")
    read_existing: bool = Field(default=True, description="read dumps and log lines already present at start "
                                "(re-reading is idempotent: the store deduplicates identical rows)")
    max_pending_rows: int = Field(default=200_000, gt=0, description="log rows kept while the spool refuses; oldest dropped")
    dumps: list[ExpertDumpSource] = Field(default_factory=list)
    eplb_logs: list[EplbLogSource] = Field(default_factory=list)
