"""The webhooks API through the real app, on each storage engine: subscribe (the secret shown once), list, delete,
the delivery log after real deliveries, tenant isolation, roles and refusals."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.services.webhooks import DeliveryPolicy, deliver_due
from coldchain.settings import load_settings
from coldchain.storage import Store, open_store
from tests.factories import OPERATOR_HEADERS, OPERATOR_TOKEN, bearer
from tests.http.test_sync_api import assert_error
from tests.http.test_tenancy_api import new_org, new_token
from tests.services.test_webhooks import Receiver, verifies

Client = AsyncTestClient[Litestar]


@dataclass
class World:
    client: Client
    store: Store
    """A second store on the same database, as another service process would have."""
    org: int
    other: int
    admin: dict[str, str]
    logistics: dict[str, str]
    other_admin: dict[str, str]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    # The receivers of these tests listen on 127.0.0.1: on-premise receivers, allowed explicitly.
    settings = load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN, webhook_allow_private=True)
    async with AsyncTestClient(create_app(settings)) as client:
        org, other = await new_org(client, "Pharma"), await new_org(client, "Other")
        store = await open_store(database_url, pool_size=2)
        try:
            yield World(
                client=client,
                store=store,
                org=org,
                other=other,
                admin=bearer(await new_token(client, org, "admin")),
                logistics=bearer(await new_token(client, org, "logistics")),
                other_admin=bearer(await new_token(client, other, "admin")),
            )
        finally:
            await store.close()


async def subscribe(world: World, url: str, kinds: list[str] | None = None) -> dict[str, object]:
    response = await world.client.post(
        "/v1/webhooks", json={"url": url, "kinds": kinds or ["alarm.raised"]}, headers=world.admin
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


async def test_an_admin_subscribes_and_sees_the_secret_only_in_the_answer(world: World) -> None:
    created = await subscribe(world, "https://example.org/hooks", ["tracker.silent", "alarm.raised"])
    listed = (await world.client.get("/v1/webhooks", headers=world.admin)).json()

    assert str(created["secret"]).startswith("whsec_")
    assert (created["organisation_id"], created["kinds"]) == (world.org, ["alarm.raised", "tracker.silent"])
    assert listed == [{k: v for k, v in created.items() if k != "secret"} | {"deleted_at": None}]
    assert (await world.client.get("/v1/webhooks", headers=world.other_admin)).json() == []


async def test_the_delivery_log_shows_every_attempt_after_real_deliveries(world: World) -> None:
    async with Receiver([502]) as receiver:
        created = await subscribe(world, receiver.url)
        async with world.store.transaction() as tx:
            await tx.publish(
                "alarm.raised", organisation_ids=[world.org], subject="alarm:7", payload={}, now=datetime.now(UTC)
            )
        policy = DeliveryPolicy(timeout_s=2, retry_s=0.01, retry_max_s=0.01, allow_private=True)
        async with httpx.AsyncClient() as http:
            first = await deliver_due(world.store, http, clock=lambda: datetime.now(UTC), worker="w", policy=policy)
            while (
                await deliver_due(world.store, http, clock=lambda: datetime.now(UTC), worker="w", policy=policy)
            ).delivered == 0:
                pass  # the retry falls due within milliseconds
    response = await world.client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=world.admin)

    assert first.retrying == 1
    assert response.status_code == 200, response.text
    [delivery] = response.json()
    assert (delivery["kind"], delivery["status"], delivery["attempts"]) == ("alarm.raised", "delivered", 2)
    assert [(a["attempt"], a["status_code"], a["error"]) for a in delivery["log"]] == [
        (1, 502, "answered 502"),
        (2, 204, None),
    ]
    assert all(verifies(r, str(created["secret"])) for r in receiver.received)


async def test_a_deleted_webhook_is_gone_from_the_list_and_its_log_answers_404(world: World) -> None:
    created = await subscribe(world, "https://example.org/hooks")
    deleted = await world.client.delete(f"/v1/webhooks/{created['id']}", headers=world.admin)

    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["deleted_at"] is not None
    assert (await world.client.get("/v1/webhooks", headers=world.admin)).json() == []
    assert_error(
        await world.client.get(f"/v1/webhooks/{created['id']}/deliveries", headers=world.admin), 404, "not_found"
    )
    assert_error(await world.client.delete(f"/v1/webhooks/{created['id']}", headers=world.admin), 404, "not_found")
    async with world.store.transaction() as tx:
        actions = [e.action for e in await tx.audit_entries()]
    assert actions.count("webhook.created") == 1 and actions.count("webhook.deleted") == 1


async def test_another_organisations_webhook_does_not_exist_for_the_caller(world: World) -> None:
    created = await subscribe(world, "https://example.org/hooks")
    hook = f"/v1/webhooks/{created['id']}"

    assert_error(await world.client.get(f"{hook}/deliveries", headers=world.other_admin), 404, "not_found")
    assert_error(await world.client.delete(hook, headers=world.other_admin), 404, "not_found")
    assert_error(
        await world.client.get(f"/v1/webhooks?organisation_id={world.org}", headers=world.other_admin), 404, "not_found"
    )
    assert_error(
        await world.client.post(
            "/v1/webhooks",
            json={"organisation_id": world.org, "url": "https://evil.example/", "kinds": ["alarm.raised"]},
            headers=world.other_admin,
        ),
        404,
        "not_found",
    )
    assert len((await world.client.get("/v1/webhooks", headers=world.admin)).json()) == 1


async def test_only_an_admin_or_the_operator_manages_webhooks(world: World) -> None:
    body = {"url": "https://example.org/", "kinds": ["alarm.raised"]}
    assert_error(await world.client.post("/v1/webhooks", json=body, headers=world.logistics), 403, "forbidden")
    assert_error(await world.client.get("/v1/webhooks", headers=world.logistics), 403, "forbidden")
    assert_error(await world.client.get("/v1/webhooks"), 401, "unauthenticated")
    assert_error(
        await world.client.post("/v1/webhooks", json=body, headers=OPERATOR_HEADERS), 422, "invalid", "organisation_id"
    )
    by_operator = await world.client.post(
        "/v1/webhooks", json=body | {"organisation_id": world.org}, headers=OPERATOR_HEADERS
    )
    assert by_operator.status_code == 201, by_operator.text
    listed = await world.client.get(f"/v1/webhooks?organisation_id={world.org}", headers=OPERATOR_HEADERS)
    assert [w["id"] for w in listed.json()] == [by_operator.json()["id"]]


@pytest.mark.parametrize(
    ("body", "in_detail"),
    [
        ({"url": "mailto:ops@example.org", "kinds": ["alarm.raised"]}, "url: Expected `str` matching regex"),
        ({"url": "https://example.org/", "kinds": ["alarm.melted"]}, "kinds"),
        ({"url": "https://example.org/", "kinds": []}, "kinds"),
        ({"url": "https://example.org/"}, "kinds"),
        ({"url": "https://example.org/" + "x" * 2000, "kinds": ["alarm.raised"]}, "url"),
        ({"url": "https://example.org/", "kinds": ["alarm.raised"], "secret": "mine"}, "secret"),
    ],
)
async def test_a_bad_subscription_gets_422_naming_the_problem(
    world: World, body: dict[str, object], in_detail: str
) -> None:
    assert_error(await world.client.post("/v1/webhooks", json=body, headers=world.admin), 422, "invalid", in_detail)
    assert (await world.client.get("/v1/webhooks", headers=world.admin)).json() == []


async def test_the_delivery_log_limit_is_bounded(world: World) -> None:
    created = await subscribe(world, "https://example.org/hooks")
    url = f"/v1/webhooks/{created['id']}/deliveries"
    assert (await world.client.get(f"{url}?limit=500", headers=world.admin)).status_code == 200
    assert_error(await world.client.get(f"{url}?limit=501", headers=world.admin), 422, "invalid", "limit")
    assert_error(await world.client.get(f"{url}?limit=0", headers=world.admin), 422, "invalid", "limit")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost:8080/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hooks",
        "http://[::ffff:127.0.0.1]/hooks",
        "http://10.0.0.5/hooks",
        "https://user:pw@example.org/hooks",
    ],
)
async def test_by_default_a_webhook_to_the_services_own_networks_or_with_credentials_is_refused_422(
    database_url: str, url: str
) -> None:
    app = create_app(load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN))
    async with AsyncTestClient(app) as client:
        org = await new_org(client, "Pharma")
        admin = bearer(await new_token(client, org, "admin"))

        response = await client.post("/v1/webhooks", json={"url": url, "kinds": ["alarm.raised"]}, headers=admin)

        assert_error(response, 422, "invalid", "url: ")
        assert (await client.get("/v1/webhooks", headers=admin)).json() == []
