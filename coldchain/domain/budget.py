"""Stability budget: the time a product may spend outside its label range over its whole life (REFERENCE §4).

The budget is a cumulative rule with scope ``lifetime``: manufacturing, warehouses, every transport leg and
the pharmacy all spend from it, and it never resets between legs. The lot's spending is one timeline in device
time (:mod:`coldchain.domain.lot_budget`); a shipment sees what the lot had spent by its own time, and the lot's
total now.

Worked example (REFERENCE §4): 72 h allowed cumulatively at 8–25 °C; legs consume 3.5 h, 0 h, 20 h: 48.5 h
remain.
"""

from __future__ import annotations

import math
from datetime import datetime

import msgspec

from coldchain.domain.profiles import Action, AlarmRule

__all__ = ["StabilityBudget", "stability_budget"]


class StabilityBudget(msgspec.Struct, frozen=True, kw_only=True):
    """Budget of one lifetime rule for one lot, as seen from one shipment.

    ``allowed_min`` is the rule's ``delay_min``; ``spent_before_min`` what the lot's other streams (other
    shipments, earlier life) had spent by this shipment's last reading; ``spent_in_shipment_min`` what this
    shipment spent; ``consumed_min`` their sum: the lot's spending by this shipment's time. ``remaining_min``
    never goes below 0; ``overrun_min`` is the time spent beyond the budget by then. ``lot_spent_min`` is the
    lot's total now (later shipments included) and ``lot_exhausted_at`` the device time the lot's budget ran out,
    wherever that was. ``action`` is what the rule calls for when the budget is overrun.
    """

    rule: str
    action: Action
    allowed_min: float
    spent_before_min: float
    spent_in_shipment_min: float
    consumed_min: float
    remaining_min: float
    overrun_min: float
    lot_spent_min: float
    lot_exhausted_at: datetime | None = None

    @property
    def exhausted(self) -> bool:
        return self.consumed_min >= self.allowed_min


def stability_budget(
    rule: AlarmRule,
    *,
    spent_before_min: float,
    spent_in_shipment_min: float,
    lot_spent_min: float | None = None,
    lot_exhausted_at: datetime | None = None,
) -> StabilityBudget:
    """The budget of a lifetime cumulative rule after this shipment's minutes beyond its threshold (the lot's
    total now defaults to what was spent by this shipment's time)."""
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
        action=rule.action,
        allowed_min=rule.delay_min,
        spent_before_min=spent_before_min,
        spent_in_shipment_min=spent_in_shipment_min,
        consumed_min=consumed_min,
        remaining_min=max(0.0, rule.delay_min - consumed_min),
        overrun_min=max(0.0, consumed_min - rule.delay_min),
        lot_spent_min=consumed_min if lot_spent_min is None else lot_spent_min,
        lot_exhausted_at=lot_exhausted_at,
    )
