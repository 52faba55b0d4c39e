"""`fleetledger report` and `fleetledger export focus` through the real CLI app and store."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dashboards.report import load_dashboards
from dashboards.sample_data import FleetSpec, populate
from fleetledger.cli.main import app
from schemas import Store

runner = CliRunner()
SPEC = FleetSpec(gpus=24, days=1, start=datetime(2026, 11, 20, tzinfo=UTC), sample_interval_s=900)


@pytest.fixture
def dsn(tmp_path):
    """A store holding a small synthetic fleet, closed again so the CLI can open it."""
    dsn = f"chdb://{tmp_path / 'cli-store'}"
    st = Store.open(dsn, ttl_raw_days=0)
    try:
        st.migrate()
        populate(st, SPEC)
        reserved = st.query_rows("SELECT sum(reserved_cost_usd) FROM idle_costs_hourly FINAL")[0][0]
    finally:
        st.close()
    return dsn, reserved


def _run(dsn, *args):
    return runner.invoke(app, ["--store", dsn, *args], catch_exceptions=False)


def test_report_writes_html_for_the_given_range(dsn, tmp_path):
    out = tmp_path / "r.html"
    res = _run(dsn[0], "report", "--out", str(out), "--from", "2026-11-20", "--to", "2026-11-21T00:00:00Z")
    assert res.exit_code == 0, res.output
    n_panels = sum(len(d["panels"]) for d in load_dashboards())
    assert f"{n_panels} panels" in " ".join(res.output.split())
    html = out.read_text()
    assert "2026-11-20 00:00 .. 2026-11-21 00:00 UTC" in html and 'data-charts-expected="' in html


def test_report_defaults_to_the_last_week_of_data(dsn, tmp_path):
    out = tmp_path / "r.html"
    res = _run(dsn[0], "report", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "2026-11-14 00:00 .. 2026-11-21 00:00 UTC" in out.read_text()


def test_report_rejects_bad_times(dsn, tmp_path):
    res = runner.invoke(app, ["--store", dsn[0], "report", "--from", "yesterday-ish"])
    assert res.exit_code == 2 and "ISO-8601" in res.output
    res = runner.invoke(app, ["--store", dsn[0], "report", "--from", "2026-11-21", "--to", "2026-11-20"])
    assert res.exit_code == 2 and "after" in res.output


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_focus(dsn, tmp_path, fmt):
    out = tmp_path / f"focus.{fmt}"
    res = _run(dsn[0], "export", "focus", "--from", "2026-11-20", "--to", "2026-11-21", "--format", fmt,
               "--out", str(out))
    assert res.exit_code == 0, res.output
    table = pq.read_table(out) if fmt == "parquet" else pacsv.read_csv(out)
    assert table.num_rows > 0 and "CommitmentDiscountStatus" in table.column_names
    effective = sum(v for v in table["EffectiveCost"].to_pylist())
    assert math.isclose(effective, dsn[1], rel_tol=1e-9)


def test_export_focus_needs_a_period_and_known_format(dsn, tmp_path):
    res = runner.invoke(app, ["--store", dsn[0], "export", "focus", "--to", "2026-11-21", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "--from" in res.output
    res = runner.invoke(app, ["--store", dsn[0], "export", "focus", "--from", "2026-11-20", "--to", "2026-11-21",
                              "--format", "xlsx", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
