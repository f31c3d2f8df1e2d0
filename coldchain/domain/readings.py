"""Sensor readings as the domain sees them."""

from __future__ import annotations

from datetime import datetime

import msgspec

__all__ = ["Reading"]


class Reading(msgspec.Struct, frozen=True, kw_only=True):
    """One logged measurement of one tracker.

    ``seq`` is the tracker's own sequence number, assigned when the reading was logged; together with the
    tracker it is the reading's identity. ``device_time`` is aware and in UTC; ``utc_offset_min`` keeps the
    offset the device reported, so the original local time can always be shown (ALCOA+: original).
    Any sensor may be absent (``None``).
    """

    seq: int
    device_time: datetime
    utc_offset_min: int = 0
    temperature_c: float | None = None
    humidity_pct: float | None = None
    pressure_kpa: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    battery_pct: float | None = None
