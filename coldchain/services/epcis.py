"""The EPCIS 2.0 export of a shipment: everything it needs is read in one transaction (so the document is one
consistent view), then :func:`~coldchain.domain.epcis.build_document` makes it.

Scoped like every shipment read: a shipment the caller takes no part in is :class:`NotFound`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from coldchain.domain.access import Principal
from coldchain.domain.epcis import (
    Device,
    Intervals,
    Links,
    RawReadings,
    SensorMode,
    TrackedExcursion,
    build_document,
    encode_document,
)
from coldchain.domain.portal import ReadingKey, ShipmentReading
from coldchain.domain.shipments import Assignment
from coldchain.services.access import require, visible_shipment
from coldchain.services.errors import Invalid, NotFound
from coldchain.storage import Store, Transaction

__all__ = ["MAX_INTERVALS", "MAX_READINGS", "export_shipment"]

MAX_READINGS = 200_000
"""Most readings one export carries one by one (139 days at one a minute); beyond, intervals are the form."""
MAX_INTERVALS = 50_000
"""Most intervals one export carries."""
_PAGE = 10_000
_FAR_FUTURE = timedelta(days=2)


def _range(assignments: list[Assignment], now: datetime) -> tuple[datetime, datetime] | None:
    """From the first tracker's start to the last one's end (a little past ``now`` while one is open)."""
    if not assignments:
        return None
    ends = [a.ends_at for a in assignments]
    end = max(e for e in ends if e is not None) if all(e is not None for e in ends) else now + _FAR_FUTURE
    return min(a.starts_at for a in assignments), end


async def _readings(tx: Transaction, shipment_id: int, start: datetime, end: datetime) -> list[ShipmentReading]:
    found: list[ShipmentReading] = []
    after: ReadingKey | None = None
    while True:
        page = await tx.shipment_readings(shipment_id, start=start, end=end, after=after, limit=_PAGE)
        found.extend(page)
        if len(found) > MAX_READINGS:
            raise Invalid(
                f"sensor: the shipment has more than {MAX_READINGS} readings; export them as intervals"
                " (sensor=intervals)"
            )
        if len(page) < _PAGE:
            return found
        after = page[-1].key


async def export_shipment(
    store: Store,
    principal: Principal,
    shipment_id: int,
    *,
    sensor: SensorMode,
    interval_s: int,
    base_url: str,
    now: datetime,
) -> bytes:
    """The shipment's EPCIS 2.0 JSON-LD document, as bytes: the same facts always give the same bytes.

    ``sensor`` chooses every reading (``readings``) or min/mean/max per ``interval_s``-long interval
    (``intervals``); ``base_url`` is the service's own address, under which parties, trackers, rules and the
    certificate are named."""
    require(principal, "read")
    async with store.transaction() as tx:
        return await _export(
            tx, principal, shipment_id, sensor=sensor, interval_s=interval_s, base_url=base_url, now=now
        )


async def _export(
    tx: Transaction,
    principal: Principal,
    shipment_id: int,
    *,
    sensor: SensorMode,
    interval_s: int,
    base_url: str,
    now: datetime,
) -> bytes:
    shipment = await visible_shipment(tx, principal, shipment_id)
    product = await tx.get_product(shipment.product_id)
    if product is None:
        raise NotFound(f"no product {shipment.product_id}")
    lot = None if shipment.lot_id is None else await tx.get_lot(shipment.lot_id)
    custody = await tx.custody_events(shipment.id)
    assignments = await tx.assignments_of_shipment(shipment.id)
    serials: dict[int, str] = {}
    for assignment in assignments:
        tracker = await tx.get_tracker_by_id(assignment.tracker_id)
        if tracker is not None:
            serials[tracker.id] = tracker.serial
    by_assignment = {a.id: a for a in assignments}
    excursions = [
        TrackedExcursion(
            excursion=stored.excursion,
            serial=serials.get(by_assignment[stored.assignment_id].tracker_id, "")
            if stored.assignment_id in by_assignment
            else "",
        )
        for stored in await tx.excursions_of_shipment(shipment.id)
    ]
    excursions = [tracked for tracked in excursions if tracked.serial]

    span = _range(assignments, now)
    offset_min = 0
    sensors: RawReadings | Intervals
    if span is None:
        sensors = (
            RawReadings(readings=[]) if sensor == "readings" else Intervals(seconds=interval_s, buckets=[], devices=[])
        )
    else:
        start, end = span
        first = await tx.shipment_readings(shipment.id, start=start, end=end, after=None, limit=1)
        offset_min = first[0].reading.utc_offset_min if first else 0
        if sensor == "readings":
            sensors = RawReadings(readings=await _readings(tx, shipment.id, start, end))
        else:
            if (end - start).total_seconds() / interval_s > MAX_INTERVALS:
                raise Invalid(
                    f"interval_min: {interval_s // 60} min makes more than {MAX_INTERVALS} intervals; choose a"
                    " longer interval"
                )
            buckets = await tx.shipment_reading_buckets(shipment.id, start=start, end=end, seconds=interval_s)
            devices = [
                Device(serial=serials[a.tracker_id], starts_at=a.starts_at, ends_at=a.ends_at)
                for a in assignments
                if a.tracker_id in serials
            ]
            sensors = Intervals(seconds=interval_s, buckets=buckets, devices=devices)
    document = build_document(
        shipment=shipment,
        product=product,
        lot=lot,
        custody=custody,
        sensors=sensors,
        excursions=excursions,
        links=Links(base_url=base_url.rstrip("/")),
        offset_min=offset_min,
        serials=serials,
    )
    return encode_document(document)
