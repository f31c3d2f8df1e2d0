"""Stability budget: the time a product may spend outside its label range over its whole life (REFERENCE §4).

The budget is a cumulative rule with scope ``lifetime``: manufacturing, warehouses, every transport leg and
the pharmacy all spend from it, and it never resets between legs. The evaluation of one shipment knows the
minutes the lot spent before (an input) and the minutes this shipment spent; the lot's total is their sum.

Worked example (REFERENCE §4): 72 h allowed cumulatively at 8–25 °C; legs consume 3.5 h, 0 h, 20 h: 48.5 h
remain.
"""

from __future__ import annotations

import math

import msgspec

from coldchain.domain.profiles import AlarmRule

__all__ = ["StabilityBudget", "stability_budget"]


class StabilityBudget(msgspec.Struct, frozen=True, kw_only=True):
    """Budget of one lifetime rule for one lot, as seen from one shipment.

    ``allowed_min`` is the rule's ``delay_min``; ``spent_before_min`` what other shipments (and earlier life)
    of the lot consumed; ``spent_in_shipment_min`` what this shipment consumed. ``remaining_min`` never goes
    below 0; ``overrun_min`` is the time spent beyond the budget.
    """

    rule: str
    allowed_min: float
    spent_before_min: float
    spent_in_shipment_min: float
    consumed_min: float
    remaining_min: float
    overrun_min: float

    @property
    def exhausted(self) -> bool:
        return self.consumed_min >= self.allowed_min


def stability_budget(rule: AlarmRule, *, spent_before_min: float, spent_in_shipment_min: float) -> StabilityBudget:
    """The budget of a lifetime cumulative rule after this shipment's minutes beyond its threshold."""
    if rule.scope != "lifetime" or rule.mode != "cumulative":
        raise ValueError(f"rule {rule.name!r} is not a stability budget (needs cumulative, scope lifetime)")
    for name, minutes in (
        ("spent_before_min", spent_before_min),
        ("spent_in_shipment_min", spent_in_shipment_min),
    ):
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {minutes}")
    consumed_min = spent_before_min + spent_in_shipment_min
    return StabilityBudget(
        rule=rule.name,
        allowed_min=rule.delay_min,
        spent_before_min=spent_before_min,
        spent_in_shipment_min=spent_in_shipment_min,
        consumed_min=consumed_min,
        remaining_min=max(0.0, rule.delay_min - consumed_min),
        overrun_min=max(0.0, consumed_min - rule.delay_min),
    )
