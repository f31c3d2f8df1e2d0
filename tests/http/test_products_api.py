"""The profiles and products admin API through the real app, on each storage engine."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.profiles import Profile, load_profiles
from coldchain.http.app import create_app
from coldchain.settings import load_settings
from coldchain.storage import Store
from tests.http.test_sync_api import ADMIN, ADMIN_TOKEN, assert_error
from tests.paths import EXAMPLE_PROFILES

PROFILES_JSON = EXAMPLE_PROFILES

Client = AsyncTestClient[Litestar]

FRIDGE: dict[str, Any] = {
    "id": "fridge",
    "name": "2-8 °C fridge",
    "label_range_c": [2.0, 8.0],
    "rules": [
        {
            "name": "heat",
            "direction": "above",
            "threshold": 8.0,
            "inclusive": True,
            "mode": "cumulative",
            "delay_min": 60,
            "action": "quarantine",
        }
    ],
}


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    app = create_app(load_settings({}, database_url=database_url, admin_token=ADMIN_TOKEN))
    async with AsyncTestClient(app) as client:
        yield client


async def _new_organisation(store: Store, name: str) -> int:
    async with store.transaction() as tx:
        org = await tx.create_organisation(name=name, kind="shipper", now=datetime.now(UTC))
    return org.id


def organisation(client: Client, name: str = "Pharma GmbH") -> int:
    org_id: int = client.blocking_portal.call(_new_organisation, client.app.state.store, name)
    return org_id


async def _audit_actions(store: Store) -> list[str]:
    async with store.transaction() as tx:
        return [entry.action for entry in await tx.audit_entries()]


def audit_actions(client: Client) -> list[str]:
    actions: list[str] = client.blocking_portal.call(_audit_actions, client.app.state.store)
    return actions


def as_profile(body: Any) -> Profile:
    return msgspec.convert(body, type=Profile)


async def post_profile(client: Client, profile: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/profiles", json=profile, headers=ADMIN)
    assert response.status_code in (200, 201), response.text
    saved: dict[str, Any] = response.json()
    return saved


# --- Profiles ------------------------------------------------------------------------------------------------


async def test_all_ten_example_profiles_load_and_read_back_equal(client: Client) -> None:
    document = json.loads(PROFILES_JSON.read_text(encoding="utf-8"))
    expected = load_profiles(PROFILES_JSON.read_bytes())
    assert len(expected) == 10

    for entry in document["profiles"]:
        response = await client.post("/v1/profiles", json=entry, headers=ADMIN)
        assert response.status_code == 201, response.text
        assert response.json() == {"id": entry["id"], "version": 1, "new": True}

    for profile in expected:
        response = await client.get(f"/v1/profiles/{profile.id}", headers=ADMIN)
        assert response.status_code == 200, response.text
        assert as_profile(response.json()) == profile
    listed = (await client.get("/v1/profiles", headers=ADMIN)).json()
    assert [as_profile(p) for p in listed] == sorted(expected, key=lambda p: p.id)
    assert audit_actions(client) == ["profile.saved"] * 10


async def test_a_changed_profile_becomes_version_two_and_version_one_stays_unchanged(client: Client) -> None:
    await post_profile(client, FRIDGE)
    first = (await client.get("/v1/profiles/fridge/versions/1", headers=ADMIN)).json()
    changed = {**FRIDGE, "label_range_c": [2.0, 25.0]}

    response = await client.post("/v1/profiles", json=changed, headers=ADMIN)

    assert response.status_code == 201, response.text
    assert response.json() == {"id": "fridge", "version": 2, "new": True}
    assert (await client.get("/v1/profiles/fridge/versions/1", headers=ADMIN)).json() == first
    latest = (await client.get("/v1/profiles/fridge", headers=ADMIN)).json()
    assert (latest["version"], latest["label_range_c"]) == (2, [2.0, 25.0])
    assert (await client.get("/v1/profiles/fridge/versions/2", headers=ADMIN)).json() == latest


async def test_an_identical_profile_submitted_again_stays_version_one(client: Client) -> None:
    await post_profile(client, FRIDGE)

    response = await client.post("/v1/profiles", json=FRIDGE, headers=ADMIN)

    assert response.status_code == 200, response.text
    assert response.json() == {"id": "fridge", "version": 1, "new": False}
    assert (await client.get("/v1/profiles/fridge", headers=ADMIN)).json()["version"] == 1
    assert audit_actions(client) == ["profile.saved"]


@pytest.mark.parametrize(
    ("change", "in_detail"),
    [
        ({"rules": [{**FRIDGE["rules"][0], "mode": "instant"}]}, "$.rules[0]"),
        ({"label_range_c": [8.0, 2.0]}, "label_range_c"),
        ({"rules": [{**FRIDGE["rules"][0], "threshold": "hot"}]}, "$.rules[0].threshold"),
        ({"rules": [{**FRIDGE["rules"][0], "colour": "blue"}]}, "unknown field `colour` - at `$.rules[0]`"),
        ({"colour": "blue"}, "unknown field `colour`"),
    ],
)
async def test_an_invalid_profile_is_refused_naming_the_path(
    client: Client, change: dict[str, Any], in_detail: str
) -> None:
    response = await client.post("/v1/profiles", json={**FRIDGE, **change}, headers=ADMIN)

    assert_error(response, 422, "invalid", in_detail)
    assert_error(await client.get("/v1/profiles/fridge", headers=ADMIN), 404, "not_found")


async def test_an_unknown_profile_or_version_is_404(client: Client) -> None:
    await post_profile(client, FRIDGE)
    assert_error(await client.get("/v1/profiles/nope", headers=ADMIN), 404, "not_found", "nope")
    assert_error(await client.get("/v1/profiles/fridge/versions/2", headers=ADMIN), 404, "not_found", "version 2")


# --- Products and lots ---------------------------------------------------------------------------------------


async def test_a_product_naming_an_existing_profile_is_created_and_read_back(client: Client) -> None:
    await post_profile(client, FRIDGE)
    org = organisation(client)
    body = {"organisation_id": org, "name": "Vaccine X", "gtin": "04012345678901", "profile_id": "fridge"}

    response = await client.post("/v1/products", json=body, headers=ADMIN)

    assert response.status_code == 201, response.text
    product = response.json()
    assert {k: product[k] for k in body} == body
    assert (await client.get(f"/v1/products/{product['id']}", headers=ADMIN)).json() == product
    assert (await client.get("/v1/products", headers=ADMIN)).json() == [product]
    assert (await client.get(f"/v1/products?organisation_id={org}", headers=ADMIN)).json() == [product]
    assert (await client.get(f"/v1/products?organisation_id={org + 1}", headers=ADMIN)).json() == []
    assert audit_actions(client) == ["profile.saved", "product.created"]


async def test_a_product_naming_an_unknown_profile_or_organisation_is_refused(client: Client) -> None:
    org = organisation(client)

    unknown_profile = await client.post(
        "/v1/products", json={"organisation_id": org, "name": "X", "profile_id": "nope"}, headers=ADMIN
    )
    unknown_org = await client.post("/v1/products", json={"organisation_id": org + 1, "name": "X"}, headers=ADMIN)

    assert_error(unknown_profile, 422, "invalid", "no stability profile 'nope'")
    assert_error(unknown_org, 422, "invalid", f"no organisation with id {org + 1}")
    assert (await client.get("/v1/products", headers=ADMIN)).json() == []


async def test_a_second_product_of_the_same_name_is_a_conflict(client: Client) -> None:
    org = organisation(client)
    body = {"organisation_id": org, "name": "Insulin"}
    assert (await client.post("/v1/products", json=body, headers=ADMIN)).status_code == 201

    assert_error(await client.post("/v1/products", json=body, headers=ADMIN), 409, "conflict", "Insulin")


async def test_lots_of_a_product_are_created_and_listed(client: Client) -> None:
    org = organisation(client)
    product = (await client.post("/v1/products", json={"organisation_id": org, "name": "A"}, headers=ADMIN)).json()
    lots_url = f"/v1/products/{product['id']}/lots"

    first = await client.post(lots_url, json={"lot_number": "L1", "expires_on": "2027-06-30"}, headers=ADMIN)
    second = await client.post(lots_url, json={"lot_number": "L2"}, headers=ADMIN)
    again = await client.post(lots_url, json={"lot_number": "L1"}, headers=ADMIN)

    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert (first.json()["expires_on"], second.json()["expires_on"]) == ("2027-06-30", None)
    assert_error(again, 409, "conflict", "L1")
    assert (await client.get(lots_url, headers=ADMIN)).json() == [first.json(), second.json()]
    assert audit_actions(client) == ["product.created", "lot.created", "lot.created"]


async def test_an_unknown_product_is_404(client: Client) -> None:
    assert_error(await client.get("/v1/products/999", headers=ADMIN), 404, "not_found", "999")
    assert_error(await client.get("/v1/products/999/lots", headers=ADMIN), 404, "not_found", "999")
    assert_error(
        await client.post("/v1/products/999/lots", json={"lot_number": "L1"}, headers=ADMIN), 404, "not_found", "999"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/profiles"),
        ("GET", "/v1/profiles"),
        ("GET", "/v1/profiles/fridge"),
        ("GET", "/v1/profiles/fridge/versions/1"),
        ("POST", "/v1/products"),
        ("GET", "/v1/products"),
        ("GET", "/v1/products/1"),
        ("POST", "/v1/products/1/lots"),
        ("GET", "/v1/products/1/lots"),
    ],
)
async def test_every_profile_and_product_route_requires_the_admin_token(client: Client, method: str, path: str) -> None:
    body = FRIDGE if path == "/v1/profiles" else {}
    missing = await client.request(method, path, json=body)
    wrong = await client.request(method, path, json=body, headers={"Authorization": "Bearer wrong"})

    assert_error(missing, 401, "unauthenticated")
    assert_error(wrong, 401, "unauthenticated")
    assert (await client.get("/v1/profiles", headers=ADMIN)).json() == []
