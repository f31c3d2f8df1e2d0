"""Organisations and the trackers they own."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

__all__ = ["Organisation", "OrganisationKind", "Tracker"]

OrganisationKind = Literal["shipper", "carrier", "receiver"]


class Organisation(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    kind: OrganisationKind
    created_at: datetime


class Tracker(msgspec.Struct, frozen=True, kw_only=True):
    """A logging device. ``serial`` is how the device names itself on the wire; ``id`` is the service's key.

    ``secret`` is the per-device key that authenticates its sync batches (HMAC-SHA256); it is never logged.
    """

    id: int
    serial: str
    secret: str
    organisation_id: int | None
    model: str | None
    created_at: datetime

    def __repr__(self) -> str:
        return f"Tracker(id={self.id}, serial={self.serial!r}, organisation_id={self.organisation_id})"
