"""Shipments: what is moved, from where to where, by whom, watched by which trackers, and how far it got.

Lifecycle (allowed transitions; anything else is refused)::

    planned ──► in_transit ──► delivered ──► closed
       │            │
       └────────────┴──► cancelled

A tracker belongs to a shipment for a time range ``[starts_at, ends_at)`` (``ends_at`` ``None`` while open);
a reading of that tracker belongs to the shipment the tracker was assigned to at the reading's device time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

import msgspec

__all__ = [
    "TRANSITIONS",
    "Assignment",
    "InvalidTransition",
    "Leg",
    "Mode",
    "Place",
    "Priority",
    "Shipment",
    "ShipmentStatus",
    "check_transition",
    "overlaps",
]

ShipmentStatus = Literal["planned", "in_transit", "delivered", "closed", "cancelled"]
Priority = Literal["standard", "urgent"]
Mode = Literal["road", "air", "sea", "rail"]

TRANSITIONS: Mapping[ShipmentStatus, frozenset[ShipmentStatus]] = {
    "planned": frozenset({"in_transit", "cancelled"}),
    "in_transit": frozenset({"delivered", "cancelled"}),
    "delivered": frozenset({"closed"}),
    "closed": frozenset(),
    "cancelled": frozenset(),
}


class InvalidTransition(ValueError):
    """A status change the lifecycle does not allow."""


def check_transition(current: ShipmentStatus, target: ShipmentStatus) -> None:
    """Raise :class:`InvalidTransition` unless ``current`` may become ``target``."""
    allowed = TRANSITIONS[current]
    if target not in allowed:
        choices = ", ".join(sorted(allowed)) or "none (final state)"
        raise InvalidTransition(f"a {current} shipment cannot become {target}; allowed: {choices}")


class Place(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    lat: float
    lon: float


class Leg(msgspec.Struct, frozen=True, kw_only=True):
    """One stretch of the journey, carried by one organisation in one mode. Legs are numbered from 1."""

    leg_no: int
    carrier_id: int
    mode: Mode


class Shipment(msgspec.Struct, frozen=True, kw_only=True):
    """A consignment of one product (and lot) owned by the shipper ``organisation_id``.

    ``profile_id``/``profile_version`` pin the stability profile the shipment is judged against, taken when the
    shipment was created: a later profile version never re-judges it. ``waypoints`` are the planned route
    between origin and destination, as (lat, lon). ``geofence_m`` is the radius around the destination inside
    which a position counts as arrived.
    """

    id: int
    organisation_id: int
    reference: str
    product_id: int
    lot_id: int | None
    quantity: int
    profile_id: str
    profile_version: int
    origin: Place
    destination: Place
    waypoints: list[tuple[float, float]]
    geofence_m: float
    receiver_id: int | None
    promised_at: datetime | None
    priority: Priority
    status: ShipmentStatus
    legs: list[Leg]
    created_at: datetime
    updated_at: datetime

    @property
    def parties(self) -> frozenset[int]:
        """The organisations that may see the shipment: the shipper, every leg's carrier, the receiver."""
        ids = {self.organisation_id, *(leg.carrier_id for leg in self.legs)}
        if self.receiver_id is not None:
            ids.add(self.receiver_id)
        return frozenset(ids)

    @property
    def carriers(self) -> frozenset[int]:
        return frozenset(leg.carrier_id for leg in self.legs)


class Assignment(msgspec.Struct, frozen=True, kw_only=True):
    """Tracker ``tracker_id`` watches shipment ``shipment_id`` from ``starts_at`` until ``ends_at`` (open: None)."""

    id: int
    shipment_id: int
    tracker_id: int
    starts_at: datetime
    ends_at: datetime | None
    created_at: datetime

    def covers(self, moment: datetime) -> bool:
        return self.starts_at <= moment and (self.ends_at is None or moment < self.ends_at)


def overlaps(starts_at: datetime, ends_at: datetime | None, others: Sequence[Assignment]) -> Assignment | None:
    """The first of ``others`` whose range meets ``[starts_at, ends_at)``, or ``None``."""
    for other in others:
        other_ends_before = other.ends_at is not None and other.ends_at <= starts_at
        ends_before_other = ends_at is not None and ends_at <= other.starts_at
        if not (other_ends_before or ends_before_other):
            return other
    return None
