"""Wire Structs of the sync and admin APIs: validated once, here, at the boundary."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from coldchain.domain.parties import TrackerProtocol
from coldchain.domain.readings import Reading
from coldchain.domain.sync import HeldAs

__all__ = [
    "BatchIn",
    "ConflictOut",
    "ReadingIn",
    "SyncAckOut",
    "TrackerCreatedOut",
    "TrackerDetailOut",
    "TrackerIn",
    "TrackerOut",
    "TrackerStatusOut",
    "to_readings",
]

Seq = Annotated[int, Meta(ge=1, le=2**63 - 1)]
"""What storage can hold. Numbers above ``SEQ_CEILING`` (2**62) are taken, and kept in quarantine."""
AwareDatetime = Annotated[datetime, Meta(tz=True)]
Serial = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]


class ReadingIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One reading as a tracker sends it. ``device_time`` is RFC 3339 with the device's UTC offset.

    Sensor values are not range-checked here: an impossible value goes to quarantine (and is acknowledged)
    instead of refusing the whole batch.
    """

    seq: Seq
    device_time: AwareDatetime
    temperature_c: float | None = None
    humidity_pct: float | None = None
    pressure_kpa: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    battery_pct: float | None = None


class BatchIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/trackers/{serial}/sync``, as JSON or MessagePack, optionally gzipped."""

    readings: list[ReadingIn]
    sent_at: AwareDatetime | None = None


class SyncAckOut(msgspec.Struct, frozen=True, kw_only=True):
    acked_through: int
    """Every reading with a sequence number up to this one is held (stored or quarantined)."""
    missing: list[tuple[int, int]]
    """Inclusive ranges above ``acked_through`` and below the highest held number that are not held."""
    new: int
    duplicates: int
    quarantined: int
    conflicts: int
    """Copies of held sequence numbers that disagree with the reading held: kept beside it, see the tracker."""
    server_time: datetime


class TrackerIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    serial: Serial
    model: Annotated[str, Meta(max_length=128)] | None = None
    organisation_id: int | None = None
    protocol: TrackerProtocol = "hmac"
    """``hmac``: signed sync batches. ``osmand``: OsmAnd positions, under a generated device id. Fixed for good."""


class TrackerCreatedOut(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    tracker_id: str
    protocol: TrackerProtocol
    secret: str | None = None
    """HMAC-SHA256 key for the tracker's sync batches (``hmac`` trackers). Shown once: never returned again."""
    device_id: str | None = None
    """The id to configure in an ``osmand`` device: positions sent under any other id are not this tracker's."""


class TrackerStatusOut(msgspec.Struct, frozen=True, kw_only=True):
    acked_through: int
    max_seq: int
    readings_new: int
    readings_duplicate: int
    readings_quarantined: int
    readings_conflicting: int
    batches: int
    last_sync_at: datetime | None
    clock_offset_s: float | None
    clock_flagged: bool


class TrackerOut(msgspec.Struct, frozen=True, kw_only=True):
    tracker_id: str
    sync: TrackerStatusOut


class ConflictOut(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    received_at: datetime
    held_as: HeldAs
    """Where the reading held under ``seq`` is: among the readings, or in quarantine."""
    held: Reading
    sent: Reading
    sent_reason: str | None
    """Why the copy sent would have been quarantined; ``None`` for a valid reading."""


class TrackerDetailOut(msgspec.Struct, frozen=True, kw_only=True):
    tracker_id: str
    protocol: TrackerProtocol
    device_id: str | None
    """The device id an ``osmand`` tracker sends (shown to its organisation)."""
    sync: TrackerStatusOut
    conflicts: list[ConflictOut]
    """The latest conflicts (at most 100), newest first; ``sync.readings_conflicting`` counts them all."""


def to_readings(batch: BatchIn) -> list[Reading]:
    readings = []
    for r in batch.readings:
        offset = r.device_time.utcoffset()
        readings.append(
            Reading(
                seq=r.seq,
                device_time=r.device_time.astimezone(UTC),
                utc_offset_min=0 if offset is None else int(offset.total_seconds() // 60),
                temperature_c=r.temperature_c,
                humidity_pct=r.humidity_pct,
                pressure_kpa=r.pressure_kpa,
                latitude=r.latitude,
                longitude=r.longitude,
                battery_pct=r.battery_pct,
            )
        )
    return readings
