"""Organisations and the trackers they own."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

import msgspec

__all__ = ["Organisation", "OrganisationKind", "Tracker", "TrackerProtocol"]

OrganisationKind = Literal["shipper", "carrier", "receiver"]
TrackerProtocol = Literal["hmac", "osmand"]
"""How a tracker delivers its readings, fixed at registration: signed sync batches (``hmac``), or the OsmAnd
protocol (``osmand``), which carries no signature: such a device names itself by a generated device id."""


class Organisation(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    kind: OrganisationKind
    created_at: datetime


class Tracker(msgspec.Struct, frozen=True, kw_only=True):
    """A logging device. ``serial`` is how the device names itself on the wire; ``id`` is the service's key.

    ``secret`` is the per-device key that authenticates its sync batches (HMAC-SHA256); it is never logged.
    ``device_id`` is what an OsmAnd tracker sends as its ``id``: generated and unguessable, since the protocol
    has nothing else to authenticate a device by (``None`` for a signing tracker).
    """

    id: int
    serial: str
    secret: str
    organisation_id: int | None
    model: str | None
    created_at: datetime
    protocol: TrackerProtocol = "hmac"
    device_id: str | None = None
    calibration_due_on: date | None = None
    """When the tracker's calibration certificate runs out (EU GDP ch. 9: calibrated at least yearly)."""

    def __repr__(self) -> str:
        return (
            f"Tracker(id={self.id}, serial={self.serial!r}, organisation_id={self.organisation_id},"
            f" protocol={self.protocol!r})"
        )
