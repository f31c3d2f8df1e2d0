"""A shipment as a GS1 EPCIS 2.0 document (JSON-LD): its chain of custody as ObjectEvents with CBV 2.0 business
steps and dispositions, its readings as sensor data, its excursions as alarm conditions.

What maps to what (CBV 2.0 terms; EPCIS 2.0 §7, CBV 2.0 §7-§8)::

    custody kind   bizStep        disposition   bizLocation     sourceList → destinationList
    packed         packing        in_progress   the place       -
    picked_up      shipping       in_transit    -               owning: shipper, possessing: giver →
                                                                owning: receiver, possessing: carrier
    handed_over    accepting      in_transit    -               possessing: giving carrier → taking carrier
    arrived        arriving       in_transit    the place       -
    delivered      accepting      in_progress   the place       possessing: carrier → receiver
    received       receiving      in_progress   the place       owning: shipper, possessing: deliverer →
                                                                owning: receiver, possessing: receiver

``accepting`` is CBV's step for a change of possession; ``received`` leaves the goods ``in_progress`` because their
release is the pharmacist's decision, not the export's. Every custody event has the event's place as its
``readPoint`` (a ``geo:`` URI, RFC 5870), the link to the shipment's certificate as ``certificationInfo``, and the
chain's own sequence number, hash and signers as extension fields (``coldchain:``).

Sensor data: ObjectEvents with bizStep ``sensor_reporting``, one per tracker and UTC day (so a changed reading
changes only its day's event). With ``readings`` every reading is a sensor element (``time``, ``deviceID``: the
tracker); with ``intervals`` each element is one interval's ``minValue``/``meanValue``/``maxValue`` (``startTime``,
``endTime``, ``dataProcessingMethod``). Measurement types and units: ``Temperature`` in ``CEL``,
``RelativeHumidity`` in ``P1`` (percent), ``Pressure`` in ``KPA``, the position as ``Angle`` with component
``latitude``/``longitude`` in ``DD`` (UN/CEFACT Recommendation 20 codes). Each excursion is an event of its own
whose sensor report carries ``exception: ALARM_CONDITION`` and the peak (``maxValue`` above the limit,
``minValue`` below it), with ``bizRules`` naming the profile's rule.

What the goods are: ``quantityList`` with one element, the shipment's quantity of the class
``https://id.gs1.org/01/<GTIN-14>/10/<lot>`` (an LGTIN as a GS1 Digital Link URI; the GTIN alone when the
shipment has no lot). A product without a GTIN has no GS1 class: its class is the service's own URI of the
product (or lot), ``<base>/v1/products/<id>[/lots/<id>]``, which EPCIS 2.0 admits as a non-GS1 identifier. The
lot's number and expiry are master data of that class in the header (CBV master data attributes
``urn:epcglobal:cbv:mda#lotNumber`` and ``#itemExpirationDate``).

Parties, trackers and rules are named by the service's own URIs under ``base_url``
(``<base>/v1/organisations/<id>``, ``<base>/v1/trackers/<serial>``, ``<base>/v1/profiles/<id>/versions/<n>#...``),
since the service knows no GLN of them.

Event ids: ``ni:///sha-256;<hex>?ver=coldchain-1`` where ``<hex>`` is the SHA-256 of the event's canonical JSON
(:func:`~coldchain.domain.canonical.canonical_json`: keys sorted, no whitespace) without its ``eventID``. This is
not CBV 2.0's event hash algorithm (hence not ``ver=CBV2.0``): it is a content hash over this document's own
form, enough to make ids stable across exports and to change with any field of the event.

Times are RFC 3339 with milliseconds in the device's offset: a reading's own, and for custody events and
intervals the offset of the shipment's first reading (UTC without readings). ``creationDate`` is the time of the
latest fact the document holds (the shipment's last change, the last custody record, the last reading or
interval, the last excursion), not the time of the request: the same facts always give the same bytes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from coldchain.domain.canonical import canonical_json
from coldchain.domain.custody import CustodyEvent, CustodyKind, Signer
from coldchain.domain.excursions import Excursion
from coldchain.domain.portal import ReadingBucket, ShipmentReading
from coldchain.domain.products import Lot, Product
from coldchain.domain.shipments import Shipment

__all__ = [
    "BIZ_STEPS",
    "DISPOSITIONS",
    "EVENT_ID_VERSION",
    "GS1_CONTEXT",
    "Device",
    "Intervals",
    "Links",
    "RawReadings",
    "SensorMode",
    "TrackedExcursion",
    "build_document",
    "encode_document",
    "event_id",
    "goods_class",
]

GS1_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
EVENT_ID_VERSION = "coldchain-1"
"""Names the event-id hash in the ``ver`` parameter of the ``ni`` URI (RFC 6920)."""

SensorMode = Literal["readings", "intervals"]

BIZ_STEPS: Mapping[CustodyKind, str] = {
    "packed": "packing",
    "picked_up": "shipping",
    "handed_over": "accepting",
    "arrived": "arriving",
    "delivered": "accepting",
    "received": "receiving",
}
DISPOSITIONS: Mapping[CustodyKind, str] = {
    "packed": "in_progress",
    "picked_up": "in_transit",
    "handed_over": "in_transit",
    "arrived": "in_transit",
    "delivered": "in_progress",
    "received": "in_progress",
}
_AT_THE_PLACE: frozenset[CustodyKind] = frozenset({"packed", "arrived", "delivered", "received"})
"""Custody steps after which the goods are at the event's place (its bizLocation); in transit they are nowhere."""

_MDA = "urn:epcglobal:cbv:mda#"


class Links(msgspec.Struct, frozen=True, kw_only=True):
    """The service's own URIs, under ``base_url`` (scheme and host, no trailing slash)."""

    base_url: str

    def organisation(self, organisation_id: int) -> str:
        return f"{self.base_url}/v1/organisations/{organisation_id}"

    def tracker(self, serial: str) -> str:
        return f"{self.base_url}/v1/trackers/{quote(serial, safe='')}"

    def certificate(self, shipment_id: int) -> str:
        return f"{self.base_url}/v1/shipments/{shipment_id}/certificate"

    def product(self, product_id: int, lot_id: int | None) -> str:
        lot = "" if lot_id is None else f"/lots/{lot_id}"
        return f"{self.base_url}/v1/products/{product_id}{lot}"

    def rule(self, profile_id: str, version: int, rule: str) -> str:
        return f"{self.base_url}/v1/profiles/{quote(profile_id, safe='')}/versions/{version}#{quote(rule, safe='')}"

    def interval_method(self, seconds: int) -> str:
        """What an interval's values are: min, arithmetic mean and max of its readings, per ``seconds``-long
        interval aligned to the Unix epoch."""
        return f"{self.base_url}/epcis/methods/interval-min-mean-max?seconds={seconds}"

    @property
    def operator(self) -> str:
        return f"{self.base_url}/operator"

    @property
    def vocabulary(self) -> str:
        return f"{self.base_url}/epcis/vocab#"


class RawReadings(msgspec.Struct, frozen=True, kw_only=True):
    """Every reading of the shipment, in (device time, tracker, seq) order."""

    readings: Sequence[ShipmentReading]


class Device(msgspec.Struct, frozen=True, kw_only=True):
    """A tracker's assignment to the shipment: which device measured in ``[starts_at, ends_at)``."""

    serial: str
    starts_at: datetime
    ends_at: datetime | None


class Intervals(msgspec.Struct, frozen=True, kw_only=True):
    """The shipment's readings summarised per ``seconds``-long interval. An interval's ``deviceID`` is named
    when exactly one assigned tracker measured during it (the summary mixes every tracker of the shipment)."""

    seconds: int
    buckets: Sequence[ReadingBucket]
    devices: Sequence[Device]


class TrackedExcursion(msgspec.Struct, frozen=True, kw_only=True):
    excursion: Excursion
    serial: str


# --- Small forms ----------------------------------------------------------------------------------------------


def _zone(offset_min: int) -> timezone:
    return timezone(timedelta(minutes=offset_min))


def _offset(offset_min: int) -> str:
    sign = "-" if offset_min < 0 else "+"
    hours, minutes = divmod(abs(offset_min), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


def _time(moment: datetime, offset_min: int) -> str:
    return moment.astimezone(_zone(offset_min)).isoformat(timespec="milliseconds")


def _degrees(value: float) -> str:
    return f"{value:.6f}"


def _geo(lat: float, lon: float) -> str:
    """A ``geo:`` URI (RFC 5870), WGS-84, to a tenth of a metre."""
    return f"geo:{_degrees(lat)},{_degrees(lon)}"


def _mean(value: float) -> float:
    """Means computed by the database differ in their last bits between engines; three decimals are far below any
    sensor's resolution."""
    return round(value, 3)


def event_id(event: Mapping[str, Any]) -> str:
    """The content-hash id of ``event`` (its ``eventID``, if any, left out)."""
    content = {key: value for key, value in event.items() if key != "eventID"}
    digest = hashlib.sha256(canonical_json(content)).hexdigest()
    return f"ni:///sha-256;{digest}?ver={EVENT_ID_VERSION}"


def _with_id(event: dict[str, Any]) -> dict[str, Any]:
    return {"type": event["type"], "eventID": event_id(event), **{k: v for k, v in event.items() if k != "type"}}


def goods_class(product: Product, lot: Lot | None, links: Links) -> str:
    """The EPC class of the shipped goods: an LGTIN (GTIN alone without a lot) as a GS1 Digital Link URI, or the
    service's URI of the product or lot when the product has no GTIN."""
    if product.gtin is None:
        return links.product(product.id, None if lot is None else lot.id)
    gtin = product.gtin.zfill(14)
    if lot is None:
        return f"https://id.gs1.org/01/{gtin}"
    return f"https://id.gs1.org/01/{gtin}/10/{quote(lot.lot_number, safe='')}"


# --- Custody --------------------------------------------------------------------------------------------------


def _party(kind: str, organisation_id: int | None, links: Links, *, source: bool) -> list[dict[str, str]]:
    if organisation_id is None:
        return []
    return [{"type": kind, "source" if source else "destination": links.organisation(organisation_id)}]


def _transfer(
    shipment: Shipment, event: CustodyEvent, links: Links
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(sourceList, destinationList) of a custody event."""
    giver, taker = event.counterparty_id, event.party_id
    if event.kind in ("handed_over", "delivered"):
        giver, taker = event.party_id, event.counterparty_id
    if event.kind in ("picked_up", "received"):
        sources = _party("owning_party", shipment.organisation_id, links, source=True)
        sources += _party("possessing_party", giver, links, source=True)
        destinations = _party("owning_party", shipment.receiver_id, links, source=False)
        destinations += _party("possessing_party", taker, links, source=False)
        return sources, destinations
    if event.kind in ("handed_over", "delivered"):
        return (
            _party("possessing_party", giver, links, source=True),
            _party("possessing_party", taker, links, source=False),
        )
    return [], []


def _signer(signer: Signer, links: Links, serials: Mapping[int, str]) -> str:
    """Who vouched for a custody event: the organisation of a token or person, the tracker of an automatic
    arrival, or the platform operator."""
    serial = None if signer.tracker_id is None else serials.get(signer.tracker_id)
    if signer.by == "geofence" and serial is not None:
        return links.tracker(serial)
    if signer.organisation_id is None:
        return links.operator
    return links.organisation(signer.organisation_id)


def _custody_event(
    shipment: Shipment,
    event: CustodyEvent,
    goods: list[dict[str, Any]],
    links: Links,
    offset_min: int,
    serials: Mapping[int, str],
) -> dict[str, Any]:
    place = _geo(event.place.lat, event.place.lon)
    built: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": _time(event.occurred_at, offset_min),
        "eventTimeZoneOffset": _offset(offset_min),
        "certificationInfo": links.certificate(shipment.id),
        "action": "OBSERVE",
        "quantityList": goods,
        "bizStep": BIZ_STEPS[event.kind],
        "disposition": DISPOSITIONS[event.kind],
        "readPoint": {"id": place},
    }
    if event.kind in _AT_THE_PLACE:
        built["bizLocation"] = {"id": place}
    sources, destinations = _transfer(shipment, event, links)
    if sources:
        built["sourceList"] = sources
    if destinations:
        built["destinationList"] = destinations
    built["coldchain:custodySeq"] = event.seq
    built["coldchain:custodyHash"] = event.hash
    built["coldchain:signedBy"] = sorted({_signer(signer, links, serials) for signer in event.signers})
    return built


# --- Sensor data ----------------------------------------------------------------------------------------------


def _report(kind: str, uom: str, **values: float | None) -> list[dict[str, Any]]:
    present = {name: value for name, value in values.items() if value is not None}
    return [{"type": kind, **present, "uom": uom}] if present else []


def _position(lat: float | None, lon: float | None, name: str) -> list[dict[str, Any]]:
    if lat is None or lon is None:
        return []
    return [
        {"type": "Angle", "component": "latitude", name: lat, "uom": "DD"},
        {"type": "Angle", "component": "longitude", name: lon, "uom": "DD"},
    ]


def _reading_element(found: ShipmentReading, links: Links) -> dict[str, Any] | None:
    reading = found.reading
    reports = [
        *_report("Temperature", "CEL", value=reading.temperature_c),
        *_report("RelativeHumidity", "P1", value=reading.humidity_pct),
        *_report("Pressure", "KPA", value=reading.pressure_kpa),
        *_position(reading.latitude, reading.longitude, "value"),
    ]
    if not reports:
        return None
    metadata = {"time": _time(reading.device_time, reading.utc_offset_min), "deviceID": links.tracker(found.serial)}
    return {"sensorMetadata": metadata, "sensorReport": reports}


def _sensor_event(
    elements: list[dict[str, Any]], last: datetime, offset_min: int, where: str | None, goods: list[dict[str, Any]]
) -> dict[str, Any]:
    built: dict[str, Any] = {
        "type": "ObjectEvent",
        "eventTime": _time(last, offset_min),
        "eventTimeZoneOffset": _offset(offset_min),
        "action": "OBSERVE",
        "quantityList": goods,
        "bizStep": "sensor_reporting",
    }
    if where is not None:
        built["readPoint"] = {"id": where}
    built["sensorElementList"] = elements
    return built


def _reading_events(
    readings: Iterable[ShipmentReading], links: Links, goods: list[dict[str, Any]]
) -> list[tuple[datetime, dict[str, Any]]]:
    groups: dict[tuple[str, date], list[ShipmentReading]] = {}
    for found in readings:
        groups.setdefault((found.serial, found.reading.device_time.astimezone(UTC).date()), []).append(found)
    events = []
    for (_serial, _day), members in sorted(groups.items()):
        members.sort(key=lambda found: (found.reading.device_time, found.reading.seq))
        elements = [element for found in members if (element := _reading_element(found, links)) is not None]
        if not elements:
            continue
        last = members[-1].reading
        where = _last_place((m.reading.latitude, m.reading.longitude) for m in members)
        events.append((last.device_time, _sensor_event(elements, last.device_time, last.utc_offset_min, where, goods)))
    return events


def _last_place(points: Iterable[tuple[float | None, float | None]]) -> str | None:
    """The ``geo:`` URI of the last known position among ``points`` (``None``: none known)."""
    where = None
    for lat, lon in points:
        if lat is not None and lon is not None:
            where = _geo(lat, lon)
    return where


def _device_of(start: datetime, end: datetime, devices: Sequence[Device]) -> str | None:
    serials = {
        device.serial
        for device in devices
        if device.starts_at < end and (device.ends_at is None or start < device.ends_at)
    }
    return next(iter(serials)) if len(serials) == 1 else None


def _interval_element(
    bucket: ReadingBucket, seconds: int, devices: Sequence[Device], links: Links, offset_min: int
) -> dict[str, Any] | None:
    def stats(low: float | None, mean: float | None, high: float | None) -> dict[str, float | None]:
        return {"minValue": low, "meanValue": None if mean is None else _mean(mean), "maxValue": high}

    reports = [
        *_report(
            "Temperature", "CEL", **stats(bucket.temperature_min_c, bucket.temperature_mean_c, bucket.temperature_max_c)
        ),
        *_report(
            "RelativeHumidity",
            "P1",
            **stats(bucket.humidity_min_pct, bucket.humidity_mean_pct, bucket.humidity_max_pct),
        ),
        *_report(
            "Pressure", "KPA", **stats(bucket.pressure_min_kpa, bucket.pressure_mean_kpa, bucket.pressure_max_kpa)
        ),
        *_position(
            None if bucket.latitude is None else round(bucket.latitude, 6),
            None if bucket.longitude is None else round(bucket.longitude, 6),
            "meanValue",
        ),
    ]
    if not reports:
        return None
    end = bucket.start + timedelta(seconds=seconds)
    metadata = {"startTime": _time(bucket.start, offset_min), "endTime": _time(end, offset_min)}
    serial = _device_of(bucket.start, end, devices)
    if serial is not None:
        metadata["deviceID"] = links.tracker(serial)
    metadata["dataProcessingMethod"] = links.interval_method(seconds)
    return {"sensorMetadata": metadata, "sensorReport": reports}


def _interval_events(
    intervals: Intervals, links: Links, goods: list[dict[str, Any]], offset_min: int
) -> list[tuple[datetime, dict[str, Any]]]:
    groups: dict[date, list[ReadingBucket]] = {}
    for bucket in intervals.buckets:
        groups.setdefault(bucket.start.astimezone(UTC).date(), []).append(bucket)
    events = []
    for _day, members in sorted(groups.items()):
        members.sort(key=lambda bucket: bucket.start)
        elements = [
            element
            for bucket in members
            if (element := _interval_element(bucket, intervals.seconds, intervals.devices, links, offset_min))
            is not None
        ]
        if not elements:
            continue
        last = members[-1].start + timedelta(seconds=intervals.seconds)
        where = _last_place((bucket.latitude, bucket.longitude) for bucket in members)
        events.append((last, _sensor_event(elements, last, offset_min, where, goods)))
    return events


_METRICS = {
    "temperature": ("Temperature", "CEL"),
    "humidity": ("RelativeHumidity", "P1"),
    "pressure": ("Pressure", "KPA"),
}


def _excursion_event(
    shipment: Shipment, tracked: TrackedExcursion, links: Links, goods: list[dict[str, Any]], offset_min: int
) -> dict[str, Any]:
    excursion = tracked.excursion
    kind, uom = _METRICS[excursion.metric]
    metadata = {"startTime": _time(excursion.start, offset_min)}
    if excursion.end is not None:
        metadata["endTime"] = _time(excursion.end, offset_min)
    metadata["deviceID"] = links.tracker(tracked.serial)
    metadata["bizRules"] = links.rule(shipment.profile_id, shipment.profile_version, excursion.rule)
    peak = "maxValue" if excursion.direction == "above" else "minValue"
    report = {"type": kind, "exception": "ALARM_CONDITION", peak: excursion.peak, "uom": uom}
    return _sensor_event(
        [{"sensorMetadata": metadata, "sensorReport": [report]}], excursion.start, offset_min, None, goods
    )


# --- The document ---------------------------------------------------------------------------------------------


def _master_data(cls: str, lot: Lot | None) -> dict[str, Any] | None:
    if lot is None:
        return None
    attributes: list[dict[str, Any]] = [{"id": f"{_MDA}lotNumber", "attribute": lot.lot_number}]
    if lot.expires_on is not None:
        attributes.append({"id": f"{_MDA}itemExpirationDate", "attribute": lot.expires_on.isoformat()})
    vocabulary = {
        "type": "urn:epcglobal:epcis:vtype:EPCClass",
        "vocabularyElementList": [{"id": cls, "attributes": attributes}],
    }
    return {"epcisMasterData": {"vocabularyList": [vocabulary]}}


def build_document(
    *,
    shipment: Shipment,
    product: Product,
    lot: Lot | None,
    custody: Sequence[CustodyEvent],
    sensors: RawReadings | Intervals,
    excursions: Sequence[TrackedExcursion],
    links: Links,
    offset_min: int,
    serials: Mapping[int, str],
) -> dict[str, Any]:
    """The shipment's EPCIS 2.0 document (see the module's docstring for what maps to what), as JSON-ready
    builtins in a fixed key order. ``offset_min`` is the device's UTC offset for times that carry none of
    their own (custody events, intervals, excursions); ``serials`` names the trackers by id (for the signer of
    an automatic arrival)."""
    cls = goods_class(product, lot, links)
    goods = [{"epcClass": cls, "quantity": shipment.quantity}]
    timed: list[tuple[datetime, int, dict[str, Any]]] = []
    for event in custody:
        timed.append((event.occurred_at, 0, _custody_event(shipment, event, goods, links, offset_min, serials)))
    if isinstance(sensors, RawReadings):
        sensor_events = _reading_events(sensors.readings, links, goods)
    else:
        sensor_events = _interval_events(sensors, links, goods, offset_min)
    timed += [(moment, 1, built) for moment, built in sensor_events]
    for tracked in excursions:
        timed.append((tracked.excursion.start, 2, _excursion_event(shipment, tracked, links, goods, offset_min)))

    events = [_with_id(built) for _moment, _rank, built in timed]
    order = sorted(range(len(events)), key=lambda i: (timed[i][0], timed[i][1], events[i]["eventID"]))

    facts = [shipment.updated_at, *(event.recorded_at for event in custody), *(moment for moment, _r, _e in timed)]
    facts += [t.excursion.end for t in excursions if t.excursion.end is not None]
    document: dict[str, Any] = {
        "@context": [GS1_CONTEXT, {"coldchain": links.vocabulary}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _time(max(facts), offset_min),
    }
    header = _master_data(cls, lot)
    if header is not None:
        document["epcisHeader"] = header
    document["epcisBody"] = {"eventList": [events[i] for i in order]}
    return document


def encode_document(document: Mapping[str, Any]) -> bytes:
    """The document's bytes as served: compact JSON in the document's own key order."""
    return msgspec.json.encode(document)
