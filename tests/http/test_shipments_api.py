"""The shipments API through the real app, on each storage engine: set-up, lifecycle, tracker assignments, and
tenant isolation (another organisation's shipment does not exist for the caller)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.documents.signing import make_pilot_signer
from coldchain.http.app import create_app
from coldchain.keys import generate_keys
from coldchain.services import decisions
from coldchain.services.errors import Busy
from coldchain.settings import load_settings
from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON, bearer
from tests.http.test_sync_api import assert_error
from tests.http.test_tenancy_api import new_org, new_token

Client = AsyncTestClient[Litestar]


def signing_keys(folder: Path) -> dict[str, str]:
    """Settings naming a fresh signing key, its JWKS and a pilot's PDF signer in ``folder``."""
    made = generate_keys(folder, pdf_signer=make_pilot_signer("coldchain tests", "coldchain"))
    return {
        "signing_key_file": str(made.signing_key_file),
        "published_keys_file": str(made.published_keys_file),
        "pdf_signer_file": str(made.pdf_signer_file),
    }


@dataclass
class World:
    client: Client
    shipper: int
    carrier: int
    receiver: int
    outsider: int
    logistics: dict[str, str]
    carrier_token: dict[str, str]
    receiver_token: dict[str, str]
    outsider_admin: dict[str, str]
    product_id: int
    lot_id: int


@pytest.fixture
async def world(database_url: str, tmp_path: Path) -> AsyncIterator[World]:
    keys = signing_keys(tmp_path / "keys")
    app = create_app(load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN, **keys))
    async with AsyncTestClient(app) as client:
        fridge = next(
            p for p in json.loads(PROFILES_JSON.read_text(encoding="utf-8"))["profiles"] if p["id"] == FRIDGE_PROFILE
        )
        assert (await client.post("/v1/profiles", json=fridge, headers=OPERATOR_HEADERS)).status_code in (200, 201)
        shipper, carrier = await new_org(client, "Shipper"), await new_org(client, "Carrier", "carrier")
        receiver, outsider = await new_org(client, "Pharmacy", "receiver"), await new_org(client, "Other shipper")
        logistics = bearer(await new_token(client, shipper, "logistics"))
        product = await client.post(
            "/v1/products", json={"name": "Vaccine", "profile_id": FRIDGE_PROFILE}, headers=logistics
        )
        lot = await client.post(
            f"/v1/products/{product.json()['id']}/lots", json={"lot_number": "L-1"}, headers=logistics
        )
        yield World(
            client=client,
            shipper=shipper,
            carrier=carrier,
            receiver=receiver,
            outsider=outsider,
            logistics=logistics,
            carrier_token=bearer(await new_token(client, carrier, "carrier")),
            receiver_token=bearer(await new_token(client, receiver, "logistics")),
            outsider_admin=bearer(await new_token(client, outsider, "admin")),
            product_id=product.json()["id"],
            lot_id=lot.json()["id"],
        )


def shipment_body(world: World, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reference": "SHP-1",
        "product_id": world.product_id,
        "lot_id": world.lot_id,
        "quantity": 120,
        "origin": {"name": "Berlin hub", "lat": 52.52, "lon": 13.405},
        "destination": {"name": "Munich pharmacy", "lat": 48.137, "lon": 11.575},
        "waypoints": [[50.98, 11.03]],
        "legs": [{"carrier_id": world.carrier, "mode": "road"}],
        "receiver_id": world.receiver,
        "promised_at": "2026-05-02T12:00:00Z",
        "priority": "urgent",
    }
    body.update(changes)
    return body


async def create(world: World, **changes: Any) -> dict[str, Any]:
    response = await world.client.post("/v1/shipments", json=shipment_body(world, **changes), headers=world.logistics)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_a_shipment_pins_the_profile_version_current_at_its_creation(world: World) -> None:
    first = await create(world)
    fridge = (await world.client.get(f"/v1/profiles/{FRIDGE_PROFILE}", headers=world.logistics)).json()
    fridge["name"] += " (revised)"
    fridge.pop("version")
    assert (await world.client.post("/v1/profiles", json=fridge, headers=OPERATOR_HEADERS)).json()["version"] == 2

    second = await create(world, reference="SHP-2")

    assert (first["profile_id"], first["profile_version"]) == (FRIDGE_PROFILE, 1)
    assert second["profile_version"] == 2
    again = (await world.client.get(f"/v1/shipments/{first['id']}", headers=world.logistics)).json()
    assert again["profile_version"] == 1, "a new profile version never re-judges an existing shipment"
    assert (again["status"], again["legs"], again["priority"]) == (
        "planned",
        [{"leg_no": 1, "carrier_id": world.carrier, "mode": "road"}],
        "urgent",
    )


async def test_every_party_sees_the_shipment_and_nobody_else_does(world: World) -> None:
    shipment = await create(world)
    path = f"/v1/shipments/{shipment['id']}"

    for headers in (world.logistics, world.carrier_token, world.receiver_token, OPERATOR_HEADERS):
        assert (await world.client.get(path, headers=headers)).status_code == 200
        assert [s["id"] for s in (await world.client.get("/v1/shipments", headers=headers)).json()] == [shipment["id"]]
    assert_error(await world.client.get(path, headers=world.outsider_admin), 404, "not_found")
    assert (await world.client.get("/v1/shipments", headers=world.outsider_admin)).json() == []
    assert_error(await world.client.get("/v1/shipments/999999", headers=world.logistics), 404, "not_found")


async def test_another_tenant_changes_nothing_through_any_shipment_route(world: World) -> None:
    shipment = await create(world)
    sid = shipment["id"]
    outsider = world.outsider_admin
    client = world.client
    assert (await client.post("/v1/trackers", json={"serial": "TRK-X"}, headers=outsider)).status_code == 201

    attempts = [
        await client.post(f"/v1/shipments/{sid}/status", json={"status": "cancelled"}, headers=outsider),
        await client.post(f"/v1/shipments/{sid}/trackers", json={"serial": "TRK-X"}, headers=outsider),
        await client.get(f"/v1/shipments/{sid}/trackers", headers=outsider),
        await client.post(f"/v1/shipments/{sid}/trackers/1/end", json={}, headers=outsider),
    ]

    for response in attempts:
        assert_error(response, 404, "not_found", str(sid))
    unchanged = (await client.get(f"/v1/shipments/{sid}", headers=world.logistics)).json()
    assert unchanged == shipment
    assert (await client.get(f"/v1/shipments/{sid}/trackers", headers=world.logistics)).json() == []


async def test_a_carrier_sees_but_cannot_change_the_shipment(world: World) -> None:
    shipment = await create(world)

    response = await world.client.post(
        f"/v1/shipments/{shipment['id']}/status", json={"status": "cancelled"}, headers=world.carrier_token
    )

    assert_error(response, 403, "forbidden")
    assert (await world.client.get(f"/v1/shipments/{shipment['id']}", headers=world.logistics)).json()[
        "status"
    ] == "planned"


async def test_the_lifecycle_allows_only_its_transitions(world: World) -> None:
    sid = (await create(world))["id"]
    path = f"/v1/shipments/{sid}/status"

    skipped = await world.client.post(path, json={"status": "delivered"}, headers=world.logistics)
    steps = [
        (await world.client.post(path, json={"status": status}, headers=world.logistics)).json()["status"]
        for status in ("in_transit", "delivered", "closed")
    ]
    after_close = await world.client.post(path, json={"status": "cancelled"}, headers=world.logistics)
    unknown = await world.client.post(path, json={"status": "lost"}, headers=world.logistics)

    assert_error(skipped, 409, "conflict", "planned", "delivered", "in_transit")
    assert steps == ["in_transit", "delivered", "closed"]
    assert_error(after_close, 409, "conflict", "final state")
    assert_error(unknown, 422, "invalid", "status")


async def test_a_change_that_cannot_judge_the_shipment_at_one_moment_is_told_to_come_again_and_keeps_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Delivering a shipment judges it (is a pharmacist's decision needed?). When its trackers' batches keep
    committing between the judgement's reads, the change is refused 503 with Retry-After, and not made."""
    sid = (await create(world))["id"]
    path = f"/v1/shipments/{sid}/status"
    assert (await world.client.post(path, json={"status": "in_transit"}, headers=world.logistics)).status_code == 200

    async def busy(*_: Any, **__: Any) -> None:
        raise Busy(f"the readings of shipment {sid} are being judged without pause right now; ask again in a moment")

    monkeypatch.setattr(decisions, "judgement_in", busy)
    refused = await world.client.post(path, json={"status": "delivered"}, headers=world.logistics)

    assert_error(refused, 503, "unavailable", "ask again in a moment")
    assert refused.headers["Retry-After"] == "1"
    shipment = await world.client.get(f"/v1/shipments/{sid}", headers=world.logistics)
    assert shipment.json()["status"] == "in_transit"
    monkeypatch.undo()
    delivered = await world.client.post(path, json={"status": "delivered"}, headers=world.logistics)
    assert delivered.json()["status"] == "delivered"


@pytest.mark.parametrize(
    ("changes", "status", "where"),
    [
        ({"quantity": 0}, 422, "quantity"),
        ({"origin": {"name": "X", "lat": 91, "lon": 0}}, 422, "lat"),
        ({"product_id": 999}, 422, "product_id"),
        ({"lot_id": 999}, 422, "lot_id"),
        ({"legs": [{"carrier_id": 999, "mode": "road"}]}, 422, "carrier_id"),
        ({"legs": [{"carrier_id": 1, "mode": "teleport"}]}, 422, "mode"),
        ({"receiver_id": 999}, 422, "receiver_id"),
        ({"promised_at": "2026-05-02T12:00:00"}, 422, "promised_at"),
        ({"colour": "red"}, 422, "colour"),
    ],
)
async def test_a_bad_shipment_is_refused_precisely_and_nothing_is_stored(
    world: World, changes: dict[str, Any], status: int, where: str
) -> None:
    response = await world.client.post("/v1/shipments", json=shipment_body(world, **changes), headers=world.logistics)

    assert_error(response, status, "invalid", where)
    assert (await world.client.get("/v1/shipments", headers=OPERATOR_HEADERS)).json() == []


async def test_a_reference_is_unique_per_shipper(world: World) -> None:
    await create(world)

    response = await world.client.post("/v1/shipments", json=shipment_body(world), headers=world.logistics)

    assert_error(response, 409, "conflict", "SHP-1")


async def test_a_product_of_another_organisation_cannot_be_shipped(world: World) -> None:
    response = await world.client.post("/v1/shipments", json=shipment_body(world), headers=world.outsider_admin)

    assert_error(response, 422, "invalid", "product_id")


async def test_a_tracker_watches_one_shipment_at_a_time(world: World) -> None:
    first, second = (await create(world))["id"], (await create(world, reference="SHP-2"))["id"]
    assert (
        await world.client.post("/v1/trackers", json={"serial": "TRK-1"}, headers=world.logistics)
    ).status_code == 201
    assign = {"serial": "TRK-1", "starts_at": "2026-05-01T08:00:00Z", "ends_at": "2026-05-02T08:00:00Z"}

    ok = await world.client.post(f"/v1/shipments/{first}/trackers", json=assign, headers=world.logistics)
    clash = await world.client.post(
        f"/v1/shipments/{second}/trackers",
        json={**assign, "starts_at": "2026-05-02T07:00:00Z", "ends_at": None},
        headers=world.logistics,
    )
    after = await world.client.post(
        f"/v1/shipments/{second}/trackers",
        json={**assign, "starts_at": "2026-05-02T08:00:00Z", "ends_at": None},
        headers=world.logistics,
    )

    assert ok.status_code == 201, ok.text
    assert_error(clash, 409, "conflict", "TRK-1", str(first))
    assert after.status_code == 201, "a range starting where the other ends does not overlap"
    listed = (await world.client.get(f"/v1/shipments/{second}/trackers", headers=world.carrier_token)).json()
    assert [(a["serial"], a["starts_at"], a["ends_at"]) for a in listed] == [("TRK-1", "2026-05-02T08:00:00Z", None)]


async def test_an_open_assignment_is_ended_once(world: World) -> None:
    sid = (await create(world))["id"]
    await world.client.post("/v1/trackers", json={"serial": "TRK-1"}, headers=world.logistics)
    assignment = (
        await world.client.post(
            f"/v1/shipments/{sid}/trackers",
            json={"serial": "TRK-1", "starts_at": "2026-05-01T08:00:00Z"},
            headers=world.logistics,
        )
    ).json()
    path = f"/v1/shipments/{sid}/trackers/{assignment['id']}/end"

    before_start = await world.client.post(path, json={"ends_at": "2026-05-01T07:00:00Z"}, headers=world.logistics)
    ended = await world.client.post(path, json={"ends_at": "2026-05-01T20:00:00Z"}, headers=world.logistics)
    twice = await world.client.post(path, json={"ends_at": "2026-05-01T21:00:00Z"}, headers=world.logistics)

    assert_error(before_start, 422, "invalid", "ends_at")
    assert ended.json()["ends_at"] == "2026-05-01T20:00:00Z"
    assert_error(twice, 409, "conflict", "already ended")


async def test_a_tracker_of_an_outsider_cannot_be_assigned(world: World) -> None:
    sid = (await create(world))["id"]
    await world.client.post("/v1/trackers", json={"serial": "TRK-OTHER"}, headers=world.outsider_admin)

    response = await world.client.post(
        f"/v1/shipments/{sid}/trackers", json={"serial": "TRK-OTHER"}, headers=world.logistics
    )

    assert_error(response, 422, "invalid", "TRK-OTHER")
