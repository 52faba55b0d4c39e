"""The ledger must balance: attributed + idle == total, for cost and for energy.

Totals come from the GPU side (every GPU's rate integrated over the window), attributed from
the request side (the sweep's charges), idle from the idle rows; they are computed by different
code paths, so a GPU owned by two instances at once, a lost segment, or a sort bug shows up
here. A failed check raises ``ConservationError`` and the run writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

REL_TOL = 1e-9
ABS_TOL = 1e-9


class ConservationError(RuntimeError):
    """Attributed + idle differs from the window's total; nothing was written."""


@dataclass(frozen=True)
class Totals:
    total_cost_usd: float
    attributed_cost_usd: float
    idle_cost_usd: float
    total_energy_j: float
    attributed_energy_j: float
    idle_energy_j: float

    def balanced(self, what: str) -> bool:
        total = getattr(self, f"total_{what}")
        parts = getattr(self, f"attributed_{what}") + getattr(self, f"idle_{what}")
        return abs(parts - total) <= REL_TOL * max(abs(total), abs(parts)) + ABS_TOL

    @property
    def ok(self) -> bool:
        return self.balanced("cost_usd") and self.balanced("energy_j")


def check(totals: Totals, where: str) -> None:
    """Raise ConservationError naming the window and both sides unless the ledger balances."""
    for what, unit in (("cost_usd", "$"), ("energy_j", "J")):
        if not totals.balanced(what):
            total = getattr(totals, f"total_{what}")
            att, idle = getattr(totals, f"attributed_{what}"), getattr(totals, f"idle_{what}")
            raise ConservationError(
                f"conservation failed for {where}: attributed {att:.12g} {unit} + idle {idle:.12g} {unit} "
                f"= {att + idle:.12g} {unit} but the window's total is {total:.12g} {unit} "
                f"(difference {att + idle - total:.3g}); nothing was written. Usual causes: a GPU placed in "
                "two engine instances at once, or overlapping placements; check engine_placements."
            )
