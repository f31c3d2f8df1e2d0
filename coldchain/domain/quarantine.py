"""Readings quarantined at ingest, as part of a shipment's evidence.

A reading the service could not accept as a measurement (NaN, a value no sensor can read, half a position, a device
time far ahead of the service's clock) is kept with its reason and acknowledged (:mod:`coldchain.domain.sync`), so
it never blocks a tracker's queue; it must not vanish from the shipment either. Conditions during a sensor fault
cannot be demonstrated (EU GDP 2013/C 343/01 ch. 9), so the shipment's status lists quarantined readings of its
trackers as faults, grouped by kind (reason without the value), with the first and last device time and a count,
and each of them counts in the disposition.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import msgspec

from coldchain.domain.readings import Reading
from coldchain.domain.sync import PHYSICAL_RANGES

__all__ = ["QuarantineFault", "QuarantinedReading", "fault_kind", "quarantine_faults"]

_OUTSIDE = "is outside the physical range"


class QuarantinedReading(msgspec.Struct, frozen=True, kw_only=True):
    """A reading kept aside at ingest: its values as stored, the reason given then (which names the value: JSON
    holds no NaN or infinity, so those values are stored as null and kept in the reason), and when it was
    received."""

    tracker_id: int
    reading: Reading
    reason: str
    received_at: datetime


class QuarantineFault(msgspec.Struct, frozen=True, kw_only=True):
    """Quarantined readings of one kind in a shipment: first and last device time, and how many."""

    kind: str
    first_at: datetime
    last_at: datetime
    readings: int


def fault_kind(reason: str) -> str:
    """The kind of a quarantine reason (:func:`coldchain.domain.sync.quarantine_reason`) without its value, so
    faults group: ``temperature_c not a number``, ``temperature_c infinite``, ``humidity_pct outside the physical
    range``, ``device_time ahead of the service's clock``; any other reason is its own kind."""
    name, _, rest = reason.partition(" ")
    if name in PHYSICAL_RANGES:
        if rest == "is nan":
            return f"{name} not a number"
        if rest in ("is inf", "is -inf"):
            return f"{name} infinite"
        if rest.endswith(_OUTSIDE) or _OUTSIDE + " " in rest:
            return f"{name} outside the physical range"
    if name == "device_time" and "ahead of the service's clock" in rest:
        return "device_time ahead of the service's clock"
    return reason


def quarantine_faults(quarantined: Iterable[QuarantinedReading]) -> list[QuarantineFault]:
    """The faults of a shipment's quarantined readings, by kind, ordered by first device time then kind."""
    spans: dict[str, tuple[datetime, datetime, int]] = {}
    for item in quarantined:
        kind = fault_kind(item.reason)
        moment = item.reading.device_time
        first, last, count = spans.get(kind, (moment, moment, 0))
        spans[kind] = (min(first, moment), max(last, moment), count + 1)
    faults = [
        QuarantineFault(kind=kind, first_at=first, last_at=last, readings=count)
        for kind, (first, last, count) in spans.items()
    ]
    faults.sort(key=lambda fault: (fault.first_at, fault.kind))
    return faults
