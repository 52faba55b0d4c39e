"""Fixtures of the dashboard tests: a small synthetic fleet inserted into the real store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dashboards.sample_data import FleetSpec, populate


@pytest.fixture
def fleet_spec() -> FleetSpec:
    return FleetSpec(gpus=48, days=2, start=datetime(2026, 11, 20, tzinfo=UTC), sample_interval_s=600,
                     nodes_per_reservation=2)


@pytest.fixture
def fleet_store(store, fleet_spec):
    """The ``store`` fixture holding the synthetic fleet (6 nodes, 3 reservations, 2 days)."""
    populate(store, fleet_spec)
    return store
