"""Tenant isolation across every shipment-scoped route: another organisation's token gets 404 and changes nothing.

The routes are enumerated from the application itself, so a new shipment route without an entry here fails the
test instead of escaping it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import OPERATOR_HEADERS
from tests.http.test_shipments_api import World, create
from tests.http.test_sync_api import assert_error, sign
from tests.paths import BERLINGER

LOGGER_FILE = BERLINGER
NOW = datetime.now(UTC).replace(microsecond=0)

# Every shipment-scoped route, with a request that would be valid for a party of the shipment.
REQUESTS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/v1/shipments/{shipment_id:int}"): {},
    ("POST", "/v1/shipments/{shipment_id:int}/status"): {"json": {"status": "cancelled"}},
    ("GET", "/v1/shipments/{shipment_id:int}/status"): {},
    ("POST", "/v1/shipments/{shipment_id:int}/trackers"): {"json": {"serial": "TRK-OUTSIDER"}},
    ("GET", "/v1/shipments/{shipment_id:int}/trackers"): {},
    ("POST", "/v1/shipments/{shipment_id:int}/trackers/{assignment_id:int}/end"): {"json": {}},
    ("GET", "/v1/shipments/{shipment_id:int}/eta"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/alarms"): {},
    ("POST", "/v1/shipments/{shipment_id:int}/alarms/{alarm_id:int}/acknowledge"): {"json": {"comment": "seen"}},
    ("GET", "/v1/shipments/{shipment_id:int}/excursions"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/quarantined"): {},
    ("POST", "/v1/shipments/{shipment_id:int}/logger-files"): {
        "content": (LOGGER_FILE / "fridgetag2_130400191542_202302140605.txt").read_bytes(),
        "headers": {"Content-Type": "text/plain"},
    },
    ("GET", "/v1/shipments/{shipment_id:int}/custody"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/epcis"): {},
    ("POST", "/v1/shipments/{shipment_id:int}/custody"): {
        "json": {"kind": "packed", "place": {"lat": 52.52, "lon": 13.405}, "occurred_at": NOW.isoformat()}
    },
    ("POST", "/v1/shipments/{shipment_id:int}/custody/handovers"): {
        "json": {"to_organisation_id": 2, "place": {"lat": 52.52, "lon": 13.405}, "occurred_at": NOW.isoformat()}
    },
    ("POST", "/v1/shipments/{shipment_id:int}/custody/handovers/{handover_id:int}/accept"): {"json": {}},
    ("GET", "/v1/shipments/{shipment_id:int}/custody/verify"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/readings"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/readings.csv"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/readings.csv.sha256"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/quarantined.csv"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/investigation"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/excursion-report"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/decisions"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/certificate"): {},
    ("GET", "/v1/shipments/{shipment_id:int}/certificate.pdf"): {},
    ("POST", "/v1/shipments/{shipment_id:int}/decisions"): {
        "json": {"outcome": "reject", "snapshot_sha256": "0" * 64, "password": "a long password"}
    },
    ("POST", "/v1/shipments/{shipment_id:int}/decisions/{decision_id:int}/approval"): {
        "json": {"password": "a long password"}
    },
    ("PUT", "/v1/shipments/{shipment_id:int}/follow"): {},
    ("DELETE", "/v1/shipments/{shipment_id:int}/follow"): {},
}

# Routes across the caller's shipments: another tenant's shipments are simply not in the answer.
ACROSS_SHIPMENTS = ("/v1/board", "/v1/alarms")

SNAPSHOT = ("", "/trackers", "/status", "/alarms", "/excursions", "/quarantined", "/custody", "/custody/verify")


def shipment_routes(world: World) -> set[tuple[str, str]]:
    return {
        (method, route.path)
        for route in world.client.app.routes
        if route.path.startswith("/v1/shipments/{shipment_id")
        for method in route.methods - {"OPTIONS", "HEAD"}
    }


async def busy_shipment(world: World) -> tuple[int, dict[str, int]]:
    """A shipment with a tracker, readings judged into an alarm and an excursion, and a custody event."""
    client, headers = world.client, world.logistics
    sid = (await create(world))["id"]
    secret = (await client.post("/v1/trackers", json={"serial": "TRK-1"}, headers=headers)).json()["secret"]
    start = NOW - timedelta(hours=6)
    assignment = await client.post(
        f"/v1/shipments/{sid}/trackers", json={"serial": "TRK-1", "starts_at": start.isoformat()}, headers=headers
    )
    packed = {"kind": "packed", "place": {"lat": 52.52, "lon": 13.405}, "occurred_at": start.isoformat()}
    assert (await client.post(f"/v1/shipments/{sid}/custody", json=packed, headers=headers)).status_code == 201
    assert (await client.post(f"/v1/shipments/{sid}/status", json={"status": "in_transit"}, headers=headers)).is_success
    readings = [
        {"seq": n, "device_time": (start + timedelta(minutes=5 * n)).isoformat(), "temperature_c": -3.0}
        for n in range(1, 41)
    ]
    body = json.dumps({"readings": readings}).encode()
    synced = await client.post(
        "/v1/trackers/TRK-1/sync",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": sign(body, secret)},
    )
    assert synced.status_code == 200, synced.text
    alarms = (await client.get(f"/v1/shipments/{sid}/alarms", headers=headers)).json()
    assert alarms, "the freezing readings raised an alarm"
    return sid, {
        "assignment_id": assignment.json()["id"],
        "alarm_id": alarms[0]["id"],
        "handover_id": 1,
        "decision_id": 1,
    }


async def snapshot(world: World, sid: int) -> list[Any]:
    return [
        (await world.client.get(f"/v1/shipments/{sid}{suffix}", headers=world.logistics)).json() for suffix in SNAPSHOT
    ]


async def outsider_session(world: World) -> dict[str, str]:
    """Headers of a request made with a session of the outsider's admin: the cookie and the CSRF token."""
    user = {"role": "admin", "name": "Olga Outsider", "email": "olga@outsider.example", "password": "a long password"}
    created = await world.client.post(f"/v1/organisations/{world.outsider}/users", json=user, headers=OPERATOR_HEADERS)
    assert created.status_code == 201, created.text
    signed = await world.client.post("/v1/session", json={"email": user["email"], "password": user["password"]})
    assert signed.status_code == 201, signed.text
    session_id = signed.headers["set-cookie"].split(";", 1)[0]
    world.client.cookies.clear()
    return {"Cookie": session_id, "X-CSRF-Token": signed.json()["csrf_token"]}


async def test_every_shipment_route_answers_404_to_another_tenant_and_changes_nothing(world: World) -> None:
    assert shipment_routes(world) == set(REQUESTS), "every shipment-scoped route needs a request in REQUESTS"
    sid, ids = await busy_shipment(world)
    assert (
        await world.client.post("/v1/trackers", json={"serial": "TRK-OUTSIDER"}, headers=world.outsider_admin)
    ).is_success
    before = await snapshot(world, sid)
    session = await outsider_session(world)

    for credentials in (world.outsider_admin, session):
        for (method, template), request in sorted(REQUESTS.items()):
            path = template.replace("{shipment_id:int}", str(sid))
            for name, value in ids.items():
                path = path.replace(f"{{{name}:int}}", str(value))
            headers = {**credentials, **request.get("headers", {})}
            response = await world.client.request(
                method, path, json=request.get("json"), content=request.get("content"), headers=headers
            )
            assert_error(response, 404, "not_found", str(sid))

    assert await snapshot(world, sid) == before


async def test_the_board_and_the_alarm_inbox_show_another_tenant_nothing_of_the_shipment(world: World) -> None:
    sid, _ = await busy_shipment(world)
    session = await outsider_session(world)

    for path in ACROSS_SHIPMENTS:
        for credentials in (world.outsider_admin, session):
            response = await world.client.get(path, headers=credentials)
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["shipments"] if isinstance(body, dict) else body) == []
        party = await world.client.get(path, headers=world.logistics)
        body = party.json()
        assert [sid] == sorted(
            {item["shipment_id"] for item in (body["shipments"] if isinstance(body, dict) else body)}
        )


async def test_the_same_requests_reach_the_shipment_for_its_parties(world: World) -> None:
    """The requests above are not refused for their shape: a party gets past the scoping on every GET."""
    sid, _ = await busy_shipment(world)

    for (method, template), _request in REQUESTS.items():
        if method == "GET" and template.count("{") == 1:
            path = template.replace("{shipment_id:int}", str(sid))
            for headers in (world.logistics, world.carrier_token, world.receiver_token, OPERATOR_HEADERS):
                response = await world.client.get(path, headers=headers)
                assert response.status_code == 200, (path, response.text)
