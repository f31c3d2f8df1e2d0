"""The APIs the portal stands on, through the real app on each storage engine: the board, a shipment's readings
(paged by key, CSV, summarised per bucket) and the alarm inbox."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from tests.factories import OPERATOR_HEADERS
from tests.http.test_shipments_api import World, create
from tests.http.test_sync_api import assert_error, sign
from tests.http.test_tenant_isolation import NOW, busy_shipment


async def sync(world: World, serial: str, secret: str, readings: list[dict[str, object]]) -> None:
    body = json.dumps({"readings": readings}).encode()
    response = await world.client.post(
        f"/v1/trackers/{serial}/sync",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": sign(body, secret)},
    )
    assert response.status_code == 200, response.text


async def test_the_board_shows_each_shipment_in_transit_with_its_latest_facts_and_state(world: World) -> None:
    sid, _ = await busy_shipment(world)
    await create(world, reference="SHP-PLANNED")  # planned: not on the board

    board = (await world.client.get("/v1/board", headers=world.logistics)).json()

    [line] = board["shipments"]
    assert (line["shipment_id"], line["reference"], line["product_name"], line["lot_number"]) == (
        sid,
        "SHP-1",
        "Vaccine",
        "L-1",
    )
    assert line["temperature_c"] == -3.0
    assert line["temperature_at"].startswith(
        (NOW - timedelta(hours=6) + timedelta(minutes=200)).strftime("%Y-%m-%dT%H:%M")
    )
    assert line["open_alarms"] >= 1
    assert line["state"] == "late_data", "readings six hours old raise alarms detected late: reported as the past"
    assert line["custodian_id"] == world.shipper, "the packed event names the shipper as custodian"
    assert line["last_sync_at"] is not None


async def test_the_board_takes_the_latest_position_and_temperature_of_any_tracker_of_the_shipment(
    world: World,
) -> None:
    sid, _ = await busy_shipment(world)
    registered = await world.client.post("/v1/trackers", json={"serial": "TRK-GPS"}, headers=world.logistics)
    start = NOW - timedelta(minutes=30)
    assigned = await world.client.post(
        f"/v1/shipments/{sid}/trackers",
        json={"serial": "TRK-GPS", "starts_at": start.isoformat()},
        headers=world.logistics,
    )
    assert assigned.status_code == 201, assigned.text
    fix = {"seq": 1, "device_time": NOW.isoformat(), "temperature_c": 5.5, "latitude": 50.1, "longitude": 10.2}
    before = (await world.client.get("/v1/board", headers=world.carrier_token)).json()["shipments"][0]

    await sync(world, "TRK-GPS", registered.json()["secret"], [fix])

    after = (await world.client.get("/v1/board", headers=world.carrier_token)).json()["shipments"][0]
    assert (before["latitude"], before["temperature_c"]) == (None, -3.0)
    assert (after["latitude"], after["longitude"], after["temperature_c"]) == (50.1, 10.2, 5.5)
    assert after["position_at"] == after["temperature_at"]


async def test_readings_come_in_pages_by_key_each_exactly_once_in_time_order(world: World) -> None:
    sid, _ = await busy_shipment(world)
    seen: list[int] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 7}
        if after is not None:
            params["after"] = after
        page = (await world.client.get(f"/v1/shipments/{sid}/readings", params=params, headers=world.logistics)).json()
        seen += [r["seq"] for r in page["readings"]]
        pages += 1
        after = page["next"]
        if after is None:
            break

    assert seen == list(range(1, 41))
    assert pages == 6


async def test_readings_of_a_time_range_as_csv(world: World) -> None:
    sid, _ = await busy_shipment(world)
    start = NOW - timedelta(hours=6) + timedelta(minutes=50)
    end = start + timedelta(minutes=25)

    response = await world.client.get(
        f"/v1/shipments/{sid}/readings",
        params={"start": start.isoformat(), "end": end.isoformat(), "format": "csv"},
        headers=world.logistics,
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(row["seq"]) for row in rows] == [10, 11, 12, 13, 14]
    assert rows[0]["serial"] == "TRK-1"
    assert float(rows[0]["temperature_c"]) == -3.0


async def test_a_resolution_gives_min_mean_and_max_per_bucket(world: World) -> None:
    sid, _ = await busy_shipment(world)
    tracker = await world.client.get(f"/v1/shipments/{sid}/trackers", headers=world.logistics)
    assert tracker.status_code == 200

    answer = (
        await world.client.get(f"/v1/shipments/{sid}/readings", params={"resolution": 3600}, headers=world.logistics)
    ).json()

    buckets = answer["buckets"]
    assert answer["resolution_s"] == 3600
    assert answer["readings"] is None
    assert sum(b["readings"] for b in buckets) == 40
    assert all(b["temperature_min_c"] == b["temperature_mean_c"] == b["temperature_max_c"] == -3.0 for b in buckets)
    assert all(b["humidity_mean_pct"] is None for b in buckets)
    starts = [b["start"] for b in buckets]
    assert starts == sorted(starts)
    assert all(s.endswith(":00:00Z") for s in starts), "buckets are aligned to whole hours"


async def test_bad_ranges_and_keys_are_refused_with_the_reason(world: World) -> None:
    sid, _ = await busy_shipment(world)
    path = f"/v1/shipments/{sid}/readings"

    backwards = await world.client.get(
        path, params={"start": NOW.isoformat(), "end": (NOW - timedelta(hours=1)).isoformat()}, headers=world.logistics
    )
    too_fine = await world.client.get(path, params={"resolution": 1}, headers=world.logistics)
    bad_key = await world.client.get(path, params={"after": "yesterday"}, headers=world.logistics)

    assert_error(backwards, 422, "invalid", "end")
    assert_error(too_fine, 422, "invalid", "resolution")
    assert_error(bad_key, 422, "invalid", "after")


async def test_the_inbox_lists_unacknowledged_alarms_until_they_are_acknowledged(world: World) -> None:
    sid, ids = await busy_shipment(world)

    inbox = (await world.client.get("/v1/alarms", headers=world.receiver_token)).json()
    assert [(item["shipment_id"], item["reference"]) for item in inbox] == [(sid, "SHP-1")] * len(inbox)
    assert ids["alarm_id"] in [item["alarm"]["id"] for item in inbox]

    for item in inbox:
        acknowledged = await world.client.post(
            f"/v1/shipments/{sid}/alarms/{item['alarm']['id']}/acknowledge",
            json={"comment": "moved to a cold room"},
            headers=world.logistics,
        )
        assert acknowledged.status_code == 200, acknowledged.text
    assert (await world.client.get("/v1/alarms", headers=world.logistics)).json() == []


async def session_of(world: World, org: int, role: str, name: str, email: str) -> dict[str, str]:
    user = {"role": role, "name": name, "email": email, "password": "a long password"}
    created = await world.client.post(f"/v1/organisations/{org}/users", json=user, headers=OPERATOR_HEADERS)
    assert created.status_code == 201, created.text
    signed = await world.client.post("/v1/session", json={"email": user["email"], "password": user["password"]})
    world.client.cookies.clear()
    return {"Cookie": signed.headers["set-cookie"].split(";", 1)[0], "X-CSRF-Token": signed.json()["csrf_token"]}


async def test_a_users_acknowledgement_and_custody_signature_name_the_person(world: World) -> None:
    sid, ids = await busy_shipment(world)
    session = await session_of(world, world.shipper, "logistics", "Lena Logistik", "lena@shipper.example")
    driver = await session_of(world, world.carrier, "carrier", "Carl Carrier", "carl@carrier.example")

    acknowledged = await world.client.post(
        f"/v1/shipments/{sid}/alarms/{ids['alarm_id']}/acknowledge", json={"comment": "checked"}, headers=session
    )
    picked = {"kind": "picked_up", "place": {"lat": 52.5, "lon": 13.4}, "occurred_at": NOW.isoformat()}
    recorded = await world.client.post(f"/v1/shipments/{sid}/custody", json=picked, headers=driver)

    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["acknowledged_by"].startswith("Lena Logistik <lena@shipper.example>")
    assert recorded.status_code == 201, recorded.text
    [signer] = recorded.json()["signers"]
    assert (signer["by"], signer["name"], signer["email"]) == ("user", "Carl Carrier", "carl@carrier.example")
    verified = await world.client.get(f"/v1/shipments/{sid}/custody/verify", headers=session)
    assert verified.json()["intact"] is True
