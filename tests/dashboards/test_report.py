"""The offline HTML report: self-contained, same numbers as the panel SQL, and it draws in a
real headless Chromium without console errors (screenshot kept under test-artifacts/)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from dashboards.report import collect, default_range, load_dashboards, render_html, write_report

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def _payload(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m, "report data block missing"
    return json.loads(m.group(1))


def test_report_is_self_contained_and_carries_every_panel(fleet_store, fleet_spec, tmp_path):
    out = tmp_path / "report.html"
    summary = write_report(fleet_store, out, fleet_spec.start, fleet_spec.end)
    html = out.read_text()
    n_panels = sum(len(d["panels"]) for d in load_dashboards())
    assert summary.panels == n_panels and summary.empty_panels == []
    assert str(summary) == str(out) and Path(summary) == out and summary["path"] == str(out)  # path-like too
    assert not re.search(r'<(script|link|img|iframe)[^>]*\b(src|href)=', html), "external resource in report"
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "") and "https://" not in html
    assert f'data-charts-expected="{n_panels}"' in html
    data = _payload(html)
    assert [v["title"] for v in data["views"]] == [d["title"] for d in load_dashboards()]


def test_report_numbers_are_the_ledger(fleet_store, fleet_spec):
    views = collect(fleet_store, fleet_spec.start, fleet_spec.end)
    panels = {p["title"]: p for v in views for p in v["panels"]}
    total = panels["Total attributed cost"]["data"]["columns"][0]["values"][0]
    ledger = fleet_store.query_rows("SELECT sum(cost_usd) FROM workflow_costs_hourly FINAL")[0][0]
    assert math.isclose(total, ledger, rel_tol=1e-9)
    trend = panels["Cost by workflow"]["data"]["columns"]
    assert trend[0]["kind"] == "time" and math.isclose(sum(trend[2]["values"]), ledger, rel_tol=1e-9)
    idle = panels["Idle $ by reservation"]["data"]["columns"][1]["values"]
    assert math.isclose(sum(idle), fleet_store.query_rows(
        "SELECT sum(idle_cost_usd) FROM idle_costs_hourly FINAL")[0][0], rel_tol=1e-9)


def test_default_range_ends_at_the_last_hour_with_data(fleet_store, fleet_spec):
    start, end = default_range(fleet_store)
    assert end == fleet_spec.end and (end - start).days == 7


def test_html_escapes_data_that_looks_like_markup():
    views = [{"uid": "x", "title": "fleetledger / X", "description": "", "panels": [{
        "id": 1, "title": "t", "type": "barchart", "unit": "none", "description": "",
        "data": {"columns": [{"name": "w", "kind": "string", "values": ["</script><b>x"]},
                             {"name": "v", "kind": "number", "values": [1.0]}], "rows": 1}}]}]
    from datetime import UTC, datetime

    html = render_html(views, datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC))
    assert "</script><b>" not in html and _payload(html)["views"][0]["panels"][0]["data"]["columns"][0]["values"] == [
        "</script><b>x"]


def _chromium(*args: str, user_dir: Path, timeout: int = 90) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={user_dir}", "--virtual-time-budget=10000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed: `make browser` (apt-get install chromium) first")
def test_report_draws_every_chart_in_headless_chromium(fleet_store, fleet_spec, tmp_path):
    out = tmp_path / "report.html"
    write_report(fleet_store, out, fleet_spec.start, fleet_spec.end)
    url = out.as_uri() + "#all"
    run = _chromium("--enable-logging=stderr", "--v=0", "--dump-dom", url, user_dir=tmp_path / "profile")
    assert run.returncode == 0, run.stderr[-2000:]
    console_errors = [ln for ln in run.stderr.splitlines() if "Uncaught" in ln or ("CONSOLE" in ln and "ERROR" in ln)]
    assert console_errors == [], console_errors
    dom = run.stdout
    n_panels = sum(len(d["panels"]) for d in load_dashboards())
    drawn = re.search(r'data-charts-drawn="(\d+)"', dom)
    assert drawn and int(drawn.group(1)) == n_panels, "the page script did not draw every chart"
    assert dom.count('data-drawn="1"') == n_panels
    graphic = sum(1 for d in load_dashboards() for p in d["panels"] if p["type"] not in ("table", "stat"))
    assert dom.count("<svg") == graphic and dom.count("<polyline") > 0 and dom.count("<table") == 3
    assert 'class="empty"' not in dom

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    shot.unlink(missing_ok=True)
    run = _chromium("--hide-scrollbars", "--window-size=1400,5600", f"--screenshot={shot}", url,
                    user_dir=tmp_path / "profile2")
    assert run.returncode == 0 and shot.exists() and shot.stat().st_size > 20_000, run.stderr[-2000:]
    shutil.copy(out, ARTIFACTS / "report.html")
