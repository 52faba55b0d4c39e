"""A one-hour demo end to end: simulator -> real collectors -> spool -> flow -> cost tables -> report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fleetledger.cli.main import app
from schemas import Store


@pytest.mark.slow
def test_one_hour_demo_meets_its_promises(tmp_path, prefect_harness):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--hours", "1", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output[-3000:]
    assert "Conservation over 1 hourly windows" in result.output and "holds" in result.output

    summary = json.loads((out / "summary.json").read_text())
    assert summary["conservation_ok"] is True
    assert abs(summary["conservation_gap_usd"]) < 1e-6
    assert summary["worst_workflow_error"] <= 0.03
    assert summary["request_error"]["requests"] > 1000
    for table in ("request_spans", "trace_labels", "gpu_samples", "engine_metrics", "expert_loads", "engine_placements"):
        assert summary["ingested_rows"].get(table, 0) > 0, table

    html = (out / "report.html").read_text()
    assert "<svg" in html or "data-charts" in html
    assert "http://" not in html.split("<body", 1)[1].split("</body>")[0].replace("http://www.w3.org", "")

    with Store.open(f"chdb://{out / 'store'}") as store:
        for table in ("request_costs", "workflow_costs_hourly", "idle_costs_hourly", "expert_hotness", "attribution_runs"):
            assert store.count(table, final=True) > 0, table
        # every simulated request was received, decoded and costed exactly once
        truth = summary["requests"]
        assert store.count("request_spans", final=True) == truth
        spans, costed = store.query_rows(
            "SELECT (SELECT uniqExact(request_id) FROM request_spans), (SELECT uniqExact(request_id) FROM request_costs)")[0]
        assert spans == costed == truth
        # the idle reservation with no engine shows up on its owner's bill
        idle = dict(store.query_rows(
            "SELECT owner_team, sum(idle_cost_usd) FROM idle_costs_hourly FINAL GROUP BY owner_team"))
        assert idle.get("ml-research", 0) > 0
