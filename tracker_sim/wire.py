"""What the tracker puts on the wire and what it reads back (the sync and registration contract).

The simulator keeps its own copy of the contract on purpose: it is the service's client, not part of it, and
a test that both sides pass is only a test if neither side borrows the other's code.

Outgoing Structs forbid unknown fields like every Struct on the wire. Incoming ones (``...In``) accept and
ignore fields they do not know: a tracker in the field cannot be updated the day the service adds a counter to
its answer, and refusing the answer would stop the tracker from syncing at all (tolerant reader).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

__all__ = [
    "AckIn",
    "BatchOut",
    "ErrorIn",
    "ReadingOut",
    "TrackerCreatedIn",
    "TrackerOut",
    "WireFormat",
    "encode_batch",
    "rfc3339",
]

WireFormat = Literal["json", "msgpack"]
Seq = Annotated[int, Meta(ge=1)]
SeqOrZero = Annotated[int, Meta(ge=0)]
AwareDatetime = Annotated[datetime, Meta(tz=True)]


class ReadingOut(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """One reading in a sync batch. Absent sensors are left out of the body (the contract allows it)."""

    seq: Seq
    # A string, not a datetime: MessagePack would turn a datetime into its timestamp extension and the
    # device's UTC offset would be lost. The contract wants the offset in JSON and MessagePack alike.
    device_time: str
    temperature_c: float | None = None
    humidity_pct: float | None = None
    pressure_kpa: float | None = None
    latitude: float | None = None
    longitude: float | None = None
    battery_pct: float | None = None


class BatchOut(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /v1/trackers/{tracker_id}/sync``."""

    sent_at: str
    readings: list[ReadingOut]


class AckIn(msgspec.Struct, frozen=True, kw_only=True):
    """The service's answer to a stored batch (HTTP 200)."""

    acked_through: SeqOrZero
    missing: list[tuple[Seq, Seq]] = []
    new: SeqOrZero = 0
    duplicates: SeqOrZero = 0
    quarantined: SeqOrZero = 0
    conflicts: SeqOrZero = 0
    """Readings sent again with other values than the service holds: it keeps the first and records the copy."""
    server_time: AwareDatetime | None = None


class ErrorIn(msgspec.Struct, frozen=True, kw_only=True):
    """The body of every 4xx/5xx answer the service gives on purpose."""

    error: str
    detail: str = ""


class TrackerOut(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True):
    """The body of ``POST /v1/trackers`` (register a tracker, admin only)."""

    serial: str
    model: str | None = None


class TrackerCreatedIn(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to a registration: the tracker's secret is shown this once."""

    tracker_id: str
    secret: str


_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()


def encode_batch(batch: BatchOut, wire_format: WireFormat) -> bytes:
    """Encode a batch as JSON or MessagePack (uncompressed)."""
    if wire_format == "json":
        return _json_encoder.encode(batch)
    return _msgpack_encoder.encode(batch)


def rfc3339(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 with its own UTC offset, to the millisecond.

    Naive datetimes are refused: a device time without an offset cannot be placed on the time line.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: a device time needs its UTC offset")
    return moment.isoformat(timespec="milliseconds")
