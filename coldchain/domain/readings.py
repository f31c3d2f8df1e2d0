"""Sensor readings as the domain sees them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import msgspec

from coldchain.domain.canonical import canonical_json

__all__ = ["Reading", "ReadingsDigest"]


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


class ReadingsDigest:
    """SHA-256 of a shipment's raw readings, fed in (device time, tracker, seq) order.

    Each reading is one line of canonical JSON (keys sorted, no whitespace) ending in a newline::

        {"battery_pct":null,"device_time":"2026-03-01T08:00:00.000000+00:00","humidity_pct":null,...,"seq":1,
         "serial":"TRK-1","temperature_c":5.2,"utc_offset_min":60}

    so the digest can be recomputed from the readings' CSV or JSON export by anyone.
    """

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.count = 0

    def add(self, serial: str, reading: Reading) -> None:
        line = {
            "serial": serial,
            "seq": reading.seq,
            "device_time": reading.device_time.astimezone(UTC).isoformat(timespec="microseconds"),
            "utc_offset_min": reading.utc_offset_min,
            "temperature_c": reading.temperature_c,
            "humidity_pct": reading.humidity_pct,
            "pressure_kpa": reading.pressure_kpa,
            "latitude": reading.latitude,
            "longitude": reading.longitude,
            "battery_pct": reading.battery_pct,
        }
        self._hash.update(canonical_json(line))
        self._hash.update(b"\n")
        self.count += 1

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
