"""The hourly flow for real under Prefect: spool ingest, partitioned attribution, threads vs Dask."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.config import PipelineConfig
from pipelines.flows import run_hourly, run_windows
from schemas import Store
from schemas.spool import write_segment
from tests.pipelines.builders import at, frame, placement, reservation, samples, span


def seed(dsn: str, spool) -> None:
    spans = [span(inst, 60.0 * i + j, queue=0.5, prefill=2 + (i % 3), decode=20 + 3 * (i % 5),
                  prompt=500 + 37 * i, completion=50 + 11 * j, workflow=["chat", "rag", ""][i % 3],
                  request_id=f"summarize/acme/{inst}-{i}-{j}")
             for i in range(50) for j in range(3) for inst in ("a", "b", "c")]
    with Store.open(dsn) as store:
        store.migrate()
        store.insert("engine_placements", frame("engine_placements", [
            placement("a", ["g1", "g2"]), placement("b", ["g3"]), placement("c", ["g4"])]))
        store.insert("reservations", frame("reservations", [
            reservation("res1", ["g1", "g2", "g3"], 2.5), reservation("res2", ["g4", "g5"], 3.5, owner="team-b")]))
        rows = []
        for g in ("g1", "g2", "g3", "g4", "g5"):
            rows += samples(g, [float(t) for t in range(-300, 3900, 30)], watts=300.0 + 10 * int(g[1]))
        store.insert("gpu_samples", frame("gpu_samples", rows))
    # the spans arrive through the spool, as a sidecar would leave them
    write_segment(spool, "request_spans", frame("request_spans", spans).to_arrow(), "node-a", 1_000, 1)


def snapshot(dsn: str) -> dict:
    with Store.open(dsn) as store:
        return {
            "requests": sorted(store.query_rows(
                "SELECT span_id, workflow, tenant, round(cost_usd, 10), round(energy_j, 6), round(gpu_seconds, 8) "
                "FROM request_costs FINAL")),
            "idle": sorted(store.query_rows(
                "SELECT gpu_uuid, reservation_id, round(idle_seconds, 6), round(idle_cost_usd, 10) FROM idle_costs_hourly FINAL")),
            "workflow": sorted(store.query_rows(
                "SELECT workflow, requests, round(cost_usd, 9) FROM workflow_costs_hourly FINAL")),
            "raw_counts": store.query_rows(
                "SELECT (SELECT count() FROM request_costs), (SELECT count() FROM attribution_runs)")[0],
        }


@pytest.mark.slow
def test_hourly_flow_threads_and_dask_give_the_same_rows(tmp_path, prefect_harness):
    dsn = f"chdb://{tmp_path / 'store'}"
    spool = tmp_path / "spool"
    seed(dsn, spool)
    window = dict(window_start=at(0), window_end=at(3600))
    out = run_hourly(dsn, PipelineConfig(max_workers=2), spool_dir=spool, **window)
    assert out["ingest"]["rows"] == 450 and not any(spool.glob("*.arrows"))
    [summary] = out["windows"]
    assert summary["attributed_cost_usd"] + summary["idle_cost_usd"] == pytest.approx(summary["total_cost_usd"], rel=1e-9)
    assert summary["total_cost_usd"] == pytest.approx(3 * 2.5 + 2 * 3.5)
    threads = snapshot(dsn)
    assert len(threads["requests"]) == 450
    assert {w[0] for w in threads["workflow"]} == {"chat", "rag", "summarize"}  # '' spans labelled by request id

    out = run_hourly(dsn, PipelineConfig(task_runner="dask", max_workers=2, partitions_per_cluster=3), **window)
    dask = snapshot(dsn)
    assert dask == threads  # same rows, re-run replaced the old ones (450 rows, one run row)
    assert dask["raw_counts"] == (450, 1)

    # and the plain function with no Prefect at all agrees too
    with Store.open(dsn) as store:
        run_windows(store, [(at(0), at(3600))], PipelineConfig(partitions_per_cluster=1))
    assert snapshot(dsn) == threads


def test_last_complete_hour_is_due_by_default(tmp_path):
    from pipelines.window_io import windows_due
    with Store.open(f"chdb://{tmp_path / 's'}") as store:
        store.migrate()
        now = dt.datetime(2026, 11, 29, 5, 20, tzinfo=dt.UTC)
        assert windows_due(store, now, 0) == [(at(4 * 3600), at(5 * 3600))]
        # 2 h lateness at 05:20: [03:00, 04:00) ended 1 h 20 ago and was never run -> due; [02:00, 03:00) is too old
        assert windows_due(store, now, 2 * 3600) == [(at(3 * 3600), at(4 * 3600)), (at(4 * 3600), at(5 * 3600))]


def test_serve_deploys_the_hourly_flow_on_the_configured_cron(tmp_path):
    from pipelines.config import PipelineConfig
    from pipelines.flows import deployments

    cfg = PipelineConfig(cron="7 * * * *", weighting="time")
    [dep] = deployments("chdb:///var/lib/fleetledger/store", cfg, tmp_path / "spool")
    assert dep.name == "fleetledger-hourly"
    assert [s.schedule.cron for s in dep.schedules] == ["7 * * * *"]
    assert dep.parameters["store_dsn"] == "chdb:///var/lib/fleetledger/store"
    assert dep.parameters["spool_dir"] == str(tmp_path / "spool")
    assert dep.parameters["pipelines"]["weighting"] == "time"  # the run uses the settings it was served with
