"""Accuracy against the simulator's ground truth, end to end through the real collectors.

The simulator's truth comes from its own batch-step records; attribution sees only spans,
NVML samples, placements and the reservations/prices files (fleetledger.demo wires them).
"""

from __future__ import annotations

import pytest

from fleetledger.demo import DemoOptions, accuracy, request_error_quantiles, run_demo
from schemas import Store


@pytest.mark.slow
def test_per_workflow_cost_within_3_percent_of_ground_truth(tmp_path, prefect_harness):
    result = run_demo(DemoOptions(hours=1.0, nodes=2, seed=11, out=tmp_path / "demo"), lambda _s, _f: None)
    truth = tmp_path / "demo" / "ground_truth_requests.parquet"
    with Store.open(result.store_dsn) as store:
        acc = accuracy(store, truth, result.window_start, result.window_end)
        errors = request_error_quantiles(store, truth, result.window_start, result.window_end)
        runs = store.query_rows("SELECT sum(total_cost_usd), sum(attributed_cost_usd + idle_cost_usd), "
                                "min(conservation_ok) FROM attribution_runs FINAL")[0]
    assert acc.height >= 3
    assert acc["rel_error"].abs().max() <= 0.03, acc
    assert errors["p50"] < 0.03
    assert runs[0] > 0 and runs[1] == pytest.approx(runs[0], rel=1e-9) and runs[2]
