"""The raw-data exports an auditor downloads: a shipment's readings and its quarantined readings as CSV, and the
audit trail as CSV or JSON lines, each row written by one pure function so every export of the same records is
the same bytes, whichever engine stored them.

The CSV dialect (RFC 4180): fields separated by commas, each row ending in CRLF, a header row first; a field is
quoted (with inner quotes doubled) only when it holds a comma, a quote, CR or LF. Empty means missing.

Numbers (:func:`decimal_text`) are written in one exact rule: the shortest decimal that reads back as the same
IEEE 754 double (the rule of Python's ``repr``, JavaScript's ``Number.prototype.toString`` and Go's
``strconv.FormatFloat(x, 'f', -1, 64)``), in positional notation (never an exponent), with at least one digit
after the point; ``-0.0`` is written ``0.0``. Both engines store readings as doubles, so the same reading gives
the same text.

Times are UTC with microseconds and a ``Z`` (``2026-03-01T08:00:00.000000Z``); the device's local time is the
same instant with the device's UTC offset (``2026-03-01T09:00:00.000000+01:00``).

The readings' SHA-256 that investigations, decisions and certificates cite (:class:`ReadingsDigest`) is the
SHA-256 of the readings CSV's exact bytes, header included: ``sha256sum readings.csv`` reproduces it.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import cache, lru_cache

from coldchain.domain.audit import AuditEntry
from coldchain.domain.canonical import canonical_json
from coldchain.domain.readings import Reading

__all__ = [
    "AUDIT_HEADER",
    "QUARANTINED_HEADER",
    "READINGS_HEADER",
    "ReadingsDigest",
    "audit_line",
    "audit_row",
    "decimal_text",
    "quarantined_row",
    "reading_row",
    "utc_text",
]

_END = "\r\n"

_MEASURES = ("temperature_c", "humidity_pct", "pressure_kpa", "latitude", "longitude", "battery_pct")

READINGS_HEADER = (
    ",".join(
        (
            "tracker",
            "seq",
            "device_time_utc",
            "utc_offset_min",
            "device_time_local",
            "received_at_utc",
            *_MEASURES,
        )
    )
    + _END
)
"""The readings CSV's first row."""

QUARANTINED_HEADER = READINGS_HEADER[: -len(_END)] + ",reason" + _END
"""The quarantined readings CSV's first row: the readings' columns and the reason the reading was kept apart."""

AUDIT_HEADER = "id,at_utc,actor,action,subject,detail,prev_hash,hash" + _END
"""The audit trail CSV's first row."""


def decimal_text(value: float | None) -> str:
    """``value`` in the exports' one number rule (module docstring); empty for ``None``."""
    if value is None:
        return ""
    if value == 0:
        return "0.0"  # -0.0 too
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    return text if "." in text else text + ".0"


def utc_text(moment: datetime) -> str:
    """An aware time in UTC with microseconds and ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


@cache
def _zone(offset_min: int) -> timezone:
    return timezone(timedelta(minutes=offset_min))


def _local_text(moment: datetime, offset_min: int) -> str:
    return moment.astimezone(_zone(offset_min)).isoformat(timespec="microseconds")


def _field(text: str) -> str:
    if any(mark in text for mark in (",", '"', "\r", "\n")):
        return '"' + text.replace('"', '""') + '"'
    return text


@lru_cache(maxsize=256)
def _received_text(moment: datetime) -> str:
    """:func:`utc_text` of a receipt time, which a whole batch of readings shares."""
    return utc_text(moment)


@lru_cache(maxsize=4096)
def _serial_field(serial: str) -> str:
    return _field(serial)


@cache
def _offset_text(offset_min: int) -> str:
    """``+01:00`` for 60: the suffix ``isoformat`` gives a time at that offset."""
    return datetime(2000, 1, 1, tzinfo=_zone(offset_min)).isoformat()[19:]


def _reading_fields(serial: str, reading: Reading, received_at: datetime) -> list[str]:
    # The same text as utc_text and _local_text, formatted from one naive UTC time: a row is written 43,200 times
    # for a month's shipment, for every digest as well as every export.
    utc = reading.device_time.astimezone(UTC).replace(tzinfo=None)
    offset = reading.utc_offset_min
    local = (utc + timedelta(minutes=offset)).isoformat(timespec="microseconds") + _offset_text(offset)
    return [
        _serial_field(serial),
        str(reading.seq),
        utc.isoformat(timespec="microseconds") + "Z",
        str(offset),
        local,
        _received_text(received_at),
        decimal_text(reading.temperature_c),
        decimal_text(reading.humidity_pct),
        decimal_text(reading.pressure_kpa),
        decimal_text(reading.latitude),
        decimal_text(reading.longitude),
        decimal_text(reading.battery_pct),
    ]


def reading_row(serial: str, reading: Reading, received_at: datetime) -> str:
    """One row of the readings CSV (:data:`READINGS_HEADER`), CRLF included."""
    return ",".join(_reading_fields(serial, reading, received_at)) + _END


def quarantined_row(serial: str, reading: Reading, received_at: datetime, reason: str) -> str:
    """One row of the quarantined readings CSV (:data:`QUARANTINED_HEADER`), CRLF included."""
    return ",".join([*_reading_fields(serial, reading, received_at), _field(reason)]) + _END


def audit_row(entry: AuditEntry) -> str:
    """One row of the audit trail CSV (:data:`AUDIT_HEADER`), CRLF included."""
    fields = [
        str(entry.id),
        utc_text(entry.at),
        entry.actor,
        entry.action,
        entry.subject,
        entry.detail,
        entry.prev_hash,
        entry.hash,
    ]
    return ",".join(_field(text) for text in fields) + _END


def audit_line(entry: AuditEntry) -> str:
    """One line of the audit trail's JSON lines export: the entry's canonical JSON (sorted keys, the time in UTC
    with microseconds, as hashed), then LF. The chain can be recomputed from these lines alone
    (:func:`coldchain.domain.audit.entry_hash`)."""
    content = {
        "id": entry.id,
        "at": entry.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "action": entry.action,
        "subject": entry.subject,
        "detail": entry.detail,
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
    return canonical_json(content).decode() + "\n"


class ReadingsDigest:
    """SHA-256 of a shipment's readings CSV, fed the rows in the export's order (device time, tracker id, seq):
    the header is hashed first, then each :func:`reading_row`. The hex digest equals ``sha256sum`` of the CSV."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(READINGS_HEADER.encode())
        self.count = 0

    def add_row(self, row: str) -> None:
        self._hash.update(row.encode())
        self.count += 1

    def add(self, serial: str, reading: Reading, received_at: datetime) -> str:
        """Hash the reading's row, and return it."""
        row = reading_row(serial, reading, received_at)
        self.add_row(row)
        return row

    def hexdigest(self) -> str:
        return self._hash.hexdigest()
