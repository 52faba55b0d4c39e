"""Prefect flows and the pure Polars maths they run: ingest, attribution, idle, experts.

Pipelines never import ``collectors``; they read what the collectors wrote through ``schemas``.
"""
