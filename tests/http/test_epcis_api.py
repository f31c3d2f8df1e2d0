"""The EPCIS 2.0 export through the real app, on each storage engine: a shipment with a whole chain of custody
(a hand-over between carriers included), a tracker's readings through the sync API and an excursion; the export
validates against GS1's schema and expands with GS1's context, is byte-stable, and is nobody else's to read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.settings import load_settings
from tests.epcis_check import expand, schema_errors
from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON, bearer
from tests.http.test_sync_api import as_json, assert_error, post_batch
from tests.http.test_tenancy_api import new_org, new_token

Client = AsyncTestClient[Litestar]

START = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
BERLIN = {"lat": 52.52, "lon": 13.405, "name": "Berlin hub"}
MUNICH = {"lat": 48.137, "lon": 11.575}
SERIAL = "TRK-EPCIS"
GTIN = "04012345000009"
CET = timezone(timedelta(hours=1))


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


@dataclass
class Trip:
    client: Client
    sid: int
    secret: str
    logistics: dict[str, str]
    auditor: dict[str, str]
    carrier: dict[str, str]
    outsider: dict[str, str]

    def path(self, query: str = "") -> str:
        return f"/v1/shipments/{self.sid}/epcis{query}"


def reading(seq: int, hours: float, temperature_c: float) -> dict[str, object]:
    return {
        "seq": seq,
        "device_time": (START + timedelta(hours=hours)).astimezone(CET).isoformat(),  # the device's own offset
        "temperature_c": temperature_c,
        "humidity_pct": 45.0,
        "latitude": 52.5 - hours * 0.4,
        "longitude": 13.4 - hours * 0.18,
    }


def journey() -> list[dict[str, object]]:
    """A reading every 15 min for 10 h at 5 °C, but 12 °C from 3 h to 4.5 h."""
    return [reading(i + 1, i / 4, 12.0 if 12 <= i < 18 else 5.0) for i in range(41)]


async def sync(trip: Trip, *readings: dict[str, object]) -> None:
    response = await post_batch(trip.client, trip.secret, as_json({"readings": list(readings)}), serial=SERIAL)
    assert response.status_code == 200, response.text


async def record(client: Client, sid: int, headers: dict[str, str], kind: str, hours: float, place: Any) -> None:
    body = {"kind": kind, "place": place, "occurred_at": at(hours)}
    response = await client.post(f"/v1/shipments/{sid}/custody", json=body, headers=headers)
    assert response.status_code == 201, response.text


@pytest.fixture
async def trip(database_url: str) -> AsyncIterator[Trip]:
    app = create_app(load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN))
    async with AsyncTestClient(app) as client:
        fridge = next(
            p for p in json.loads(PROFILES_JSON.read_text(encoding="utf-8"))["profiles"] if p["id"] == FRIDGE_PROFILE
        )
        assert (await client.post("/v1/profiles", json=fridge, headers=OPERATOR_HEADERS)).status_code in (200, 201)
        shipper = await new_org(client, "Shipper")
        road, air = await new_org(client, "Road", "carrier"), await new_org(client, "Air", "carrier")
        pharmacy, outsider = await new_org(client, "Pharmacy", "receiver"), await new_org(client, "Other shipper")
        logistics = bearer(await new_token(client, shipper, "logistics"))
        product = await client.post(
            "/v1/products", json={"name": "Vaccine", "profile_id": FRIDGE_PROFILE, "gtin": GTIN}, headers=logistics
        )
        assert product.status_code == 201, product.text
        lot = await client.post(
            f"/v1/products/{product.json()['id']}/lots",
            json={"lot_number": "L42", "expires_on": "2027-01-31"},
            headers=logistics,
        )
        assert lot.status_code == 201, lot.text
        shipment = await client.post(
            "/v1/shipments",
            json={
                "reference": "SHP-EPCIS",
                "product_id": product.json()["id"],
                "lot_id": lot.json()["id"],
                "quantity": 120,
                "origin": BERLIN,
                "destination": {"name": "Munich pharmacy", **MUNICH},
                "legs": [{"carrier_id": road, "mode": "road"}, {"carrier_id": air, "mode": "air"}],
                "receiver_id": pharmacy,
                "geofence_m": 500.0,
            },
            headers=logistics,
        )
        assert shipment.status_code == 201, shipment.text
        sid = shipment.json()["id"]
        registered = await client.post("/v1/trackers", json={"serial": SERIAL}, headers=logistics)
        assert registered.status_code == 201, registered.text
        assigned = await client.post(
            f"/v1/shipments/{sid}/trackers", json={"serial": SERIAL, "starts_at": at(0)}, headers=logistics
        )
        assert assigned.status_code == 201, assigned.text
        a, b = bearer(await new_token(client, road, "carrier")), bearer(await new_token(client, air, "carrier"))
        await record(client, sid, logistics, "packed", 0, BERLIN)
        await record(client, sid, a, "picked_up", 0.5, BERLIN)
        proposed = await client.post(
            f"/v1/shipments/{sid}/custody/handovers",
            json={"to_organisation_id": air, "place": BERLIN, "occurred_at": at(2)},
            headers=a,
        )
        assert proposed.status_code == 201, proposed.text
        accepted = await client.post(f"/v1/shipments/{sid}/custody/handovers/{proposed.json()['id']}/accept", headers=b)
        assert accepted.status_code == 201, accepted.text
        trip = Trip(
            client=client,
            sid=sid,
            secret=registered.json()["secret"],
            logistics=logistics,
            auditor=bearer(await new_token(client, shipper, "auditor")),
            carrier=a,
            outsider=bearer(await new_token(client, outsider, "admin")),
        )
        await sync(trip, *journey())
        await record(client, sid, b, "arrived", 9.5, MUNICH)
        await record(client, sid, b, "delivered", 10, MUNICH)
        pharmacist = bearer(await new_token(client, pharmacy, "logistics"))
        await record(client, sid, pharmacist, "received", 10.25, MUNICH)
        yield trip


async def export(trip: Trip, query: str = "", headers: dict[str, str] | None = None) -> bytes:
    response = await trip.client.get(trip.path(query), headers=headers or trip.auditor)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/ld+json")
    return response.content


def events(document: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = document["epcisBody"]["eventList"]
    return found


@pytest.mark.parametrize("query", ["", "?sensor=readings", "?sensor=intervals", "?sensor=intervals&interval_min=15"])
async def test_every_export_validates_against_gs1s_schema_and_expands_with_gs1s_context(trip: Trip, query: str) -> None:
    document = json.loads(await export(trip, query))
    assert schema_errors(document) == []
    [expanded] = expand(document)
    assert len(expanded["https://ref.gs1.org/epcis/epcisBody"][0]["https://ref.gs1.org/epcis/eventList"]) == len(
        events(document)
    )
    steps = [event["bizStep"] for event in events(document) if event["bizStep"] != "sensor_reporting"]
    assert steps == ["packing", "shipping", "accepting", "arriving", "accepting", "receiving"]
    alarms = [
        report
        for event in events(document)
        for element in event.get("sensorElementList", [])
        for report in element["sensorReport"]
        if report.get("exception") == "ALARM_CONDITION"
    ]
    assert alarms and all(report["maxValue"] == 12.0 for report in alarms), alarms
    assert events(document)[0]["quantityList"] == [
        {"epcClass": f"https://id.gs1.org/01/{GTIN}/10/L42", "quantity": 120}
    ]
    certificate = f"http://testserver.local/v1/shipments/{trip.sid}/certificate"
    assert events(document)[0]["certificationInfo"] == certificate
    elements = [
        element
        for event in events(document)
        for element in event.get("sensorElementList", [])
        if "bizRules" not in element["sensorMetadata"]  # the excursions'
    ]
    if "intervals" in query:
        assert all("dataProcessingMethod" in element["sensorMetadata"] for element in elements)
    else:
        assert sum("time" in element["sensorMetadata"] for element in elements) == len(journey())


async def test_a_wrong_business_step_fails_gs1s_schema(trip: Trip) -> None:
    document = json.loads(await export(trip))
    events(document)[0]["bizStep"] = "pack"
    assert schema_errors(document)


async def test_a_reexport_is_byte_identical_and_a_late_reading_changes_only_its_days_event_id(trip: Trip) -> None:
    first, again = await export(trip), await export(trip, headers=trip.carrier)
    assert first == again
    assert await export(trip, "?sensor=intervals") == await export(trip, "?sensor=intervals")
    before = [event["eventID"] for event in events(json.loads(first))]

    await sync(trip, reading(100, 9.75, 5.5))  # one more reading, on the day of the trip
    after = [event["eventID"] for event in events(json.loads(await export(trip)))]
    assert len(after) == len(before) and len(set(after) - set(before)) == 1


async def test_another_organisation_gets_404_and_bad_parameters_422(trip: Trip) -> None:
    refused = await trip.client.get(trip.path(), headers=trip.outsider)
    assert_error(refused, 404, "not_found", f"no shipment {trip.sid}")
    for query in ("?sensor=raw", "?sensor=intervals&interval_min=0", "?interval_min=1441", "?format=xml"):
        response = await trip.client.get(trip.path(query), headers=trip.auditor)
        assert response.status_code == 422, (query, response.text)
