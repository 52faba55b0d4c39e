"""Typed configuration of the Prometheus scraper (`[collect.scrape]`).

Targets come from ``[[collect.scrape.targets]]`` and from every ``[[collect.engines]]`` entry
with a ``metrics_url`` (scraped at the default interval and timeout, named by the engine).
"""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator


class ScrapeTarget(BaseModel):
    url: str = Field(description="http(s) URL of a /metrics endpoint")
    engine_instance: str = Field(default="", description="engine instance the samples belong to; '' = the URL")
    engine_kind: str = Field(default="", description="'vllm' | 'sglang'; '' = from the metric prefix")
    interval_s: float | None = Field(default=None, gt=0, description="default: scrape.interval_s")
    timeout_s: float | None = Field(default=None, gt=0, description="default: scrape.timeout_s")
    bearer_token: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class ScrapeConfig(BaseModel):
    enabled: bool = Field(default=True, description="run the scraper when it has targets")
    interval_s: float = Field(default=15.0, gt=0)
    timeout_s: float = Field(default=5.0, gt=0)
    max_body_bytes: int = Field(default=16 << 20, gt=0, description="larger /metrics bodies are a failed scrape")
    metric_prefixes: list[str] = Field(default_factory=lambda: ["vllm:", "sglang:"],
                                       description="samples kept; [] keeps every series")
    targets: list[ScrapeTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _timeouts_fit(self):
        for t in self.targets:
            interval = t.interval_s or self.interval_s
            timeout = t.timeout_s or self.timeout_s
            if timeout > interval:
                raise ValueError(f"target {t.url}: timeout_s {timeout} is longer than interval_s {interval}")
        return self
