"""The pure maths of attribution (DESIGN.md §4): step functions, weights, labels, prices and
energy, the per-instance prefix-sum sweep, idle time and the conservation check. No I/O here:
``window.attribute_window`` takes Polars frames and returns Polars frames."""

from pipelines.attribution.conservation import ConservationError, Totals
from pipelines.attribution.window import AttributionOptions, WindowInputs, WindowResult, attribute_window

__all__ = ["AttributionOptions", "ConservationError", "Totals", "WindowInputs", "WindowResult", "attribute_window"]
