"""Benchmarks: each module prints its figures as JSON lines, its baseline measured side by side."""
