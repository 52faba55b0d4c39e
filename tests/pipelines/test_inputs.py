"""Reservations and prices files: CSV, Parquet, TOML; clear errors; history in the store."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from pipelines.inputs import InputFileError, load_prices, load_reservations, read_prices, read_reservations

CSV = """reservation_id,provider,pricing_model,gpu_model,cluster,nodes,gpu_uuids,gpu_count,usd_per_gpu_hour,owner_team,valid_from,valid_to
res-a,aws,reserved,NVIDIA H100 80GB HBM3,default,,GPU-1;GPU-2,2,2.5,search,2026-11-01T00:00:00Z,2027-11-01T00:00:00Z
res-b,aws,on_demand,NVIDIA H100 80GB HBM3,default,node-b,,8,0,infra,2026-11-01T00:00:00Z,
"""


def test_csv_reservations_parse_lists_times_and_defaults(tmp_path):
    f = tmp_path / "reservations.csv"
    f.write_text(CSV)
    t = read_reservations(f).to_pylist()
    assert t[0]["gpu_uuids"] == ["GPU-1", "GPU-2"] and t[0]["nodes"] == []
    assert t[0]["valid_from"].isoformat() == "2026-11-01T00:00:00+00:00"
    assert t[1]["nodes"] == ["node-b"] and t[1]["valid_to"].year == 2100 and t[1]["pricing_model"] == "on_demand"


def test_errors_name_file_row_and_column_and_load_nothing(tmp_path, store):
    f = tmp_path / "bad.csv"
    f.write_text(CSV.replace("2.5,search", "cheap,search").replace(",on_demand,", ",lease,"))
    with pytest.raises(InputFileError) as err:
        load_reservations(store, f)
    msg = str(err.value)
    assert "bad.csv row 1 (line 2), column usd_per_gpu_hour: 'cheap' is not a number" in msg
    assert "row 2 (line 3), column pricing_model: 'lease' is not one of reserved" in msg
    assert store.count("reservations") == 0


def test_toml_and_parquet_prices_and_history_kept(tmp_path, store):
    toml = tmp_path / "prices.toml"
    toml.write_text(
        '[[price]]\nprice_id = "h100-od"\nkind = "gpu"\npricing_model = "on_demand"\n'
        'gpu_model = "NVIDIA H100 80GB HBM3"\nusd_per_unit = 4.0\nvalid_from = 2026-11-01T00:00:00Z\n'
        '[[price]]\nprice_id = "grid"\nkind = "energy"\nusd_per_unit = 0.12\nvalid_from = "2026-11-01T00:00:00Z"\n'
    )
    assert load_prices(store, toml) == 2
    # a price change from a later date is a new period; the old one stays
    pq.write_table(read_prices(toml).slice(0, 1).drop(["loaded_at"]), tmp_path / "x.parquet")
    changed = tmp_path / "change.toml"
    changed.write_text(toml.read_text().split("[[price]]")[1].join(["[[price]]", ""]).replace(
        "4.0", "3.0").replace("2026-11-01", "2026-11-20"))
    load_prices(store, changed)
    load_prices(store, tmp_path / "x.parquet")  # reloading the same period replaces, not duplicates
    rows = store.query_rows("SELECT price_id, usd_per_unit, toString(valid_from) FROM prices FINAL ORDER BY price_id, valid_from")
    assert rows == [("grid", 0.12, "2026-11-01 00:00:00.000"), ("h100-od", 4.0, "2026-11-01 00:00:00.000"),
                    ("h100-od", 3.0, "2026-11-20 00:00:00.000")]


def test_price_unit_must_fit_kind(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text('[[price]]\nprice_id = "x"\nkind = "energy"\nunit = "gpu-hour"\nusd_per_unit = 1\nvalid_from = "2026-11-01"\n')
    with pytest.raises(InputFileError, match=r"\[\[price\]\] #1, column unit: 'gpu-hour' does not fit kind 'energy'"):
        read_prices(f)
