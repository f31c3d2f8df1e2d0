"""People and sessions through the real app, on each storage engine: users added by their organisation's admin,
sign-in with a server-side session (cookie flags, a new id at every sign-in, idle and absolute timeouts, sign-out
on the server), CSRF on changes made with a session, lock-out after failed sign-ins, and what a person does
attributed to them by name and email."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.cli import main
from coldchain.domain.audit import AuditEntry
from coldchain.http.app import create_app
from coldchain.settings import load_settings
from coldchain.storage import open_store
from tests.factories import OPERATOR_HEADERS, OPERATOR_TOKEN, bearer
from tests.http.test_clock_api import SettableClock
from tests.http.test_sync_api import assert_error
from tests.http.test_tenancy_api import new_org, new_token

Client = AsyncTestClient[Litestar]
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


@dataclass
class Office:
    client: Client
    clock: SettableClock
    org: int
    admin: dict[str, str]
    database_url: str = ""


@pytest.fixture
async def office(database_url: str) -> AsyncIterator[Office]:
    clock = SettableClock(START)
    settings = load_settings(
        {}, database_url=database_url, admin_token=OPERATOR_TOKEN, login_max_failures=3, session_idle_s=600
    )
    async with AsyncTestClient(create_app(settings, clock=clock)) as client:
        org = await new_org(client, "Distributor")
        admin = bearer(await new_token(client, org, "admin"))
        yield Office(client=client, clock=clock, org=org, admin=admin, database_url=database_url)


async def add_user(office: Office, email: str = "ada@example.org", role: str = "logistics") -> dict[str, object]:
    body = {"role": role, "name": "Ada Lovelace", "email": email, "password": PASSWORD}
    response = await office.client.post(f"/v1/organisations/{office.org}/users", json=body, headers=office.admin)
    assert response.status_code == 201, response.text
    user: dict[str, object] = response.json()
    return user


def session_of(response: httpx.Response) -> str:
    cookie = response.headers["set-cookie"]
    name, _, rest = cookie.partition("=")
    assert name == "coldchain_session"
    return rest.split(";", 1)[0]


async def sign_in(office: Office, email: str = "ada@example.org", password: str = PASSWORD) -> httpx.Response:
    office.client.cookies.clear()
    return await office.client.post("/v1/session", json={"email": email, "password": password})


async def signed_in(office: Office, email: str = "ada@example.org") -> dict[str, str]:
    """Headers of a request made with a session: its cookie and its CSRF token."""
    response = await sign_in(office, email)
    assert response.status_code == 201, response.text
    return {"Cookie": f"coldchain_session={session_of(response)}", "X-CSRF-Token": response.json()["csrf_token"]}


def cookie_only(headers: dict[str, str]) -> dict[str, str]:
    return {"Cookie": headers["Cookie"]}


async def test_a_session_cookie_is_http_only_same_site_lax_and_secure_away_from_localhost(office: Office) -> None:
    await add_user(office)
    response = await sign_in(office)

    assert response.status_code == 201, response.text
    flags = {part.strip().lower() for part in response.headers["set-cookie"].split(";")}
    assert {"httponly", "samesite=lax", "secure", "path=/"} <= flags
    assert response.json()["user"]["email"] == "ada@example.org"


async def test_a_session_on_plain_localhost_is_not_marked_secure(database_url: str) -> None:
    settings = load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN)
    async with AsyncTestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        org = await new_org(client, "Pharmacy")
        office = Office(client=client, clock=SettableClock(START), org=org, admin=OPERATOR_HEADERS)
        await add_user(office)
        response = await sign_in(office)

    assert response.status_code == 201
    assert "secure" not in response.headers["set-cookie"].lower()


async def test_every_api_route_takes_a_session_with_the_users_role(office: Office) -> None:
    await add_user(office, role="auditor")
    session = await signed_in(office)

    assert (await office.client.get("/v1/shipments", headers=cookie_only(session))).status_code == 200
    refused = await office.client.post("/v1/trackers", json={"serial": "TRK-9"}, headers=session)
    assert_error(refused, 403, "forbidden", "auditor")


async def test_a_change_made_with_a_session_without_its_csrf_token_is_refused(office: Office) -> None:
    await add_user(office)
    session = await signed_in(office)

    without = await office.client.post("/v1/products", json={"name": "Insulin"}, headers=cookie_only(session))
    wrong = await office.client.post(
        "/v1/products", json={"name": "Insulin"}, headers={**session, "X-CSRF-Token": "guessed"}
    )
    with_token = await office.client.post("/v1/products", json={"name": "Insulin"}, headers=session)

    for refused in (without, wrong):
        assert_error(refused, 403, "forbidden", "CSRF")
    assert with_token.status_code == 201, with_token.text


async def test_a_request_with_a_bearer_token_needs_no_csrf_token(office: Office) -> None:
    response = await office.client.post("/v1/products", json={"name": "Insulin"}, headers=office.admin)
    assert response.status_code == 201


async def test_signing_in_again_gives_a_new_session_id_and_ends_the_old_one(office: Office) -> None:
    await add_user(office)
    first = await signed_in(office)
    response = await office.client.post(
        "/v1/session", json={"email": "ada@example.org", "password": PASSWORD}, headers=cookie_only(first)
    )
    second = f"coldchain_session={session_of(response)}"

    assert second != first["Cookie"]
    assert_error(await office.client.get("/v1/shipments", headers=cookie_only(first)), 401, "unauthenticated")
    assert (await office.client.get("/v1/shipments", headers={"Cookie": second})).status_code == 200


async def test_signing_out_ends_the_session_on_the_server(office: Office) -> None:
    await add_user(office)
    session = await signed_in(office)

    out = await office.client.delete("/v1/session", headers=session)

    assert out.status_code == 200, out.text
    assert_error(await office.client.get("/v1/shipments", headers=cookie_only(session)), 401, "unauthenticated")


async def test_a_session_ends_when_idle_too_long_and_at_its_absolute_lifetime(office: Office) -> None:
    await add_user(office)
    session = await signed_in(office)
    office.clock.now = START + timedelta(minutes=9)
    assert (await office.client.get("/v1/shipments", headers=cookie_only(session))).status_code == 200

    office.clock.now += timedelta(minutes=11)
    assert_error(await office.client.get("/v1/shipments", headers=cookie_only(session)), 401, "unauthenticated")

    busy = await signed_in(office)
    for _ in range(90):  # a request every 9 minutes keeps it from idling, not past 12 hours
        office.clock.now += timedelta(minutes=9)
        response = await office.client.get("/v1/shipments", headers=cookie_only(busy))
        if response.status_code == 401:
            break
    assert response.status_code == 401
    assert office.clock.now - START >= timedelta(hours=12)


async def test_repeated_failed_sign_ins_lock_the_account_out_and_are_audited(office: Office) -> None:
    await add_user(office)
    for _ in range(3):
        assert_error(await sign_in(office, password="wrong password"), 401, "unauthenticated", "not right")

    locked = await sign_in(office)  # the right password, too late

    assert_error(locked, 429, "too_many_requests", "too many failed sign-ins")
    office.clock.now += timedelta(minutes=16)
    assert (await sign_in(office)).status_code == 201
    audit = await audit_actions(office)
    assert audit.count("user.sign_in_failed") == 3
    assert "user.sign_in_refused" in audit


async def test_an_unknown_email_and_a_disabled_user_are_refused_like_a_wrong_password(office: Office) -> None:
    user = await add_user(office)
    unknown = await sign_in(office, email="nobody@example.org")
    disabled = await office.client.post(
        f"/v1/organisations/{office.org}/users/{user['id']}/disable", headers=office.admin
    )
    assert disabled.status_code == 200, disabled.text

    assert_error(unknown, 401, "unauthenticated", "not right")
    assert_error(await sign_in(office), 401, "unauthenticated", "not right")


async def test_disabling_a_user_or_resetting_the_password_ends_their_sessions(office: Office) -> None:
    user = await add_user(office)
    session = await signed_in(office)
    reset = await office.client.post(
        f"/v1/organisations/{office.org}/users/{user['id']}/password",
        json={"password": "another long password"},
        headers=office.admin,
    )

    assert reset.status_code == 200, reset.text
    assert_error(await office.client.get("/v1/shipments", headers=cookie_only(session)), 401, "unauthenticated")
    assert_error(await sign_in(office), 401, "unauthenticated")
    assert (await sign_in(office, password="another long password")).status_code == 201


async def admin_token_id(office: Office) -> int:
    tokens = (await office.client.get(f"/v1/organisations/{office.org}/tokens", headers=OPERATOR_HEADERS)).json()
    token_id: int = next(t["id"] for t in tokens if t["role"] == "admin" and t["revoked_at"] is None)
    return token_id


async def test_the_last_active_admin_user_of_an_organisation_without_an_admin_token_cannot_be_disabled(
    office: Office,
) -> None:
    ada = await add_user(office, "ada@example.org", role="admin")
    bob = await add_user(office, "bob@example.org", role="admin")
    users = f"/v1/organisations/{office.org}/users"
    # Admin users count: the organisation's only admin token may go while they remain.
    token_revoked = await office.client.delete(
        f"/v1/organisations/{office.org}/tokens/{await admin_token_id(office)}", headers=OPERATOR_HEADERS
    )
    as_ada = await signed_in(office, "ada@example.org")

    bob_disabled = await office.client.post(f"{users}/{bob['id']}/disable", headers=as_ada)
    last = await office.client.post(f"{users}/{ada['id']}/disable", headers=OPERATOR_HEADERS)
    themself = await office.client.post(f"{users}/{ada['id']}/disable", headers=as_ada)
    bob_again = await office.client.post(f"{users}/{bob['id']}/disable", headers=as_ada)  # already disabled: no change
    await office.client.post(f"{users}/{bob['id']}/enable", headers=as_ada)
    ada_disabled = await office.client.post(f"{users}/{ada['id']}/disable", headers=OPERATOR_HEADERS)

    assert token_revoked.status_code == 200, token_revoked.text
    assert bob_disabled.status_code == 200, bob_disabled.text
    assert_error(last, 409, "conflict", f"user {ada['id']} is the last active admin user", "issue an admin token")
    assert_error(themself, 422, "invalid", "cannot disable themself")
    assert bob_again.status_code == 200, bob_again.text
    assert ada_disabled.status_code == 200, ada_disabled.text  # Bob is an admin again
    assert "user.disabled" in await audit_actions(office)


async def test_an_admin_token_counts_when_the_last_admin_user_is_disabled(office: Office) -> None:
    ada = await add_user(office, "ada@example.org", role="admin")
    logistics = await add_user(office, "lou@example.org", role="logistics")

    disabled = await office.client.post(
        f"/v1/organisations/{office.org}/users/{ada['id']}/disable", headers=office.admin
    )
    not_an_admin = await office.client.post(
        f"/v1/organisations/{office.org}/users/{logistics['id']}/disable", headers=office.admin
    )

    assert disabled.status_code == 200, disabled.text
    assert not_an_admin.status_code == 200, not_an_admin.text


async def test_the_last_admin_token_cannot_be_revoked_when_every_admin_user_is_disabled(office: Office) -> None:
    ada = await add_user(office, "ada@example.org", role="admin")
    token = f"/v1/organisations/{office.org}/tokens/{await admin_token_id(office)}"
    disabled = await office.client.post(
        f"/v1/organisations/{office.org}/users/{ada['id']}/disable", headers=office.admin
    )

    refused = await office.client.delete(token, headers=OPERATOR_HEADERS)
    await office.client.post(f"/v1/organisations/{office.org}/users/{ada['id']}/enable", headers=office.admin)
    revoked = await office.client.delete(token, headers=OPERATOR_HEADERS)

    assert disabled.status_code == 200, disabled.text
    assert_error(refused, 409, "conflict", "is the last admin token", "which has no active admin user")
    assert revoked.status_code == 200, revoked.text
    assert_error(await office.client.get("/v1/shipments", headers=office.admin), 401, "unauthenticated")


async def test_only_the_organisations_admin_manages_its_users(office: Office) -> None:
    other = await new_org(office.client, "Competitor")
    other_admin = bearer(await new_token(office.client, other, "admin"))
    logistics = bearer(await new_token(office.client, office.org, "logistics"))
    body = {"role": "admin", "name": "Mallory", "email": "m@example.org", "password": PASSWORD}

    assert_error(
        await office.client.post(f"/v1/organisations/{office.org}/users", json=body, headers=other_admin),
        404,
        "not_found",
    )
    assert_error(
        await office.client.post(f"/v1/organisations/{office.org}/users", json=body, headers=logistics),
        403,
        "forbidden",
    )
    short = await office.client.post(
        f"/v1/organisations/{office.org}/users", json={**body, "password": "short"}, headers=office.admin
    )
    assert_error(short, 422, "invalid", "password")
    await add_user(office, email="m@example.org")
    taken = await office.client.post(f"/v1/organisations/{office.org}/users", json=body, headers=office.admin)
    assert_error(taken, 409, "conflict", "m@example.org")


async def test_what_a_user_does_is_attributed_to_their_name_and_email(office: Office) -> None:
    await add_user(office)
    session = await signed_in(office)

    created = await office.client.post("/v1/products", json={"name": "Insulin"}, headers=session)

    assert created.status_code == 201
    entries = await audit_entries(office)
    assert any(
        e.action == "product.created" and e.actor.startswith("Ada Lovelace <ada@example.org>") for e in entries
    ), [(e.action, e.actor) for e in entries]


@pytest.mark.full_cost_passwords
async def test_a_password_is_kept_as_an_argon2id_hash_at_rfc_9106s_low_memory_cost(office: Office) -> None:
    await add_user(office)

    store = await open_store(office.database_url)
    try:
        async with store.transaction() as tx:
            found = await tx.user_by_email("ada@example.org")
    finally:
        await store.close()

    assert found is not None
    _, password_hash = found
    assert password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$"), password_hash
    assert PASSWORD not in password_hash
    assert (await sign_in(office)).status_code == 201
    assert (await sign_in(office, password=PASSWORD + "!")).status_code == 401


async def audit_entries(office: Office) -> list[AuditEntry]:
    store = await open_store(office.database_url)  # the app's store lives on the test client's own loop
    try:
        async with store.transaction() as tx:
            return await tx.audit_entries()
    finally:
        await store.close()


async def audit_actions(office: Office) -> list[str]:
    return [entry.action for entry in await audit_entries(office)]


async def _organisation(database_url: str) -> int:
    store = await open_store(database_url)
    try:
        async with store.transaction() as tx:
            return (await tx.create_organisation(name="Wholesaler", kind="shipper", now=START)).id
    finally:
        await store.close()


def test_coldchain_user_add_creates_the_first_admin_with_a_password_from_stdin(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    org = asyncio.run(_organisation(database_url))
    monkeypatch.setenv("COLDCHAIN_DATABASE_URL", database_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))

    code = main(
        [
            "user",
            "add",
            "--organisation",
            str(org),
            "--name",
            "Grace Hopper",
            "--email",
            "Grace@Example.org",
            "--password-stdin",
        ]
    )

    assert code == 0
    assert "Grace Hopper <grace@example.org>, admin of organisation" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert (
        main(["user", "add", "--organisation", str(org), "--name", "G", "--email", "g@example.org", "--password-stdin"])
        == 1
    )
    assert "at least 10 characters" in capsys.readouterr().err
