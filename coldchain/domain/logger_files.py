"""Logger exports held as evidence of a shipment: the file, and the per-day figures of summary-only devices.

Records only: the parsers (:mod:`coldchain.domain.loggers`) read the files, storage keeps them.
"""

from __future__ import annotations

from datetime import date, datetime

import msgspec

from coldchain.domain.profiles import Direction

__all__ = ["DayLimit", "LoggerDay", "LoggerFile"]


class DayLimit(msgspec.Struct, frozen=True, kw_only=True):
    """One alarm limit of a logger on one day: minutes beyond it, and when its alarm was met that day."""

    limit: str
    direction: Direction
    threshold_c: float
    delay_min: float
    minutes: float
    alarm_met_at: datetime | None = None


class LoggerDay(msgspec.Struct, frozen=True, kw_only=True):
    """One local day as a logger summarised it (min, max, mean, time beyond each alarm limit)."""

    day: date
    min_c: float | None
    min_at: datetime | None
    max_c: float | None
    max_at: datetime | None
    mean_c: float | None
    beyond: list[DayLimit]
    events: int | None = None
    sensor_timeout_min: int | None = None


class LoggerFile(msgspec.Struct, frozen=True, kw_only=True):
    """A logger export held as evidence of a shipment (the bytes themselves are kept, not repeated here)."""

    id: int
    shipment_id: int
    tracker_id: int | None
    vendor: str
    model: str
    serial: str
    file_name: str | None
    file_sha256: str
    utc_offset_min: int
    readings: int
    first_reading_at: datetime | None
    last_reading_at: datetime | None
    imported_by: str
    imported_at: datetime
