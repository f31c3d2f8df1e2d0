"""The EPCIS 2.0 export, held against GS1's own JSON Schema and JSON-LD context: a shipment's whole chain of
custody, its readings (every one, or per interval) and an excursion; stable bytes and event ids; the LGTIN rule."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from coldchain.domain.custody import CustodyEvent, CustodyKind, Location, Signer
from coldchain.domain.epcis import (
    GS1_CONTEXT,
    Device,
    Intervals,
    Links,
    RawReadings,
    TrackedExcursion,
    build_document,
    encode_document,
    event_id,
)
from coldchain.domain.excursions import Excursion
from coldchain.domain.portal import ReadingBucket, ShipmentReading
from coldchain.domain.products import Lot, Product
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Leg, Place, Shipment
from tests.epcis_check import EPCIS, expand, schema_errors

EPCIS_IRI = "https://ref.gs1.org/epcis/"
START = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
LINKS = Links(base_url="https://coldchain.example")
SHIPPER, ROAD, AIR, PHARMACY = 1, 2, 3, 4
BERLIN = Location(lat=52.52, lon=13.405, name="Berlin hub")
MUNICH = Location(lat=48.137, lon=11.575)


def at(hours: float) -> datetime:
    return START + timedelta(hours=hours)


SHIPMENT = Shipment(
    id=7,
    organisation_id=SHIPPER,
    reference="SHP-7",
    product_id=11,
    lot_id=21,
    quantity=120,
    profile_id="fridge-2-8",
    profile_version=1,
    origin=Place(name="Berlin", lat=BERLIN.lat, lon=BERLIN.lon),
    destination=Place(name="Munich pharmacy", lat=MUNICH.lat, lon=MUNICH.lon),
    waypoints=[],
    geofence_m=500.0,
    receiver_id=PHARMACY,
    promised_at=None,
    priority="standard",
    status="delivered",
    legs=[Leg(leg_no=1, carrier_id=ROAD, mode="road"), Leg(leg_no=2, carrier_id=AIR, mode="air")],
    created_at=at(-1),
    updated_at=at(10),
)
PRODUCT = Product(
    id=11, organisation_id=SHIPPER, name="Vaccine", gtin="04012345000009", profile_id="fridge-2-8", created_at=at(-48)
)
LOT = Lot(id=21, product_id=11, lot_number="L 42/A", expires_on=date(2027, 1, 31), created_at=at(-48))


def _signer(organisation_id: int) -> Signer:
    return Signer(by="token", organisation_id=organisation_id, token_id=100 + organisation_id)


CHAIN: list[tuple[CustodyKind, int, int | None, Location, float]] = [
    ("packed", SHIPPER, None, BERLIN, 0),
    ("picked_up", ROAD, SHIPPER, BERLIN, 1),
    ("handed_over", ROAD, AIR, BERLIN, 5),
    ("arrived", AIR, None, MUNICH, 9),
    ("delivered", AIR, PHARMACY, MUNICH, 10),
    ("received", PHARMACY, AIR, MUNICH, 10.5),
]
CUSTODY = [
    CustodyEvent(
        shipment_id=SHIPMENT.id,
        seq=seq,
        kind=kind,
        party_id=party,
        counterparty_id=counterparty,
        place=place,
        occurred_at=at(hours),
        recorded_at=at(hours) + timedelta(minutes=1),
        signers=(_signer(party),) if kind != "handed_over" else (_signer(party), _signer(AIR)),
        note=None,
        prev_hash=f"{seq - 1:064x}",
        hash=f"{seq:064x}",
    )
    for seq, (kind, party, counterparty, place, hours) in enumerate(CHAIN, start=1)
]


def readings(*, warm: float = 12.0) -> list[ShipmentReading]:
    """A reading every 30 min for 11 h, in CET; two readings at ``warm`` °C at 4 h."""
    found = []
    for seq in range(1, 23):
        hours = (seq - 1) / 2
        temperature = warm if hours in (4.0, 4.5) else 5.0
        reading = Reading(
            seq=seq,
            device_time=at(hours),
            utc_offset_min=60,
            temperature_c=temperature,
            humidity_pct=40.0,
            latitude=52.0 - hours / 3,
            longitude=13.0,
        )
        found.append(ShipmentReading(tracker_id=5, serial="TRK 1", reading=reading, received_at=at(hours)))
    return found


EXCURSION = TrackedExcursion(
    serial="TRK 1",
    excursion=Excursion(
        rule="above 8 °C",
        metric="temperature",
        direction="above",
        threshold=8.0,
        start=at(4),
        start_seq=9,
        end=at(5),
        duration_min=60.0,
        uncredited_min=0.0,
        peak=12.0,
        degree_min=240.0,
    ),
)


def buckets() -> list[ReadingBucket]:
    return [
        ReadingBucket(
            start=at(hour),
            readings=2,
            temperature_min_c=5.0,
            temperature_mean_c=8.5 if hour == 4 else 5.0,
            temperature_max_c=12.0 if hour == 4 else 5.0,
            humidity_min_pct=40.0,
            humidity_mean_pct=40.0,
            humidity_max_pct=40.0,
            pressure_min_kpa=None,
            pressure_mean_kpa=None,
            pressure_max_kpa=None,
            latitude=52.0 - hour / 3,
            longitude=13.0,
        )
        for hour in range(11)
    ]


def export(sensors: RawReadings | Intervals | None = None, **changes: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "shipment": SHIPMENT,
        "product": PRODUCT,
        "lot": LOT,
        "custody": CUSTODY,
        "sensors": sensors or RawReadings(readings=readings()),
        "excursions": [EXCURSION],
        "links": LINKS,
        "offset_min": 60,
        "serials": {5: "TRK 1"},
    }
    arguments.update(changes)
    return build_document(**arguments)


INTERVALS = Intervals(seconds=3600, buckets=buckets(), devices=[Device(serial="TRK 1", starts_at=at(0), ends_at=None)])


def events(document: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = document["epcisBody"]["eventList"]
    return found


def sensor_events(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in events(document) if "sensorElementList" in event]


@pytest.mark.parametrize("name", sorted(p.name for p in (EPCIS / "examples").glob("*.jsonld")))
def test_gs1s_own_examples_validate_against_its_schema_and_expand(name: str) -> None:
    document = json.loads((EPCIS / "examples" / name).read_text(encoding="utf-8"))
    assert schema_errors(document) == []
    assert expand(document)


@pytest.mark.parametrize("sensors", [None, INTERVALS], ids=["readings", "intervals"])
def test_an_export_validates_against_gs1s_schema_and_expands_with_gs1s_context(
    sensors: Intervals | None,
) -> None:
    document = json.loads(encode_document(export(sensors)))
    assert schema_errors(document) == []
    [expanded] = expand(document)
    expanded_events = expanded[f"{EPCIS_IRI}epcisBody"][0][f"{EPCIS_IRI}eventList"]
    assert len(expanded_events) == len(events(document))
    steps = {step["@id"] for event in expanded_events for step in event[f"{EPCIS_IRI}bizStep"]}
    assert "https://ref.gs1.org/cbv/BizStep-sensor_reporting" in steps
    assert "https://ref.gs1.org/cbv/BizStep-packing" in steps or sensors is not None
    reports = [
        report
        for event in expanded_events
        for element in event.get(f"{EPCIS_IRI}sensorElementList", [])
        for report in element[f"{EPCIS_IRI}sensorReport"]
    ]
    assert {kind["@id"] for report in reports for kind in report[f"{EPCIS_IRI}measurementType"]} >= {
        "https://gs1.org/voc/Temperature",
        "https://gs1.org/voc/RelativeHumidity",
    }
    assert document["@context"][0] == GS1_CONTEXT and document["schemaVersion"] == "2.0"


def test_the_custody_chain_maps_to_cbv_steps_dispositions_and_parties() -> None:
    custody = [e for e in events(export()) if e["bizStep"] != "sensor_reporting"]
    assert [(e["bizStep"], e["disposition"]) for e in custody] == [
        ("packing", "in_progress"),
        ("shipping", "in_transit"),
        ("accepting", "in_transit"),
        ("arriving", "in_transit"),
        ("accepting", "in_progress"),
        ("receiving", "in_progress"),
    ]
    org = LINKS.organisation
    shipping, handover = custody[1], custody[2]
    assert shipping["sourceList"] == [
        {"type": "owning_party", "source": org(SHIPPER)},
        {"type": "possessing_party", "source": org(SHIPPER)},
    ]
    assert shipping["destinationList"] == [
        {"type": "owning_party", "destination": org(PHARMACY)},
        {"type": "possessing_party", "destination": org(ROAD)},
    ]
    assert handover["sourceList"] == [{"type": "possessing_party", "source": org(ROAD)}]
    assert handover["destinationList"] == [{"type": "possessing_party", "destination": org(AIR)}]
    assert handover["coldchain:signedBy"] == [org(ROAD), org(AIR)]
    assert "bizLocation" not in shipping and custody[0]["bizLocation"] == {"id": "geo:52.520000,13.405000"}
    assert custody[0]["eventTime"] == "2026-03-01T09:00:00.000+01:00" and custody[0]["eventTimeZoneOffset"] == "+01:00"
    assert {e["certificationInfo"] for e in custody} == {"https://coldchain.example/v1/shipments/7/certificate"}
    assert custody[0]["quantityList"] == [
        {"epcClass": "https://id.gs1.org/01/04012345000009/10/L%2042%2FA", "quantity": 120}
    ]


def test_readings_and_intervals_become_sensor_reports_and_the_excursion_an_alarm_condition() -> None:
    [day] = [e for e in sensor_events(export()) if len(e["sensorElementList"]) > 1]
    first = day["sensorElementList"][0]
    assert first["sensorMetadata"] == {
        "time": "2026-03-01T09:00:00.000+01:00",
        "deviceID": "https://coldchain.example/v1/trackers/TRK%201",
    }
    assert first["sensorReport"][:2] == [
        {"type": "Temperature", "value": 5.0, "uom": "CEL"},
        {"type": "RelativeHumidity", "value": 40.0, "uom": "P1"},
    ]
    [alarm] = [e for e in sensor_events(export()) if "exception" in e["sensorElementList"][0]["sensorReport"][0]]
    assert alarm["sensorElementList"][0]["sensorReport"] == [
        {"type": "Temperature", "exception": "ALARM_CONDITION", "maxValue": 12.0, "uom": "CEL"}
    ]
    [hourly] = [e for e in sensor_events(export(INTERVALS)) if len(e["sensorElementList"]) > 1]
    fifth = hourly["sensorElementList"][4]
    assert fifth["sensorMetadata"]["startTime"] == "2026-03-01T13:00:00.000+01:00"
    assert fifth["sensorMetadata"]["dataProcessingMethod"].endswith("interval-min-mean-max?seconds=3600")
    assert fifth["sensorReport"][0] == {
        "type": "Temperature",
        "minValue": 5.0,
        "meanValue": 8.5,
        "maxValue": 12.0,
        "uom": "CEL",
    }


def test_a_wrong_business_step_fails_validation() -> None:
    document = json.loads(encode_document(export()))
    broken = copy.deepcopy(document)
    events(broken)[1]["bizStep"] = "ship"
    assert schema_errors(document) == []
    assert schema_errors(broken), "a bizStep that is neither a CBV term nor a URI must fail"
    gs1_address = copy.deepcopy(document)
    sensor_events(gs1_address)[0]["sensorElementList"][0]["sensorReport"][0]["type"] = "https://gs1.org/voc/Temperature"
    assert schema_errors(gs1_address)


def test_a_reexport_has_the_same_bytes_and_a_changed_reading_changes_only_its_events_id() -> None:
    assert encode_document(export()) == encode_document(export())
    assert encode_document(export(INTERVALS)) == encode_document(export(INTERVALS))
    before = [e["eventID"] for e in events(export())]
    after = [e["eventID"] for e in events(export(RawReadings(readings=readings(warm=12.5))))]
    assert len(before) == len(after) and len(set(before)) == len(before)
    assert [b == a for b, a in zip(before, after, strict=True)].count(False) == 1
    for event in events(export()):
        assert event["eventID"] == event_id(event)
        assert event["eventID"].startswith("ni:///sha-256;") and event["eventID"].endswith("?ver=coldchain-1")


def test_the_lot_is_master_data_and_a_product_without_a_gtin_is_named_by_the_services_uri() -> None:
    document = export()
    [vocabulary] = document["epcisHeader"]["epcisMasterData"]["vocabularyList"]
    assert vocabulary["vocabularyElementList"] == [
        {
            "id": "https://id.gs1.org/01/04012345000009/10/L%2042%2FA",
            "attributes": [
                {"id": "urn:epcglobal:cbv:mda#lotNumber", "attribute": "L 42/A"},
                {"id": "urn:epcglobal:cbv:mda#itemExpirationDate", "attribute": "2027-01-31"},
            ],
        }
    ]
    plain = export(
        product=Product(id=11, organisation_id=SHIPPER, name="Vaccine", gtin=None, profile_id=None, created_at=at(-48))
    )
    assert events(plain)[0]["quantityList"] == [
        {"epcClass": "https://coldchain.example/v1/products/11/lots/21", "quantity": 120}
    ]
    assert schema_errors(json.loads(encode_document(plain))) == []
    no_lot = export(
        lot=None,
        product=PRODUCT.__class__(
            **{**{f: getattr(PRODUCT, f) for f in PRODUCT.__struct_fields__}, "gtin": "4012345000009"}
        ),
    )
    assert events(no_lot)[0]["quantityList"][0]["epcClass"] == "https://id.gs1.org/01/04012345000009"
    assert "epcisHeader" not in no_lot


def test_the_creation_date_is_the_time_of_the_latest_fact_not_of_the_request() -> None:
    assert export()["creationDate"] == "2026-03-01T19:31:00.000+01:00"
