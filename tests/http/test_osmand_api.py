"""OsmAnd ingest through the real app, on each storage engine: every shared test vector, end to end.

The decoder has its own tests (tests/domain/test_osmand.py); these check what reaches the store: each accepted
request becomes one reading of the device's tracker, whose sequence number is the device time in epoch ms.
Each device of the vectors is registered as an OsmAnd tracker under its serial, and its requests are sent with
the device id the registration generated in place of the vector's own.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
from coldchain.http.osmand import UNKNOWN_DEVICE
from coldchain.settings import load_settings
from coldchain.storage import Store
from tests.osmand_vectors import ALL_VECTORS, VECTOR_IDS, VECTORS, Vector

ADMIN_TOKEN = "admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(2200, 1, 1, tzinfo=UTC)

Client = AsyncTestClient[Litestar]
DEVICES = sorted({vector.device for vector in ALL_VECTORS if vector.device is not None})


def query_string(vector: Vector) -> str:
    assert vector.request is not None
    return urlsplit(vector.request).query


async def _all_readings(store: Store) -> dict[str, list[Reading]]:
    """Every stored reading by device id (tracker serial)."""
    async with store.transaction() as tx:
        stored: dict[str, list[Reading]] = {}
        for device in DEVICES:
            tracker = await tx.get_tracker(device)
            assert tracker is not None
            readings = await tx.readings_between(tracker.id, EPOCH, END_OF_TIME)
            assert len(readings) == await tx.count_readings(tracker.id)
            if readings:
                stored[device] = readings
        assert sum(len(readings) for readings in stored.values()) == await tx.count_readings()
        return stored


def stored_readings(client: Client) -> dict[str, list[Reading]]:
    result: dict[str, list[Reading]] = client.blocking_portal.call(_all_readings, client.app.state.store)
    return result


@dataclass
class Devices:
    """The app with every device of the vectors registered as an OsmAnd tracker (serial: the vector's device)."""

    client: Client
    ids: dict[str, str]
    """The generated device id of each vector's device."""

    async def get(self, query: str) -> httpx.Response:
        return await self.client.get(f"/v1/osmand?{self.query(query)}")

    async def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        if headers.get("Content-Type") == "application/json":
            decoded = msgspec.json.decode(body)
            if isinstance(decoded, dict) and decoded.get("device_id") in self.ids:
                decoded["device_id"] = self.ids[decoded["device_id"]]
            body = msgspec.json.encode(decoded)
        else:
            body = self.query(body.decode()).encode()
        return await self.client.post("/v1/osmand", content=body, headers=headers)

    def query(self, query: str) -> str:
        """The query with the vector's device id (``id`` or ``deviceid``) replaced by the generated one."""
        for device, device_id in self.ids.items():
            query = re.sub(rf"(^|&)(id|deviceid)={re.escape(quote(device))}(?=&|$)", rf"\g<1>\g<2>={device_id}", query)
        return query


async def register_osmand(client: Client, serial: str) -> str:
    response = await client.post("/v1/trackers", json={"serial": serial, "protocol": "osmand"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    device_id: str = response.json()["device_id"]
    return device_id


@pytest.fixture
async def devices(database_url: str) -> AsyncIterator[Devices]:
    app = create_app(load_settings({}, database_url=database_url, admin_token=ADMIN_TOKEN))
    async with AsyncTestClient(app) as test_client:
        ids = {device: await register_osmand(test_client, device) for device in DEVICES}
        yield Devices(client=test_client, ids=ids)


@pytest.fixture
def client(devices: Devices) -> Client:
    return devices.client


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


async def send(devices: Devices, vector: Vector) -> httpx.Response:
    """A query-form vector as a GET with its query string, a JSON-form vector as a POST of its body."""
    if vector.request is not None:
        return await devices.get(query_string(vector))
    return await devices.post(msgspec.json.encode(vector.body), JSON)


def test_the_vectors_cover_both_forms_and_both_outcomes() -> None:
    vectors = ALL_VECTORS
    assert VECTORS.query and VECTORS.json
    assert all(vector.expect.startswith(("accepted", "rejected")) for vector in vectors)
    assert any(not vector.accepted for vector in vectors)
    assert all(vector.device is not None for vector in vectors if vector.accepted)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=VECTOR_IDS)
async def test_every_vector_sent_over_http_is_stored_as_it_states_or_refused_with_400(
    devices: Devices, client: Client, vector: Vector
) -> None:
    before = datetime.now(UTC)

    response = await send(devices, vector)

    if not vector.accepted:
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "bad_request"
        assert set(response.json()) == {"error", "detail"}
        assert stored_readings(client) == {}
        return
    assert response.status_code == 200, response.text
    assert response.text == ""
    assert_stored_as_stated(stored_readings(client), vector, before)


def assert_stored_as_stated(stored: dict[str, list[Reading]], vector: Vector, sent_after: datetime) -> None:
    """One reading of the vector's device, with the values the vector states."""
    assert list(stored) == [vector.device]
    [reading] = stored[vector.device or ""]
    assert reading.seq == (reading.device_time - EPOCH) // timedelta(milliseconds=1)
    if vector.time_utc is not None:
        assert reading.device_time == vector.time_utc
    elif "no timestamp" in vector.expect:
        assert sent_after - timedelta(milliseconds=1) <= reading.device_time <= datetime.now(UTC)
    if vector.lat is not None:
        assert reading.latitude == pytest.approx(vector.lat)
    if vector.lon is not None:
        assert reading.longitude == pytest.approx(vector.lon)
    if vector.battery_pct is not None:
        assert reading.battery_pct == pytest.approx(vector.battery_pct)
    if vector.temperature_c is not None:
        assert reading.temperature_c == pytest.approx(vector.temperature_c)
    if vector.humidity_pct is not None:
        assert reading.humidity_pct == pytest.approx(vector.humidity_pct)
    # What some vectors state only in words:
    if "no lat/lon" in vector.expect:
        assert (reading.latitude, reading.longitude) == (None, None)
    if "battery -1" in vector.expect:
        assert reading.battery_pct is None


async def test_the_same_position_sent_twice_is_stored_once(devices: Devices, client: Client) -> None:
    query = "id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z"

    first = await devices.get(query)
    again = await devices.post(query.encode(), FORM)

    assert first.status_code == again.status_code == 200
    [reading] = stored_readings(client)["902064"]
    assert reading.device_time == datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)


async def test_positions_at_different_times_are_different_readings(devices: Devices, client: Client) -> None:
    for timestamp in (1377177267, 1377177327, 1377177387):
        response = await devices.get(f"id=123456&timestamp={timestamp}&lat=60.0&lon=30.0")
        assert response.status_code == 200, response.text

    readings = stored_readings(client)["123456"]

    assert [r.seq for r in readings] == [1377177267000, 1377177327000, 1377177387000]


async def test_a_temp1_or_temperature_parameter_becomes_the_readings_temperature(
    devices: Devices, client: Client
) -> None:
    sensors = {1377177267: "temp1=4.2", 1377177327: "temperature=-18.5", 1377177387: "temp1=3.5&temperature=21.0"}
    for timestamp, sensor in sensors.items():
        response = await devices.get(f"id=123456&timestamp={timestamp}&lat=60&lon=30&{sensor}&humidity=61")
        assert response.status_code == 200, response.text

    readings = stored_readings(client)["123456"]

    # temp1 is the product's probe; a logger sending both reports its housing as "temperature".
    assert [(r.temperature_c, r.humidity_pct) for r in readings] == [(4.2, 61), (-18.5, 61), (3.5, 61)]


async def test_a_temperature_in_the_json_extras_becomes_the_readings_temperature(
    devices: Devices, client: Client
) -> None:
    body = {
        "device_id": "48241179",
        "location": {
            "timestamp": "2025-06-15T13:45:12.862+02:00",
            "coords": {"latitude": 37.42, "longitude": -122.08},
            "extras": {"temp1": "2.5"},
        },
    }

    response = await devices.post(msgspec.json.encode(body), JSON)

    assert response.status_code == 200, response.text
    [reading] = stored_readings(client)["48241179"]
    assert reading.temperature_c == 2.5
    assert reading.device_time == datetime(2025, 6, 15, 11, 45, 12, 862000, tzinfo=UTC)
    assert reading.utc_offset_min == 120


async def test_a_probe_fault_value_is_refused_with_400(devices: Devices, client: Client) -> None:
    response = await devices.get("id=123456&timestamp=1377177267&lat=60.0&lon=30.0&temp1=-127")

    assert response.status_code == 400
    assert "temp1 must be between -100 and 100" in response.json()["detail"]
    assert stored_readings(client) == {}


async def test_a_local_time_without_offset_is_read_in_the_configured_time_zone(database_url: str) -> None:
    settings = load_settings({}, database_url=database_url, admin_token=ADMIN_TOKEN, osmand_timezone="Europe/Berlin")
    async with AsyncTestClient(create_app(settings)) as client:
        device_id = await register_osmand(client, "353861053849681")

        response = await client.get(
            f"/v1/osmand?{query_string(VECTORS.query[4]).replace('353861053849681', device_id)}"
        )

        assert response.status_code == 200, response.text
        [reading] = client.blocking_portal.call(_readings_of, client.app.state.store, "353861053849681")
    # 2014-06-04 09:10:11 in Berlin (CEST, UTC+2) is 07:10:11 UTC.
    assert reading.device_time == datetime(2014, 6, 4, 7, 10, 11, tzinfo=UTC)


async def _readings_of(store: Store, serial: str) -> list[Reading]:
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        assert tracker is not None
        return await tx.readings_between(tracker.id, EPOCH, END_OF_TIME)


async def test_an_unknown_device_id_is_refused_with_401(client: Client) -> None:
    responses = [
        await client.get("/v1/osmand?id=999999&timestamp=1377177267&lat=60.0&lon=30.0"),
        await client.post("/v1/osmand", content=b"deviceid=999999&lat=60.0&lon=30.0", headers=FORM),
        await client.post(
            "/v1/osmand",
            content=b'{"device_id": "999999", "location": {"coords": {"latitude": 60.0, "longitude": 30.0}}}',
            headers=JSON,
        ),
    ]

    for response in responses:
        assert response.status_code == 401, response.text
        assert response.json() == {"error": "unauthenticated", "detail": UNKNOWN_DEVICE}
    assert stored_readings(client) == {}


async def test_an_osmand_trackers_serial_is_not_its_device_id(client: Client) -> None:
    response = await client.get("/v1/osmand?id=123456&timestamp=1377177267&lat=60.0&lon=30.0")

    assert response.status_code == 401, response.text
    assert stored_readings(client) == {}


async def test_a_signing_trackers_serial_at_the_osmand_endpoint_changes_nothing(client: Client) -> None:
    created = await client.post("/v1/trackers", json={"serial": "TRK-SIGNED"}, headers=ADMIN)
    assert created.status_code == 201, created.text
    before = await client.get("/v1/trackers/TRK-SIGNED", headers=ADMIN)

    responses = [
        await client.get("/v1/osmand?id=TRK-SIGNED&timestamp=1377177267&lat=60.0&lon=30.0&temp1=45"),
        await client.post("/v1/osmand", content=b"deviceid=TRK-SIGNED&lat=60.0&lon=30.0&temp1=45", headers=FORM),
    ]

    assert [r.status_code for r in responses] == [401, 401]
    after = await client.get("/v1/trackers/TRK-SIGNED", headers=ADMIN)
    assert after.json() == before.json()
    assert after.json()["sync"]["last_sync_at"] is None
    assert client.blocking_portal.call(_count_readings, client.app.state.store) == 0


async def _count_readings(store: Store) -> int:
    async with store.transaction() as tx:
        return await tx.count_readings()


async def test_an_osmand_tracker_gets_an_unguessable_device_id_shown_to_its_organisation_and_no_secret(
    client: Client,
) -> None:
    first = await client.post("/v1/trackers", json={"serial": "PHONE-A", "protocol": "osmand"}, headers=ADMIN)
    second = await client.post("/v1/trackers", json={"serial": "PHONE-B", "protocol": "osmand"}, headers=ADMIN)

    assert first.status_code == second.status_code == 201, (first.text, second.text)
    created = first.json()
    assert set(created) == {"tracker_id", "protocol", "device_id"}
    assert (created["tracker_id"], created["protocol"]) == ("PHONE-A", "osmand")
    assert re.fullmatch(r"[0-9a-f]{32}", created["device_id"])
    assert created["device_id"] != second.json()["device_id"]
    shown = (await client.get("/v1/trackers/PHONE-A", headers=ADMIN)).json()
    assert (shown["protocol"], shown["device_id"]) == ("osmand", created["device_id"])
    position = await client.get(f"/v1/osmand?id={created['device_id']}&timestamp=1377177267&lat=60.0&lon=30.0")
    assert position.status_code == 200, position.text


async def test_a_tracker_protocol_other_than_hmac_or_osmand_is_refused_422(client: Client) -> None:
    response = await client.post("/v1/trackers", json={"serial": "PHONE-C", "protocol": "sms"}, headers=ADMIN)

    assert response.status_code == 422, response.text
    assert "protocol" in response.json()["detail"]


@pytest.mark.parametrize("index", [7, 11], ids=["deviceid-alias", "temp1"])
async def test_a_query_vector_posted_as_a_form_body_is_stored_as_it_states(
    devices: Devices, client: Client, index: int
) -> None:
    vector = VECTORS.query[index]
    before = datetime.now(UTC)

    response = await devices.post(query_string(vector).encode(), FORM)

    assert response.status_code == 200, response.text
    assert_stored_as_stated(stored_readings(client), vector, before)
