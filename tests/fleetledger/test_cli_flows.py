"""`fleetledger reservations load`, `prices load` and argument errors of `run` / `backfill`."""

from __future__ import annotations

from typer.testing import CliRunner

from fleetledger.cli.main import app
from schemas import Store

runner = CliRunner()


def _run(dsn, *args):
    return runner.invoke(app, ["--store", dsn, *args], catch_exceptions=False)


def test_reservations_and_prices_load_and_bad_file_errors(tmp_path):
    dsn = f"chdb://{tmp_path / 'st'}"
    res = tmp_path / "reservations.csv"
    res.write_text("reservation_id,pricing_model,gpu_uuids,usd_per_gpu_hour,owner_team,valid_from\n"
                   "r1,reserved,GPU-1;GPU-2,2.5,search,2026-11-29T00:00:00Z\n")
    out = _run(dsn, "reservations", "load", str(res))
    assert out.exit_code == 0, out.output
    assert "loaded 1 reservations rows" in out.output
    bad = tmp_path / "prices.toml"
    bad.write_text('[[price]]\nprice_id = "p"\nkind = "gpu"\nusd_per_unit = -1\nvalid_from = "2026-11-29"\n')
    out = _run(dsn, "prices", "load", str(bad))
    assert out.exit_code == 2
    assert "column usd_per_unit" in out.output and "nothing loaded" in out.output
    with Store.open(dsn) as store:
        assert store.query_rows("SELECT gpu_uuids, owner_team FROM reservations") == [(["GPU-1", "GPU-2"], "search")]
        assert store.count("prices") == 0


def test_backfill_rejects_bad_times(tmp_path):
    dsn = f"chdb://{tmp_path / 'st'}"
    out = _run(dsn, "backfill", "--from", "yesterday", "--to", "2026-11-29T00:00:00Z")
    assert out.exit_code == 2 and "not an ISO-8601 time" in out.output
    out = _run(dsn, "backfill", "--from", "2026-11-29T05:00:00Z", "--to", "2026-11-29T01:00:00Z")
    assert out.exit_code == 2 and "is not after" in out.output
