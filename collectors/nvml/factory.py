"""Builds the NVML sampler from the sidecar config.

``backend = "pynvml"`` uses nvidia-ml-py's ``pynvml``; when the driver cannot be initialised
(no GPU, no driver, a container without the NVIDIA runtime) one line is logged, the failure is
counted (``errors{component=nvml,kind=unavailable}``) and the sidecar runs its other collectors.
``backend = "simulated"`` needs the NVML-shaped module passed in as ``nvml_module`` (the CLI
builds a small ``simulator.nvml.SimNVML`` fleet; collectors never import the simulator).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from collectors.component import Component, Consumer
from collectors.config import CollectorConfig
from collectors.nvml.sampler import NvmlSampler
from collectors.telemetry import Telemetry

log = logging.getLogger(__name__)


def create_components(
    config: CollectorConfig,
    consumer: Consumer,
    telemetry: Telemetry,
    *,
    nvml_module: Any = None,
    now_ns: Callable[[], int] = time.time_ns,
) -> list[Component]:
    nc = config.nvml
    if not nc.enabled:
        return []
    module = nvml_module
    if module is None:
        if nc.backend == "simulated":
            log.warning("collect.nvml.backend is 'simulated' but no simulated NVML module was given; NVML sampling is off")
            return []
        try:
            import pynvml as module  # noqa: PLC0415 - optional at runtime
        except ImportError:
            log.warning("nvidia-ml-py (pynvml) is not installed; NVML sampling is off, other collectors run")
            telemetry.add("errors", component="nvml", kind="unavailable")
            return []
    sampler = NvmlSampler(module, consumer, telemetry, nc, now_ns,
                          cluster=config.cluster, node=config.node or socket.gethostname())
    try:
        sampler.initialise()
    except Exception as exc:  # no driver / no GPU: one line, then the other collectors run
        log.warning("NVML cannot be initialised (%s); NVML sampling is off, the other collectors run", exc)
        telemetry.add("errors", component="nvml", kind="unavailable")
        return []
    return [sampler]
