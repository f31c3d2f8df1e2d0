"""What the portal shows in bulk: the board's line per shipment in transit, a shipment's readings by key (raw or
summarised per time bucket), and an alarm of the inbox across shipments. Storage fills them; services and the
edge read them.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from coldchain.domain.findings import StoredAlarm
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Place, Priority

__all__ = ["BoardEntry", "InboxAlarm", "ReadingBucket", "ReadingKey", "ShipmentReading"]


class ReadingKey(msgspec.Struct, frozen=True, kw_only=True):
    """Where a page of a shipment's readings ends: readings are ordered by (device time, tracker, seq)."""

    device_time: datetime
    tracker_id: int
    seq: int


class ShipmentReading(msgspec.Struct, frozen=True, kw_only=True):
    tracker_id: int
    serial: str
    reading: Reading
    received_at: datetime
    """When the service stored the reading."""

    @property
    def key(self) -> ReadingKey:
        return ReadingKey(device_time=self.reading.device_time, tracker_id=self.tracker_id, seq=self.reading.seq)


class ReadingBucket(msgspec.Struct, frozen=True, kw_only=True):
    """Readings of one time bucket ``[start, start + seconds)``, summarised per metric (``None``: none had it)."""

    start: datetime
    readings: int
    temperature_min_c: float | None
    temperature_mean_c: float | None
    temperature_max_c: float | None
    humidity_min_pct: float | None
    humidity_mean_pct: float | None
    humidity_max_pct: float | None
    pressure_min_kpa: float | None
    pressure_mean_kpa: float | None
    pressure_max_kpa: float | None
    latitude: float | None
    """The mean position of the bucket's readings with one: a point of the track."""
    longitude: float | None


class BoardEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One shipment in transit as the board shows it."""

    shipment_id: int
    organisation_id: int
    reference: str
    product_id: int
    product_name: str
    lot_id: int | None
    lot_number: str | None
    origin: Place
    destination: Place
    promised_at: datetime | None
    priority: Priority
    receiver_id: int | None
    custodian_id: int | None
    custodian_name: str | None
    temperature_c: float | None
    temperature_at: datetime | None
    latitude: float | None
    longitude: float | None
    position_at: datetime | None
    open_alarms: int
    escalated_alarms: int
    late_alarms: int
    last_sync_at: datetime | None
    eta_computed_at: datetime | None
    eta_at_risk: bool | None
    eta_estimate: bytes | None
    """The stored estimate's JSON, as the ETA API shows it."""


class InboxAlarm(msgspec.Struct, frozen=True, kw_only=True):
    alarm: StoredAlarm
    reference: str
