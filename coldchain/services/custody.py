"""Use cases of the chain of custody."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from coldchain.domain.readings import Reading
from coldchain.storage import Transaction

__all__ = ["notice_arrival"]


async def notice_arrival(tx: Transaction, tracker_id: int, readings: Sequence[Reading], *, now: datetime) -> None:
    """Record an automatic ``arrived`` custody event when a just-stored reading lies inside the destination
    geofence of the in-transit shipment the tracker was assigned to at that reading's time."""
