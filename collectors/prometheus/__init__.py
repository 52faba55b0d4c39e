"""Prometheus scraper for serving-engine ``/metrics`` (vLLM, SGLang) -> ``engine_metrics`` rows."""
