"""Every bad input gets a clear 4xx in the one error shape, never a 500 or an aborted answer: ids beyond what the
database holds, dates whose offset pushes them past year 1 or 9999, and JSON that cannot be decoded."""

from __future__ import annotations

import pytest

from tests.factories import OPERATOR_HEADERS
from tests.http.test_shipments_api import World, create, shipment_body
from tests.http.test_sync_api import as_json, as_msgpack, assert_error, batch, held, post_batch, reading, register

BEYOND_ANY_ID = 2**63  # one past the largest signed 64-bit integer: SQLite raised OverflowError on it
WAY_BEYOND = 2**64
YEAR_ZERO = "0001-01-01T00:00:00+14:00"  # 31 December of year 0 in UTC
YEAR_10000 = "9999-12-31T23:00:00-14:00"


def paths_with_ids(shipment_id: int, big: int) -> list[tuple[str, str]]:
    return [
        ("GET", f"/v1/shipments/{big}"),
        ("GET", f"/v1/shipments/{big}/status"),
        ("GET", f"/v1/shipments/{big}/eta"),
        ("GET", f"/v1/shipments/{big}/custody"),
        ("GET", f"/v1/shipments/{big}/excursions"),
        ("GET", f"/v1/organisations/{big}/tokens"),
        ("DELETE", f"/v1/organisations/1/tokens/{big}"),
        ("GET", f"/v1/products/{big}"),
        ("GET", f"/v1/products/{big}/lots"),
        ("GET", f"/v1/webhooks/{big}/deliveries"),
        ("DELETE", f"/v1/webhooks/{big}"),
        ("POST", f"/v1/shipments/{shipment_id}/custody/handovers/{big}/accept"),
        ("POST", f"/v1/shipments/{shipment_id}/trackers/{big}/end"),
        ("POST", f"/v1/shipments/{shipment_id}/alarms/{big}/acknowledge"),
        ("POST", f"/v1/shipments/{big}/logger-files"),
        ("GET", f"/v1/profiles/who-e006-tr06-fridge/versions/{2**31}"),
        ("GET", f"/v1/profiles/who-e006-tr06-fridge/versions/{big}"),
    ]


@pytest.mark.parametrize("big", [BEYOND_ANY_ID, WAY_BEYOND, 0])
async def test_a_path_id_that_no_row_can_have_is_404(world: World, big: int) -> None:
    shipment = await create(world)
    for method, path in paths_with_ids(shipment["id"], big):
        body = {"comment": "checked"} if path.endswith("acknowledge") else {}
        response = await world.client.request(method, path, headers=OPERATOR_HEADERS, json=body)
        assert_error(response, 404, "not_found")


async def test_ids_in_bodies_and_queries_beyond_the_database_are_422(world: World) -> None:
    client = world.client
    refused = [
        await client.post(
            "/v1/shipments", json=shipment_body(world, product_id=BEYOND_ANY_ID), headers=world.logistics
        ),
        await client.post("/v1/shipments", json=shipment_body(world, lot_id=WAY_BEYOND), headers=world.logistics),
        await client.post(
            "/v1/trackers", json={"serial": "T-1", "organisation_id": BEYOND_ANY_ID}, headers=OPERATOR_HEADERS
        ),
        await client.post(
            "/v1/products", json={"name": "X", "organisation_id": BEYOND_ANY_ID}, headers=OPERATOR_HEADERS
        ),
        await client.get(f"/v1/products?organisation_id={BEYOND_ANY_ID}", headers=OPERATOR_HEADERS),
        await client.get(f"/v1/webhooks?organisation_id={WAY_BEYOND}", headers=OPERATOR_HEADERS),
        await client.get(f"/v1/events?organisation_id={BEYOND_ANY_ID}", headers=OPERATOR_HEADERS),
    ]
    for response in refused:
        assert_error(response, 422, "invalid")
    shipment = await create(world)
    handover = await client.post(
        f"/v1/shipments/{shipment['id']}/custody/handovers",
        json={
            "to_organisation_id": BEYOND_ANY_ID,
            "place": {"lat": 52.5, "lon": 13.4},
            "occurred_at": "2026-05-01T10:00:00Z",
        },
        headers=world.logistics,
    )
    assert_error(handover, 422, "invalid", "to_organisation_id")


@pytest.mark.parametrize("moment", [YEAR_ZERO, YEAR_10000])
async def test_a_date_with_no_utc_form_is_422_naming_the_field(world: World, moment: str) -> None:
    client = world.client
    assert_error(
        await client.post("/v1/shipments", json=shipment_body(world, promised_at=moment), headers=world.logistics),
        422,
        "invalid",
        "promised_at",
        "years 1 to 9999",
    )
    shipment = await create(world)
    sid = shipment["id"]
    assert (await client.post("/v1/trackers", json={"serial": "TRK-D"}, headers=world.logistics)).status_code == 201
    custody = {"kind": "packed", "place": {"lat": 52.5, "lon": 13.4}, "occurred_at": moment}
    assert_error(
        await client.post(f"/v1/shipments/{sid}/custody", json=custody, headers=world.logistics),
        422,
        "invalid",
        "occurred_at",
    )
    assigned = {"serial": "TRK-D", "starts_at": moment}
    assert_error(
        await client.post(f"/v1/shipments/{sid}/trackers", json=assigned, headers=world.logistics),
        422,
        "invalid",
        "starts_at",
    )
    assert_error(
        await client.post(f"/v1/shipments/{sid}/trackers/1/end", json={"ends_at": moment}, headers=world.logistics),
        422,
        "invalid",
        "ends_at",
    )


@pytest.mark.parametrize("encode", [as_json, as_msgpack])
@pytest.mark.parametrize("moment", [YEAR_ZERO, YEAR_10000])
async def test_a_synced_reading_with_no_utc_form_is_quarantined_and_acknowledged(
    world: World, moment: str, encode: object
) -> None:
    client = world.client
    secret = await register(client)
    body = batch(reading(1), {"seq": 2, "device_time": moment, "temperature_c": 5.0}, reading(3))
    content = encode(body)  # type: ignore[operator]
    content_type = "application/json" if encode is as_json else "application/msgpack"

    first = await post_batch(client, secret, content, content_type=content_type)
    again = await post_batch(client, secret, content, content_type=content_type)

    assert first.status_code == 200, first.text
    assert (first.json()["acked_through"], first.json()["new"], first.json()["quarantined"]) == (3, 2, 1)
    assert (again.status_code, again.json()["duplicates"]) == (200, 3), "a retry is a plain duplicate"
    [(kept, reason)] = held(client).quarantined
    assert kept.seq == 2
    assert "falls outside years 1 to 9999 in UTC" in reason


NESTED = b"[" * 100_000
NOT_UTF8 = b'{"name": "\xff\xfe"}'
TRUNCATED = b'{"name": '


@pytest.mark.parametrize("body", [NESTED, NOT_UTF8, TRUNCATED])
async def test_a_json_body_that_cannot_be_decoded_is_400_on_every_json_route(world: World, body: bytes) -> None:
    shipment = await create(world)
    sid = shipment["id"]
    routes = [
        "/v1/organisations",
        f"/v1/organisations/{world.shipper}/tokens",
        "/v1/trackers",
        "/v1/products",
        f"/v1/products/{world.product_id}/lots",
        "/v1/profiles",
        "/v1/shipments",
        f"/v1/shipments/{sid}/status",
        f"/v1/shipments/{sid}/trackers",
        f"/v1/shipments/{sid}/trackers/1/end",
        f"/v1/shipments/{sid}/custody",
        f"/v1/shipments/{sid}/custody/handovers",
        f"/v1/shipments/{sid}/alarms/1/acknowledge",
        "/v1/webhooks",
    ]
    for path in routes:
        response = await world.client.post(
            path, content=body, headers={**OPERATOR_HEADERS, "Content-Type": "application/json"}
        )
        assert response.status_code == 400, (path, response.text)
        assert_error(response, 400, "bad_request")


async def test_a_batch_sent_by_a_clock_with_no_utc_form_is_taken_and_its_readings_quarantined(world: World) -> None:
    client = world.client
    secret = await register(client)
    body = batch({"seq": 1, "device_time": YEAR_ZERO, "temperature_c": 5.0}, reading(2))
    body["sent_at"] = YEAR_ZERO

    response = await post_batch(client, secret, as_json(body))

    assert response.status_code == 200, response.text
    assert (response.json()["acked_through"], response.json()["new"], response.json()["quarantined"]) == (2, 1, 1)
    status = await client.get("/v1/trackers/TRK-0001", headers=OPERATOR_HEADERS)
    assert status.json()["sync"]["clock_offset_s"] is None, "a clock with no UTC form measures no drift"
