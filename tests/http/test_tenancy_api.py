"""Organisations, tokens and roles through the real app, on each storage engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.settings import load_settings
from tests.factories import OPERATOR_HEADERS, OPERATOR_TOKEN, bearer
from tests.http.test_sync_api import assert_error

Client = AsyncTestClient[Litestar]


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[Client]:
    app = create_app(load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN))
    async with AsyncTestClient(app) as client:
        yield client


async def new_org(client: Client, name: str, kind: str = "shipper") -> int:
    response = await client.post("/v1/organisations", json={"name": name, "kind": kind}, headers=OPERATOR_HEADERS)
    assert response.status_code == 201, response.text
    org_id: int = response.json()["id"]
    return org_id


async def new_token(client: Client, org_id: int, role: str, headers: dict[str, str] = OPERATOR_HEADERS) -> str:
    response = await client.post(
        f"/v1/organisations/{org_id}/tokens", json={"role": role, "name": role}, headers=headers
    )
    assert response.status_code == 201, response.text
    token: str = response.json()["token"]
    return token


async def test_the_operator_creates_organisations_and_their_first_admin_token(client: Client) -> None:
    org = await new_org(client, "Pharma GmbH")
    token = await new_token(client, org, "admin")

    listed = await client.get("/v1/organisations", headers=bearer(token))

    assert [o["name"] for o in listed.json()] == ["Pharma GmbH"]
    tokens = (await client.get(f"/v1/organisations/{org}/tokens", headers=bearer(token))).json()
    assert [(t["role"], t["revoked_at"]) for t in tokens] == [("admin", None)]
    assert all("token" not in t for t in tokens), "a token's text is shown at its creation only"


async def test_an_organisation_token_cannot_create_organisations(client: Client) -> None:
    org = await new_org(client, "Pharma GmbH")
    token = await new_token(client, org, "admin")

    response = await client.post("/v1/organisations", json={"name": "Rogue", "kind": "carrier"}, headers=bearer(token))

    assert_error(response, 403, "forbidden", "operator")
    assert [o["name"] for o in (await client.get("/v1/organisations", headers=OPERATOR_HEADERS)).json()] == [
        "Pharma GmbH"
    ]


async def test_an_admin_manages_its_own_tokens_and_no_one_elses(client: Client) -> None:
    mine, theirs = await new_org(client, "Mine"), await new_org(client, "Theirs")
    admin = await new_token(client, mine, "admin")
    their_token = await new_token(client, theirs, "logistics")

    logistics = await new_token(client, mine, "logistics", headers=bearer(admin))
    foreign = await client.post(
        f"/v1/organisations/{theirs}/tokens", json={"role": "admin", "name": "x"}, headers=bearer(admin)
    )
    foreign_list = await client.get(f"/v1/organisations/{theirs}/tokens", headers=bearer(admin))

    assert logistics.startswith("cct_")
    assert_error(foreign, 404, "not_found")
    assert_error(foreign_list, 404, "not_found")
    theirs_now = (await client.get(f"/v1/organisations/{theirs}/tokens", headers=OPERATOR_HEADERS)).json()
    assert [t["role"] for t in theirs_now] == ["logistics"], "nothing was added to the other organisation"
    assert (await client.get("/v1/trackers", headers=bearer(their_token))).status_code == 200


async def test_only_an_admin_issues_tokens(client: Client) -> None:
    org = await new_org(client, "Pharma GmbH")
    logistics = await new_token(client, org, "logistics")

    response = await client.post(
        f"/v1/organisations/{org}/tokens", json={"role": "admin", "name": "escalate"}, headers=bearer(logistics)
    )

    assert_error(response, 403, "forbidden", "logistics")


async def test_a_revoked_token_is_refused_at_once(client: Client) -> None:
    org = await new_org(client, "Pharma GmbH")
    admin = await new_token(client, org, "admin")
    auditor = await new_token(client, org, "auditor")
    assert (await client.get("/v1/trackers", headers=bearer(auditor))).status_code == 200
    token_id = next(
        t["id"]
        for t in (await client.get(f"/v1/organisations/{org}/tokens", headers=bearer(admin))).json()
        if t["role"] == "auditor"
    )

    revoked = await client.delete(f"/v1/organisations/{org}/tokens/{token_id}", headers=bearer(admin))
    again = await client.delete(f"/v1/organisations/{org}/tokens/{token_id}", headers=bearer(admin))

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    assert again.json()["revoked_at"] == revoked.json()["revoked_at"], "revoking twice keeps the first time"
    assert_error(await client.get("/v1/trackers", headers=bearer(auditor)), 401, "unauthenticated", "revoked")


async def test_the_last_admin_token_of_an_organisation_cannot_be_revoked(client: Client) -> None:
    org = await new_org(client, "Pharma GmbH")
    first = await new_token(client, org, "admin")
    await new_token(client, org, "logistics")
    tokens = (await client.get(f"/v1/organisations/{org}/tokens", headers=bearer(first))).json()
    first_id = next(t["id"] for t in tokens if t["role"] == "admin")

    by_itself = await client.delete(f"/v1/organisations/{org}/tokens/{first_id}", headers=bearer(first))
    by_operator = await client.delete(f"/v1/organisations/{org}/tokens/{first_id}", headers=OPERATOR_HEADERS)

    for refused in (by_itself, by_operator):
        assert_error(refused, 409, "conflict", f"token {first_id} is the last admin token", "issue another admin")
    assert (await client.get("/v1/trackers", headers=bearer(first))).status_code == 200
    # With a second admin token, the first may go; then the second is the last.
    second = await new_token(client, org, "admin", headers=bearer(first))
    second_id = max(
        t["id"] for t in (await client.get(f"/v1/organisations/{org}/tokens", headers=bearer(second))).json()
    )
    revoked = await client.delete(f"/v1/organisations/{org}/tokens/{first_id}", headers=bearer(second))
    assert revoked.status_code == 200, revoked.text
    assert_error(
        await client.delete(f"/v1/organisations/{org}/tokens/{second_id}", headers=bearer(second)), 409, "conflict"
    )
    # Revoking an already revoked admin token stays possible (it changes nothing).
    assert (
        await client.delete(f"/v1/organisations/{org}/tokens/{first_id}", headers=bearer(second))
    ).status_code == 200


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"name": "", "kind": "shipper"}, "name"),
        ({"name": "X", "kind": "manufacturer"}, "kind"),
        ({"name": "X", "kind": "shipper", "extra": 1}, "extra"),
    ],
)
async def test_a_bad_organisation_is_refused_with_422_naming_the_field(
    client: Client, body: dict[str, Any], where: str
) -> None:
    response = await client.post("/v1/organisations", json=body, headers=OPERATOR_HEADERS)

    assert_error(response, 422, "invalid", where)
    assert (await client.get("/v1/organisations", headers=OPERATOR_HEADERS)).json() == []


async def test_a_taken_organisation_name_is_409(client: Client) -> None:
    await new_org(client, "Pharma GmbH")

    response = await client.post(
        "/v1/organisations", json={"name": "Pharma GmbH", "kind": "carrier"}, headers=OPERATOR_HEADERS
    )

    assert_error(response, 409, "conflict", "Pharma GmbH")


async def test_trackers_and_products_are_scoped_to_the_token_organisation(client: Client) -> None:
    a, b = await new_org(client, "A"), await new_org(client, "B")
    token_a, token_b = await new_token(client, a, "logistics"), await new_token(client, b, "logistics")
    assert (await client.post("/v1/trackers", json={"serial": "TRK-A"}, headers=bearer(token_a))).status_code == 201
    product = await client.post("/v1/products", json={"name": "Vaccine"}, headers=bearer(token_a))
    assert product.status_code == 201, product.text
    product_id = product.json()["id"]

    seen_by_b: list[httpx.Response] = [
        await client.get("/v1/trackers/TRK-A", headers=bearer(token_b)),
        await client.get(f"/v1/products/{product_id}", headers=bearer(token_b)),
        await client.get(f"/v1/products/{product_id}/lots", headers=bearer(token_b)),
        await client.post(f"/v1/products/{product_id}/lots", json={"lot_number": "L1"}, headers=bearer(token_b)),
    ]

    for response in seen_by_b:
        assert_error(response, 404, "not_found")
    assert (await client.get("/v1/trackers", headers=bearer(token_b))).json() == []
    assert (await client.get("/v1/products", headers=bearer(token_b))).json() == []
    assert [t["tracker_id"] for t in (await client.get("/v1/trackers", headers=bearer(token_a))).json()] == ["TRK-A"]
    assert (await client.get(f"/v1/products/{product_id}/lots", headers=bearer(token_a))).json() == []
    assert product.json()["organisation_id"] == a


async def test_read_only_roles_cannot_set_up(client: Client) -> None:
    org = await new_org(client, "A")
    for role in ("auditor", "pharmacist", "carrier"):
        token = await new_token(client, org, role)
        assert_error(
            await client.post("/v1/trackers", json={"serial": f"T-{role}"}, headers=bearer(token)), 403, "forbidden"
        )
        assert_error(await client.post("/v1/products", json={"name": role}, headers=bearer(token)), 403, "forbidden")
    assert (await client.get("/v1/trackers", headers=OPERATOR_HEADERS)).json() == []


async def test_profiles_are_read_by_everyone_and_written_by_the_operator_only(client: Client) -> None:
    org = await new_org(client, "A")
    admin = await new_token(client, org, "admin")
    profile = {"id": "fridge", "name": "2-8", "label_range_c": [2.0, 8.0], "rules": []}

    refused = await client.post("/v1/profiles", json=profile, headers=bearer(admin))
    saved = await client.post("/v1/profiles", json=profile, headers=OPERATOR_HEADERS)

    assert_error(refused, 403, "forbidden", "operator")
    assert saved.status_code == 201, saved.text
    assert (await client.get("/v1/profiles/fridge", headers=bearer(admin))).json()["version"] == 1
