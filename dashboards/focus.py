"""FOCUS 1.3 export: the rows of the ``focus_costs_v`` view for a period, as Parquet or CSV.

The view (``schemas/migrations/0003_finops_views.sql``) holds the method: hourly charge
periods per reservation and node; reserved GPUs as a recurring Purchase (BilledCost) plus
Usage rows with CommitmentDiscountStatus Used / Unused (EffectiveCost); busy cost split by
workflow and tenant with AllocatedMethodId / AllocatedMethodDetails. This module selects the
period (parameterised SQL), orders the rows and writes the file. ``Tags`` is a JSON object
string (FOCUS KeyValueFormat); columns prefixed ``x_`` are fleetledger extensions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv")

# FOCUS 1.3 columns the export must always carry (the view has more).
REQUIRED_COLUMNS = (
    "BilledCost", "EffectiveCost", "ListCost", "ContractedCost", "ChargePeriodStart", "ChargePeriodEnd",
    "ChargeCategory", "ConsumedQuantity", "ConsumedUnit", "PricingQuantity", "PricingUnit", "ResourceId",
    "ResourceType", "ServiceName", "ServiceCategory", "SkuId", "Tags", "CommitmentDiscountId",
    "CommitmentDiscountType", "CommitmentDiscountStatus", "AllocatedMethodId", "AllocatedMethodDetails",
    "BillingCurrency", "BillingPeriodStart", "BillingPeriodEnd", "ProviderName",
)

_QUERY = """
SELECT *
FROM focus_costs_v
WHERE ChargePeriodStart >= {start:DateTime64(3, 'UTC')} AND ChargePeriodStart < {end:DateTime64(3, 'UTC')}
ORDER BY ChargePeriodStart, x_ReservationId, ChargeCategory DESC, ResourceId, x_OriginChargeId, x_Workflow, x_Tenant
"""


class FocusExportError(ValueError):
    """An export that cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class FocusExport:
    path: Path
    rows: int
    billed_cost: float
    effective_cost: float
    start: datetime
    end: datetime


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def focus_rows(store, start: datetime, end: datetime) -> pa.Table:
    """FOCUS rows whose charge period starts in [start, end)."""
    start, end = _utc(start), _utc(end)
    if end <= start:
        raise FocusExportError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    table = store.query_arrow(_QUERY, {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)})
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise FocusExportError(f"focus_costs_v lacks FOCUS columns {missing}; run `fleetledger init` to migrate")
    return table


def write_focus(table: pa.Table, out: Path, fmt: str) -> None:
    if fmt not in FORMATS:
        raise FocusExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    if fmt == "parquet":
        pq.write_table(table, tmp, compression="zstd")
    else:
        pacsv.write_csv(table, tmp)
    tmp.replace(out)  # a reader never sees half a file


def export_focus(store, start: datetime, end: datetime, fmt: str, out: Path) -> FocusExport:
    """Write the FOCUS rows of [start, end) to ``out``; returns what was written."""
    if fmt not in FORMATS:
        raise FocusExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    table = focus_rows(store, start, end)
    write_focus(table, out, fmt)
    billed = pc.sum(table["BilledCost"]).as_py() or 0.0
    effective = pc.sum(table["EffectiveCost"]).as_py() or 0.0
    return FocusExport(Path(out), table.num_rows, float(billed), float(effective), _utc(start), _utc(end))
