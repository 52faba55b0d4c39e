"""Shared fixtures. Only one chDB directory may be open per process at a time: use the
``store`` fixture (a fresh embedded store per test, closed afterwards) and never keep a Store
open across tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT.parent / "shared" / "fixtures"

os.environ.setdefault("PREFECT_HOME", str(ROOT / ".prefect" / "tests"))
Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
for _key in [k for k in os.environ if k.startswith("FLEETLEDGER_")]:
    del os.environ[_key]  # tests never inherit a developer's settings


@pytest.fixture
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"shared fixtures not found at {FIXTURES}; the repo expects ../shared/fixtures beside it")
    return FIXTURES


@pytest.fixture
def store(tmp_path):
    """A fresh, migrated embedded store; closed after the test. Retention is off (TTL 0) so
    tests may use fixed dates of any age without rows expiring under them."""
    from schemas import Store

    st = Store.open(f"chdb://{tmp_path / 'store'}", ttl_raw_days=0)
    st.migrate()
    try:
        yield st
    finally:
        st.close()


@pytest.fixture(scope="session")
def prefect_harness():
    """One Prefect test server for the whole session; request it only for real flow runs."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
