"""FOCUS 1.3 export: the invariants FinOps tools rely on, checked on the real engine."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from dashboards.focus import REQUIRED_COLUMNS, FocusExportError, export_focus, focus_rows
from dashboards.sample_data import derived_tables, layout


def _focus(store, spec) -> pl.DataFrame:
    return pl.from_arrow(focus_rows(store, spec.start, spec.end))


def _idle(store) -> pl.DataFrame:
    return store.query_polars(
        "SELECT reservation_id, pricing_model, sum(reserved_cost_usd) AS reserved, sum(idle_cost_usd) AS idle "
        "FROM idle_costs_hourly FINAL GROUP BY reservation_id, pricing_model")


def test_every_focus_column_is_present(fleet_store, fleet_spec):
    table = focus_rows(fleet_store, fleet_spec.start, fleet_spec.end)
    assert table.num_rows > 0
    assert set(REQUIRED_COLUMNS) <= set(table.column_names)
    df = pl.from_arrow(table)
    assert set(df["ChargeCategory"].unique()) == {"Usage", "Purchase"}
    assert set(df["CommitmentDiscountStatus"].drop_nulls().unique()) == {"Used", "Unused"}
    assert (df["ChargePeriodEnd"] - df["ChargePeriodStart"]).unique().to_list() == [timedelta(hours=1)]
    tags = json.loads(df["Tags"][0])
    assert tags["fleetledger.cluster"] == "default" and "fleetledger.owner_team" in tags


def test_used_plus_unused_is_the_reservation_cost_and_unused_is_idle(fleet_store, fleet_spec):
    focus = _focus(fleet_store, fleet_spec)
    idle = _idle(fleet_store)
    usage = focus.filter(pl.col("ChargeCategory") == "Usage")
    per_res = usage.group_by("x_ReservationId").agg(
        pl.col("EffectiveCost").sum().alias("effective"),
        pl.col("EffectiveCost").filter(pl.col("CommitmentDiscountStatus") == "Unused").sum().alias("unused"),
        pl.col("EffectiveCost").filter(pl.col("Tags").str.contains('"fleetledger.idle":"true"')).sum().alias("idle_rows"),
    ).join(idle, left_on="x_ReservationId", right_on="reservation_id")
    assert per_res.height == idle.height >= 3
    assert set(per_res["pricing_model"]) >= {"reserved", "on_demand"}
    for row in per_res.iter_rows(named=True):
        assert math.isclose(row["effective"], row["reserved"], rel_tol=1e-9), row
        assert math.isclose(row["idle_rows"], row["idle"], rel_tol=1e-9), row
        if row["pricing_model"] == "reserved":
            assert math.isclose(row["unused"], row["idle"], rel_tol=1e-9), row
        else:
            assert row["unused"] == 0  # no commitment, nothing can be Unused
    # the invoice: reserved GPUs are billed by the Purchase rows, the rest by their usage
    billed = focus.group_by("x_ReservationId").agg(pl.col("BilledCost").sum()).join(
        idle, left_on="x_ReservationId", right_on="reservation_id")
    for row in billed.iter_rows(named=True):
        assert math.isclose(row["BilledCost"], row["reserved"], rel_tol=1e-9), row
    purchases = focus.filter(pl.col("ChargeCategory") == "Purchase")
    assert purchases["EffectiveCost"].sum() == 0 and purchases["CommitmentDiscountId"].null_count() == 0


def test_allocation_ratios_of_one_charge_sum_to_one(fleet_store, fleet_spec):
    split = _focus(fleet_store, fleet_spec).filter(pl.col("AllocatedMethodId").is_not_null())
    assert split.height > 0
    details = [json.loads(text) for text in split["AllocatedMethodDetails"]]
    assert all(d["OriginChargeId"] == o for d, o in zip(details, split["x_OriginChargeId"], strict=True))
    ratios = split.with_columns(pl.Series("detail_ratio", [d["AllocatedRatio"] for d in details]))
    sums = ratios.group_by("x_OriginChargeId").agg(pl.col("x_AllocatedRatio").sum(), pl.col("detail_ratio").sum(),
                                                  pl.len().alias("n"))
    assert sums["n"].max() > 1  # charges really are split
    assert ((sums["x_AllocatedRatio"] - 1).abs() < 1e-9).all()
    assert ((sums["detail_ratio"] - 1).abs() < 1e-4).all()  # JSON carries the ratio too
    # split rows keep the origin's dimensions and divide its metrics
    origin = split.group_by("x_OriginChargeId").agg(
        pl.col("ResourceId").n_unique().alias("resources"), pl.col("ContractedUnitPrice").n_unique().alias("prices"))
    assert origin["resources"].max() == 1 and origin["prices"].max() == 1


def test_split_follows_the_workflow_cost_shares_of_the_model(fleet_store, fleet_spec):
    focus = _focus(fleet_store, fleet_spec).filter(pl.col("CommitmentDiscountStatus") == "Used")
    wf = fleet_store.query_polars(
        "SELECT model, workflow, sum(cost_usd) AS cost FROM workflow_costs_hourly FINAL GROUP BY model, workflow")
    got = focus.group_by("x_Model", "x_Workflow").agg(pl.col("EffectiveCost").sum())
    # only the reserved part is 'Used'; its per-model shares must match the workflow shares
    for model in fleet_spec.models:
        g = got.filter(pl.col("x_Model") == model)
        w = wf.filter(pl.col("model") == model)
        if g.height == 0:
            continue
        share_g = dict(zip(g["x_Workflow"], g["EffectiveCost"] / g["EffectiveCost"].sum(), strict=True))
        share_w = dict(zip(w["workflow"], w["cost"] / w["cost"].sum(), strict=True))
        for k, v in share_g.items():
            assert abs(v - share_w[k]) < 0.05, (model, k)


def test_list_cost_uses_the_catalog_and_falls_back_to_the_rate(fleet_store, fleet_spec):
    focus = _focus(fleet_store, fleet_spec).filter(pl.col("ChargeCategory") == "Usage")
    h100 = focus.filter(pl.col("SkuId").str.starts_with("NVIDIA H100"))
    a100 = focus.filter(pl.col("SkuId").str.starts_with("NVIDIA A100"))
    assert h100.height and a100.height
    assert set(h100["ListUnitPrice"].round(6)) == {4.10}  # from prices (on_demand list)
    assert (a100["ListUnitPrice"] == a100["ContractedUnitPrice"]).all()  # no list price: the rate
    assert ((focus["ListCost"] - focus["ListUnitPrice"] * focus["PricingQuantity"]).abs() < 1e-9).all()


def test_a_rerun_window_replaces_rows_instead_of_adding(fleet_store, fleet_spec):
    before = _focus(fleet_store, fleet_spec)["EffectiveCost"].sum()
    tables = derived_tables(fleet_spec, layout(fleet_spec), run_version=2)
    idle = tables["idle_costs_hourly"]
    doubled = idle.set_column(idle.schema.get_field_index("reserved_cost_usd"), "reserved_cost_usd",
                              pa.compute.multiply(idle["reserved_cost_usd"], 2.0))
    fleet_store.insert("idle_costs_hourly", doubled)
    after = _focus(fleet_store, fleet_spec)
    new_reserved = fleet_store.query_rows("SELECT sum(reserved_cost_usd) FROM idle_costs_hourly FINAL")[0][0]
    assert math.isclose(after["EffectiveCost"].sum(), new_reserved, rel_tol=1e-9)
    assert after["EffectiveCost"].sum() > before * 1.5


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_export_writes_the_period(fleet_store, fleet_spec, tmp_path, fmt):
    out = tmp_path / f"focus.{fmt}"
    day = fleet_spec.start + timedelta(days=1)
    result = export_focus(fleet_store, fleet_spec.start, day, fmt, out)
    table = pq.read_table(out) if fmt == "parquet" else pacsv.read_csv(out)
    assert table.num_rows == result.rows > 0
    assert set(REQUIRED_COLUMNS) <= set(table.column_names)
    starts = pl.from_arrow(table)["ChargePeriodStart"]
    assert starts.min().replace(tzinfo=None) == fleet_spec.start.replace(tzinfo=None)
    assert starts.max().replace(tzinfo=None) < day.replace(tzinfo=None)
    day_cost = fleet_store.query_rows(
        "SELECT sum(reserved_cost_usd) FROM idle_costs_hourly FINAL WHERE hour < {d:DateTime64(3)}",
        {"d": day.replace(tzinfo=None)})[0][0]
    assert math.isclose(result.effective_cost, day_cost, rel_tol=1e-9)
    assert math.isclose(result.billed_cost, day_cost, rel_tol=1e-9)
    assert not list(tmp_path.glob("*.partial"))


def test_export_refuses_bad_requests(fleet_store, fleet_spec, tmp_path):
    with pytest.raises(FocusExportError, match="after"):
        export_focus(fleet_store, fleet_spec.end, fleet_spec.start, "csv", tmp_path / "x.csv")
    with pytest.raises(FocusExportError, match="format"):
        export_focus(fleet_store, fleet_spec.start, fleet_spec.end, "xlsx", tmp_path / "x.xlsx")
    assert not (tmp_path / "x.csv").exists()
