"""What the NVML sampler keeps per GPU between passes, and its internal lost-GPU signal."""

from __future__ import annotations

from typing import Any


class GpuState:
    """What the sampler keeps per GPU between passes."""

    __slots__ = ("index", "handle", "uuid", "model", "unsupported", "lost", "last_proc_ts", "errors_seen")

    def __init__(self, index: int, handle: Any, uuid: str, model: str) -> None:
        self.index = index
        self.handle = handle
        self.uuid = uuid
        self.model = model
        self.unsupported: set[str] = set()
        self.lost = False
        self.last_proc_ts = 0
        self.errors_seen: set[str] = set()


class GpuLost(Exception):
    """Internal: the GPU answered NVMLError_GpuIsLost."""
