"""The wire vocabulary: constrained types every request body and parameter uses, and the Structs of the sync and
tracker APIs. Validation happens once, here, at the boundary.

Numbers are bounded by what the database holds: ids are 64-bit (``BIGINT``; SQLite's ``INTEGER``), so an id
above ``MAX_ID`` names nothing (a path id: 404; a body or query id: 422) instead of overflowing a driver.
Datetimes are aware, and a body's datetimes must stay within years 1 to 9999 once moved to UTC (Python's range):
``0001-01-01T00:00:00+14:00`` is year 0 in UTC. Sync batches are the exception, so that a broken clock never
blocks a tracker's queue: such a reading is quarantined with its reason, such a ``sent_at`` measures no drift.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timezone, tzinfo
from typing import Annotated

import msgspec
from litestar.params import PathParameter, QueryParameter
from msgspec import Meta

from coldchain.domain.parties import TrackerProtocol
from coldchain.domain.readings import Reading
from coldchain.domain.sync import PHYSICAL_RANGES, HeldAs

__all__ = [
    "MAX_ID",
    "AwareDatetime",
    "BatchIn",
    "BodyIn",
    "CheckedBatchIn",
    "ConflictOut",
    "Id",
    "Latitude",
    "Longitude",
    "PathId",
    "QueryId",
    "ReadingIn",
    "SyncAckOut",
    "TrackerCreatedOut",
    "TrackerDetailOut",
    "TrackerIn",
    "TrackerOut",
    "TrackerStatusOut",
    "sent_at_of",
    "to_readings",
]

_NO_TIME = datetime.min.replace(tzinfo=UTC)

MAX_ID = 2**63 - 1
"""The largest id a row can have (a signed 64-bit integer on both engines)."""

Id = Annotated[int, Meta(ge=1, le=MAX_ID)]
"""An id in a request body."""
PathId = Annotated[int, PathParameter(ge=1, le=MAX_ID)]
"""An id in a path: outside the range the path names nothing (404)."""
QueryId = Annotated[int | None, QueryParameter(ge=1, le=MAX_ID)]
"""An optional id in the query string (422 outside the range)."""
Seq = Annotated[int, Meta(ge=1, le=MAX_ID)]
"""What storage can hold. Numbers above the domain's ``SEQ_CEILING`` (2**62) are taken, and kept in quarantine."""
Latitude = Annotated[float, Meta(ge=-90, le=90)]
"""Degrees north, WGS 84."""
Longitude = Annotated[float, Meta(ge=-180, le=180)]
"""Degrees east, WGS 84."""
AwareDatetime = Annotated[datetime, Meta(tz=True)]
"""RFC 3339 with a UTC offset (``Z`` or ``+hh:mm``); a time without one is refused."""
Serial = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")]


def _within_utc_range(moment: datetime) -> bool:
    try:
        moment.astimezone(UTC)
    except OverflowError:
        return False
    return True


class BodyIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of the request bodies: frozen, keyword-only, unknown fields refused, and every datetime field within
    years 1 to 9999 in UTC (msgspec turns the ``ValueError`` into a validation error: 422 naming the field)."""

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, datetime) and not _within_utc_range(value):
                raise ValueError(f"`{name}` {value.isoformat()} falls outside years 1 to 9999 in UTC")


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


def _physical(name: str) -> Meta:
    low, high = PHYSICAL_RANGES[name]
    return Meta(ge=low, le=high)


class CheckedReadingIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """:class:`ReadingIn` with every quantity present finite and within what it can physically be
    (:data:`~coldchain.domain.sync.PHYSICAL_RANGES`), checked by the decoder as it reads the number."""

    seq: Seq
    device_time: AwareDatetime
    temperature_c: Annotated[float, _physical("temperature_c")] | None = None
    humidity_pct: Annotated[float, _physical("humidity_pct")] | None = None
    pressure_kpa: Annotated[float, _physical("pressure_kpa")] | None = None
    latitude: Annotated[float, _physical("latitude")] | None = None
    longitude: Annotated[float, _physical("longitude")] | None = None
    battery_pct: Annotated[float, _physical("battery_pct")] | None = None


class CheckedBatchIn(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A :class:`BatchIn` whose quantities all passed the physical checks as it was decoded: what nearly every
    batch is, so the sync route tries it first; a batch it refuses is decoded as a plain :class:`BatchIn` (its
    impossible values go to quarantine, or the body is refused with the plain decoder's reason)."""

    readings: list[CheckedReadingIn]
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


class TrackerIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    serial: Serial
    model: Annotated[str, Meta(max_length=128)] | None = None
    organisation_id: Id | None = None
    protocol: TrackerProtocol = "hmac"
    """``hmac``: signed sync batches. ``osmand``: OsmAnd positions, under a generated device id. Fixed for good."""
    calibration_due_on: date | None = None
    """When the tracker's calibration certificate runs out (``PUT /v1/trackers/{serial}/calibration`` renews it)."""


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


def sent_at_of(batch: BatchIn | CheckedBatchIn) -> datetime | None:
    """When the tracker says it sent the batch, if that has a UTC form. A clock so wrong that it has none (year 0
    in UTC) measures no drift, and refusing the batch for it would block the tracker's queue for good: its
    readings, dated by the same clock, go to quarantine instead."""
    if batch.sent_at is None or not _within_utc_range(batch.sent_at):
        return None
    return batch.sent_at


def to_readings(batch: BatchIn | CheckedBatchIn) -> list[Reading]:
    """The batch's readings for the domain, device times in UTC. A device time that has no UTC form (past year 1 or
    9999 once its offset is applied) is passed on as sent: the domain quarantines that reading with the reason.

    The offset in minutes is worked out once per zone of the batch (msgspec gives every time with the same offset
    one fixed ``timezone``), not once per reading: a batch is usually all in one offset. A device time in a fixed
    offset is the previous one's UTC time plus the time between the two as sent (exact: two fixed-offset times
    differ by the time between their instants), a third of the cost of ``astimezone``; the first, and any that
    follows one without a UTC form, is converted."""
    readings: list[Reading] = []
    append = readings.append
    offsets: dict[tzinfo | None, int] = {}
    previous_sent: datetime | None = None
    previous_utc = _NO_TIME
    for r in batch.readings:
        sent = r.device_time
        zone = sent.tzinfo
        fixed = type(zone) is timezone
        offset_min = offsets.get(zone) if fixed else None
        if offset_min is None:
            offset = sent.utcoffset()
            offset_min = 0 if offset is None else int(offset.total_seconds() // 60)
            if fixed:
                offsets[zone] = offset_min
        device_time: datetime | None = None
        if fixed and previous_sent is not None:
            try:
                device_time = previous_utc + (sent - previous_sent)
            except OverflowError:
                device_time = None
        if device_time is None:
            try:
                device_time = sent.astimezone(UTC)
            except OverflowError:
                device_time = sent
        if device_time is sent and zone is not UTC:  # no UTC form: the next one is converted on its own
            previous_sent = None
        else:
            previous_sent, previous_utc = sent, device_time
        append(
            Reading(
                seq=r.seq,
                device_time=device_time,
                utc_offset_min=offset_min,
                temperature_c=r.temperature_c,
                humidity_pct=r.humidity_pct,
                pressure_kpa=r.pressure_kpa,
                latitude=r.latitude,
                longitude=r.longitude,
                battery_pct=r.battery_pct,
            )
        )
    return readings
