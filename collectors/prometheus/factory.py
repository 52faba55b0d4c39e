"""Builds the Prometheus scraper from the collector config (called by ``collectors.sidecar``).

Targets: ``[[collect.scrape.targets]]`` plus every engine with a ``metrics_url`` (unless a
target already has that URL). A target's instance defaults to the engine whose ``metrics_url``
it is, else to the URL; its node to that engine's node, else the collector's node.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collectors.engines import collector_node
from collectors.prometheus.config import ScrapeConfig
from collectors.prometheus.scraper import PrometheusScraper, Target

if TYPE_CHECKING:
    from collectors.component import Component, Consumer
    from collectors.config import CollectorConfig
    from collectors.telemetry import Telemetry


def build_targets(scrape: ScrapeConfig, engines, node: str) -> list[Target]:
    by_url = {e.metrics_url: e for e in engines if e.metrics_url}
    by_instance = {e.instance: e for e in engines}
    targets: list[Target] = []
    seen: set[str] = set()
    for t in scrape.targets:
        engine = by_url.get(t.url) or by_instance.get(t.engine_instance)
        instance = t.engine_instance or (engine.instance if engine else t.url)
        targets.append(Target(
            url=t.url,
            engine_instance=instance,
            engine_kind=t.engine_kind or (engine.engine_kind if engine else ""),
            node=(engine.node if engine and engine.node else node),
            interval_s=t.interval_s or scrape.interval_s,
            timeout_s=t.timeout_s or scrape.timeout_s,
            bearer_token=t.bearer_token.get_secret_value() if t.bearer_token else None,
        ))
        seen.add(t.url)
    for url, engine in by_url.items():
        if url not in seen:
            targets.append(Target(url, engine.instance, engine.engine_kind, engine.node or node,
                                  scrape.interval_s, min(scrape.timeout_s, scrape.interval_s)))
    return targets


def create_components(config: CollectorConfig, consumer: Consumer, telemetry: Telemetry) -> list[Component]:
    scrape: ScrapeConfig = getattr(config, "scrape", None) or ScrapeConfig()
    if not scrape.enabled:
        return []
    targets = build_targets(scrape, getattr(config, "engines", []) or [], collector_node(config))
    if not targets:
        return []
    return [PrometheusScraper(targets, config.cluster, consumer, telemetry, scrape.metric_prefixes,
                              scrape.max_body_bytes)]
