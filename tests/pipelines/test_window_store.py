"""Attribution through the real chDB store: inputs read back, re-runs replace, late spans re-run."""

from __future__ import annotations

import datetime as dt

import pytest

from pipelines.attribution import AttributionOptions, attribute_window
from pipelines.window_io import load_window_inputs, new_run_version, windows_due, write_window
from tests.pipelines.builders import at, frame, placement, reservation, samples, span

OPTS = AttributionOptions(weighting="time")


def seed(store, spans):
    store.insert("request_spans", frame("request_spans", spans))
    store.insert("engine_placements", frame("engine_placements", [placement("a", ["g1"]), placement("b", ["g2"])]))
    store.insert("reservations", frame("reservations", [reservation("res1", ["g1", "g2"], 36.0),
                                                        reservation("spare", ["g3"], 36.0, owner="team-b")]))
    store.insert("gpu_samples", frame("gpu_samples", samples("g1", [float(t) for t in range(-600, 4300, 60)], watts=400.0)))


def attribute(store, ws, we):
    inputs = load_window_inputs(store, "default", ws, we)
    version = new_run_version()
    result = attribute_window(inputs, OPTS, version)
    write_window(store, result, "default", ws, we, version)
    return result


def snapshot(store):
    return {
        "request_costs": sorted(store.query_rows(
            "SELECT request_id, workflow, round(cost_usd, 9), round(energy_j, 6) FROM request_costs FINAL")),
        "idle": sorted(store.query_rows(
            "SELECT gpu_uuid, reservation_id, round(idle_seconds, 6), round(idle_cost_usd, 9) FROM idle_costs_hourly FINAL")),
        "workflow": sorted(store.query_rows(
            "SELECT workflow, requests, round(cost_usd, 9) FROM workflow_costs_hourly FINAL")),
    }


def test_rerunning_a_window_gives_the_same_rows_and_no_duplicates(store):
    seed(store, [span("a", 100, prefill=10, decode=50, request_id="r1"),
                 span("b", 200, prefill=10, decode=50, request_id="r2", workflow="chat")])
    ws, we = at(0), at(3600)
    first = attribute(store, ws, we)
    snap1 = snapshot(store)
    attribute(store, ws, we)
    snap2 = snapshot(store)
    assert snap1 == snap2
    # with or without FINAL: the older version is gone
    assert store.count("request_costs") == 2
    assert store.count("idle_costs_hourly") == first.idle_costs_hourly.height
    assert store.query_rows("SELECT count() FROM attribution_runs")[0][0] == 1
    costs = dict((r[0], r[2]) for r in snap1["request_costs"])
    assert costs["r1"] == pytest.approx(0.60)  # 60 s alone on g1 at $0.01/s
    assert dict((r[0], r[3]) for r in snap1["request_costs"])["r1"] == pytest.approx(60 * 400.0)
    run = store.query_rows("SELECT total_cost_usd, attributed_cost_usd, idle_cost_usd, conservation_ok FROM attribution_runs")[0]
    assert run[0] == pytest.approx(3 * 36.0) and run[1] + run[2] == pytest.approx(run[0]) and run[3] is True


def test_late_span_marks_its_window_due_and_rerun_relabels(store):
    seed(store, [span("a", 100, prefill=10, decode=50, request_id="r1", received=200)])
    ws, we = at(0), at(3600)
    now = at(3 * 3600 + 60)  # last complete hour is [2h, 3h)
    attribute(store, ws, we)
    for h in (1, 2):
        attribute(store, at(h * 3600), at((h + 1) * 3600))
    due = windows_due(store, now, allowed_lateness_s=3 * 3600)
    assert due == [(at(2 * 3600), at(3 * 3600))]  # only the newest hour; hour 0 is up to date
    # a late span for hour 0 arrives after its run
    late_received = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5) - at(0)).total_seconds()
    store.insert("request_spans", frame("request_spans", [
        span("a", 130, prefill=10, decode=20, request_id="late", workflow="rag", received=late_received)]))
    due = windows_due(store, now, allowed_lateness_s=3 * 3600)
    assert (at(0), at(3600)) in due
    assert windows_due(store, now, allowed_lateness_s=0) == [(at(2 * 3600), at(3 * 3600))]  # beyond lateness
    attribute(store, ws, we)
    rows = dict((r[0], r[2]) for r in snapshot(store)["request_costs"])
    # r1 busy [100,160), late busy [130,160): overlap [130,160) shared -> r1 = 0.30 + 0.15, late = 0.15
    assert rows == pytest.approx({"r1": 0.45, "late": 0.15})
    assert store.query_rows("SELECT count() FROM attribution_runs WHERE window_start = {ws:DateTime64(3, 'UTC')}",
                            {"ws": ws})[0][0] == 1


def test_late_gpu_samples_loaded_from_the_spool_mark_their_window_due(store, tmp_path):
    from pipelines.ingest import ingest_spool
    from schemas.spool import write_segment

    seed(store, [span("a", 100, prefill=10, decode=50, request_id="r1", received=200)])
    now = at(3 * 3600 + 60)
    for h in (0, 1, 2):
        attribute(store, at(h * 3600), at((h + 1) * 3600))
    before = {r[0]: r[3] for r in snapshot(store)["request_costs"]}
    assert windows_due(store, now, allowed_lateness_s=3 * 3600) == [(at(2 * 3600), at(3 * 3600))]
    # GPU g2 (instance b, idle) reports late: its samples for hour 1 reach the spool after hour 1 ran
    late = frame("gpu_samples", samples("g2", [float(t) for t in range(3600, 7200, 60)], watts=300.0)).to_arrow()
    write_segment(tmp_path / "spool", "gpu_samples", late, "node-b", 1_000, 1)
    ingest_spool(store, tmp_path / "spool")
    due = windows_due(store, now, allowed_lateness_s=3 * 3600)
    assert (at(3600), at(7200)) in due and (at(0), at(3600)) not in due  # only the hour the samples cover
    assert windows_due(store, now, allowed_lateness_s=0) == [(at(2 * 3600), at(3 * 3600))]  # beyond lateness
    attribute(store, at(3600), at(7200))
    assert (at(3600), at(7200)) not in windows_due(store, now, allowed_lateness_s=3 * 3600)  # up to date again
    idle_energy = store.query_rows(
        "SELECT sum(idle_energy_j) FROM idle_costs_hourly FINAL WHERE gpu_uuid = 'g2' AND hour = {h:DateTime64(3, 'UTC')}",
        {"h": at(3600)})[0][0]
    assert idle_energy == pytest.approx(300.0 * 3540, rel=0.05)  # the late samples' energy is now on the bill
    assert {r[0]: r[3] for r in snapshot(store)["request_costs"]} == before  # r1 (hour 0) untouched
