"""Builds the DCGM exporter scraper when ``collect.dcgm.enabled``."""

from __future__ import annotations

import socket

from collectors.component import Component, Consumer
from collectors.config import CollectorConfig
from collectors.dcgm.scraper import DcgmScraper
from collectors.telemetry import Telemetry


def create_components(config: CollectorConfig, consumer: Consumer, telemetry: Telemetry) -> list[Component]:
    if not config.dcgm.enabled:
        return []
    return [DcgmScraper(config.dcgm, consumer, telemetry, cluster=config.cluster,
                        node=config.node or socket.gethostname())]
