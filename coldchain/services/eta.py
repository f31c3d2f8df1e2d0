"""Use cases of arrival estimates: the ETA of a shipment from its trackers' recent GPS fixes, and the refresh
job that stores it and says when a shipment becomes at risk.

Where the data comes from: the fixes of every tracker assigned to the shipment, over the last
``FIX_LOOKBACK`` before ``now`` (so a tracker offline for days gives no estimate rather than a stale one); the
position is the latest fix; the route is origin → planned waypoints → destination. For urgent shipments the
stability budget's run-out time at the current temperature trend joins the verdict (see
:func:`coldchain.domain.eta.budget_runs_out_at`), from the lifetime rules of the pinned profile and the budget
left after the evaluation so far.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.eta import (
    DEFAULT_SPEED_WINDOW,
    EtaEstimate,
    Fix,
    budget_runs_out_at,
    estimate_eta,
    no_position_reason,
    overdue_reason,
)
from coldchain.domain.geo import Point
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Shipment
from coldchain.domain.utc import utc_text
from coldchain.services.access import visible_shipment
from coldchain.services.evaluation import budgets_left
from coldchain.storage import Store, Transaction

__all__ = ["FIX_LOOKBACK", "ShipmentEta", "refresh_etas", "shipment_eta"]

FIX_LOOKBACK = timedelta(hours=24)
_UNDER_WAY = ("planned", "in_transit")
"""Statuses in which a shipment can still be late: not yet delivered, closed or cancelled."""
TREND_WINDOW = DEFAULT_SPEED_WINDOW

_json = msgspec.json.Encoder()


def _just_after(moment: datetime) -> datetime:
    """The smallest time after ``moment``: a reading at exactly ``now`` is recent."""
    return moment + timedelta(microseconds=1)


class ShipmentEta(msgspec.Struct, frozen=True, kw_only=True):
    """A shipment's arrival estimate as the API shows it. ``estimate`` is ``None`` without a recent GPS fix; that
    never reads as "fine": a shipment in transit with no fix in the look-back is at risk, and so is one past its
    promised time, each with its reason."""

    shipment_id: int
    computed_at: datetime
    promised_at: datetime | None
    priority: str
    budget_runs_out_at: datetime | None
    estimate: EtaEstimate | None
    at_risk: bool
    reasons: list[str]


def _route(shipment: Shipment) -> list[Point]:
    return [
        Point(lat=shipment.origin.lat, lon=shipment.origin.lon),
        *(Point(lat=lat, lon=lon) for lat, lon in shipment.waypoints),
        Point(lat=shipment.destination.lat, lon=shipment.destination.lon),
    ]


async def _recent_readings(tx: Transaction, shipment_id: int, now: datetime, lookback: timedelta) -> list[Reading]:
    """Readings of the shipment's trackers over ``lookback`` before ``now``, each within its assignment, in time
    order."""
    start = now - lookback
    readings: list[Reading] = []
    for assignment in await tx.assignments_of_shipment(shipment_id):
        lower = max(start, assignment.starts_at)
        upper = _just_after(now) if assignment.ends_at is None else min(_just_after(now), assignment.ends_at)
        if lower < upper:
            readings += await tx.readings_between(assignment.tracker_id, lower, upper)
    readings.sort(key=lambda reading: (reading.device_time, reading.seq))
    return readings


def _fixes(readings: Sequence[Reading]) -> list[Fix]:
    return [
        Fix(time=r.device_time, lat=r.latitude, lon=r.longitude)
        for r in readings
        if r.latitude is not None and r.longitude is not None
    ]


async def _compute(tx: Transaction, shipment: Shipment, now: datetime) -> ShipmentEta:
    # The speed and the temperature trend need the last TREND_WINDOW only; an older fix serves as the position
    # when there is no recent one, so the whole look-back is read only then.
    readings = await _recent_readings(tx, shipment.id, now, TREND_WINDOW)
    fixes = _fixes(readings)
    if not fixes:
        fixes = _fixes(await _recent_readings(tx, shipment.id, now, FIX_LOOKBACK))
    runs_out: datetime | None = None
    if shipment.priority == "urgent":
        recent = [(r.device_time, r.temperature_c) for r in readings if r.temperature_c is not None]
        if recent:
            for rule, remaining_min in await budgets_left(tx, shipment):
                if rule.metric != "temperature":
                    continue
                moment = budget_runs_out_at(
                    now=now,
                    remaining_min=remaining_min,
                    threshold_c=rule.threshold,
                    direction=rule.direction,
                    recent=recent,
                )
                if moment is not None and (runs_out is None or moment < runs_out):
                    runs_out = moment
    estimate = None
    if fixes:
        last = fixes[-1]
        estimate = estimate_eta(
            now=now,
            position=Point(lat=last.lat, lon=last.lon),
            route=_route(shipment),
            fixes=fixes,
            promised_at=shipment.promised_at,
            budget=runs_out,
        )
    reasons = [] if estimate is None else list(estimate.reasons)
    if estimate is None and shipment.status in _UNDER_WAY:
        if shipment.status == "in_transit":
            starts = [assignment.starts_at for assignment in await tx.assignments_of_shipment(shipment.id)]
            reasons.append(
                no_position_reason(now=now, lookback=FIX_LOOKBACK, tracked_since=min(starts) if starts else None)
            )
        if shipment.promised_at is not None:
            overdue = overdue_reason(now=now, promised_at=shipment.promised_at)
            if overdue is not None:
                reasons.append(overdue)
        if runs_out is not None:
            reasons.append(f"stability budget runs out at {utc_text(runs_out)} (no recent position for an ETA)")
    return ShipmentEta(
        shipment_id=shipment.id,
        computed_at=now,
        promised_at=shipment.promised_at,
        priority=shipment.priority,
        budget_runs_out_at=runs_out,
        estimate=estimate,
        at_risk=bool(reasons),
        reasons=reasons,
    )


async def shipment_eta(store: Store, principal: Principal, shipment_id: int, *, now: datetime) -> ShipmentEta:
    """The shipment's arrival estimate, computed now."""
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        return await _compute(tx, shipment, now)


async def refresh_etas(store: Store, *, now: datetime) -> int:
    """Recompute and store the estimate of every in-transit shipment; publish ``eta.at_risk`` to the
    shipment's parties when a shipment becomes at risk (not again while it stays at risk). Returns how many
    shipments were refreshed. Idempotent: a second run at the same ``now`` changes nothing more.
    """
    async with store.transaction() as tx:
        ids = await tx.shipment_ids(party=None, status="in_transit")
    refreshed = 0
    for shipment_id in ids:
        async with store.transaction() as tx:
            shipment = await tx.get_shipment(shipment_id)
            if shipment is None or shipment.status != "in_transit":
                continue
            eta = await _compute(tx, shipment, now)
            saved = await tx.saved_eta(shipment_id)
            was_at_risk = saved is not None and saved[1]
            await tx.save_eta(shipment_id, computed_at=now, at_risk=eta.at_risk, estimate=_json.encode(eta))
            if eta.at_risk and not was_at_risk:
                await tx.publish(
                    "eta.at_risk",
                    organisation_ids=shipment.parties,
                    subject=f"shipment:{shipment_id}",
                    payload={
                        "shipment_id": shipment_id,
                        "reference": shipment.reference,
                        "eta": None if eta.estimate is None else eta.estimate.eta,
                        "promised_at": shipment.promised_at,
                        "budget_runs_out_at": eta.budget_runs_out_at,
                        "reasons": eta.reasons,
                    },
                    now=now,
                    shipment_id=shipment_id,
                )
            refreshed += 1
    return refreshed
