"""OsmAnd ingest through the real app, on each storage engine: every shared test vector, end to end.

The decoder has its own tests (tests/domain/test_osmand.py); these check what reaches the store: each accepted
request becomes one reading of the device's tracker, whose sequence number is the device time in epoch ms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
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


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    """The app with every device id of the vectors registered as a tracker."""
    app = create_app(load_settings({}, database_url=database_url, admin_token=ADMIN_TOKEN))
    async with AsyncTestClient(app) as test_client:
        for device in DEVICES:
            response = await test_client.post("/v1/trackers", json={"serial": device}, headers=ADMIN)
            assert response.status_code == 201, response.text
        yield test_client


FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


async def send(client: Client, vector: Vector) -> httpx.Response:
    """A query-form vector as a GET with its query string, a JSON-form vector as a POST of its body."""
    if vector.request is not None:
        return await client.get(f"/v1/osmand?{query_string(vector)}")
    return await client.post("/v1/osmand", content=msgspec.json.encode(vector.body), headers=JSON)


def test_the_vectors_cover_both_forms_and_both_outcomes() -> None:
    vectors = ALL_VECTORS
    assert VECTORS.query and VECTORS.json
    assert all(vector.expect.startswith(("accepted", "rejected")) for vector in vectors)
    assert any(not vector.accepted for vector in vectors)
    assert all(vector.device is not None for vector in vectors if vector.accepted)


@pytest.mark.parametrize("vector", ALL_VECTORS, ids=VECTOR_IDS)
async def test_every_vector_sent_over_http_is_stored_as_it_states_or_refused_with_400(
    client: Client, vector: Vector
) -> None:
    before = datetime.now(UTC)

    response = await send(client, vector)

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


async def test_the_same_position_sent_twice_is_stored_once(client: Client) -> None:
    query = "id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z"

    first = await client.get(f"/v1/osmand?{query}")
    again = await client.post("/v1/osmand", content=query.encode(), headers=FORM)

    assert first.status_code == again.status_code == 200
    [reading] = stored_readings(client)["902064"]
    assert reading.device_time == datetime(2016, 1, 27, 18, 55, 47, tzinfo=UTC)


async def test_positions_at_different_times_are_different_readings(client: Client) -> None:
    for timestamp in (1377177267, 1377177327, 1377177387):
        response = await client.get(f"/v1/osmand?id=123456&timestamp={timestamp}&lat=60.0&lon=30.0")
        assert response.status_code == 200, response.text

    readings = stored_readings(client)["123456"]

    assert [r.seq for r in readings] == [1377177267000, 1377177327000, 1377177387000]


async def test_a_temp1_or_temperature_parameter_becomes_the_readings_temperature(client: Client) -> None:
    sensors = {1377177267: "temp1=4.2", 1377177327: "temperature=-18.5", 1377177387: "temp1=3.5&temperature=21.0"}
    for timestamp, sensor in sensors.items():
        response = await client.get(f"/v1/osmand?id=123456&timestamp={timestamp}&lat=60&lon=30&{sensor}&humidity=61")
        assert response.status_code == 200, response.text

    readings = stored_readings(client)["123456"]

    # temp1 is the product's probe; a logger sending both reports its housing as "temperature".
    assert [(r.temperature_c, r.humidity_pct) for r in readings] == [(4.2, 61), (-18.5, 61), (3.5, 61)]


async def test_a_temperature_in_the_json_extras_becomes_the_readings_temperature(client: Client) -> None:
    body = {
        "device_id": "48241179",
        "location": {
            "timestamp": "2025-06-15T13:45:12.862+02:00",
            "coords": {"latitude": 37.42, "longitude": -122.08},
            "extras": {"temp1": "2.5"},
        },
    }

    response = await client.post("/v1/osmand", content=msgspec.json.encode(body), headers=JSON)

    assert response.status_code == 200, response.text
    [reading] = stored_readings(client)["48241179"]
    assert reading.temperature_c == 2.5
    assert reading.device_time == datetime(2025, 6, 15, 11, 45, 12, 862000, tzinfo=UTC)
    assert reading.utc_offset_min == 120


async def test_a_probe_fault_value_is_refused_with_400(client: Client) -> None:
    response = await client.get("/v1/osmand?id=123456&timestamp=1377177267&lat=60.0&lon=30.0&temp1=-127")

    assert response.status_code == 400
    assert "temp1 must be between -100 and 100" in response.json()["detail"]
    assert stored_readings(client) == {}


async def test_a_local_time_without_offset_is_read_in_the_configured_time_zone(database_url: str) -> None:
    settings = load_settings({}, database_url=database_url, admin_token=ADMIN_TOKEN, osmand_timezone="Europe/Berlin")
    async with AsyncTestClient(create_app(settings)) as client:
        await client.post("/v1/trackers", json={"serial": "353861053849681"}, headers=ADMIN)

        response = await client.get(f"/v1/osmand?{query_string(VECTORS.query[4])}")

        assert response.status_code == 200, response.text
        [reading] = client.blocking_portal.call(_readings_of, client.app.state.store, "353861053849681")
    # 2014-06-04 09:10:11 in Berlin (CEST, UTC+2) is 07:10:11 UTC.
    assert reading.device_time == datetime(2014, 6, 4, 7, 10, 11, tzinfo=UTC)


async def _readings_of(store: Store, serial: str) -> list[Reading]:
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        assert tracker is not None
        return await tx.readings_between(tracker.id, EPOCH, END_OF_TIME)


async def test_an_unknown_device_is_refused_with_404_naming_it(client: Client) -> None:
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
        assert response.status_code == 404, response.text
        assert response.json() == {
            "error": "not_found",
            "detail": "unknown device '999999': register it as a tracker first",
        }
    assert stored_readings(client) == {}


@pytest.mark.parametrize("index", [7, 11], ids=["deviceid-alias", "temp1"])
async def test_a_query_vector_posted_as_a_form_body_is_stored_as_it_states(client: Client, index: int) -> None:
    vector = VECTORS.query[index]
    before = datetime.now(UTC)

    response = await client.post("/v1/osmand", content=query_string(vector).encode(), headers=FORM)

    assert response.status_code == 200, response.text
    assert_stored_as_stated(stored_readings(client), vector, before)
