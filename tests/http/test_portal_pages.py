"""The portal's pages through the real app (no browser): signing in and out with forms, the CSRF token on every
form, lock-out, the security headers, the set-up forms an admin uses for people, and what each role is offered."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.settings import load_settings
from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON
from tests.http.test_tenancy_api import new_org

Client = AsyncTestClient[Litestar]
PASSWORD = "a long enough password"


@dataclass
class Site:
    client: Client
    org: int
    database_url: str = ""


@pytest.fixture
async def site(database_url: str) -> AsyncIterator[Site]:
    settings = load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN, login_max_failures=3)
    async with AsyncTestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        org = await new_org(client, "Distributor")
        for role in ("admin", "auditor"):
            user = {"role": role, "name": f"{role.title()} User", "email": f"{role}@example.org", "password": PASSWORD}
            created = await client.post(f"/v1/organisations/{org}/users", json=user, headers=OPERATOR_HEADERS)
            assert created.status_code == 201, created.text
        yield Site(client=client, org=org, database_url=database_url)


async def sign_in(site: Site, email: str = "admin@example.org", password: str = PASSWORD) -> httpx.Response:
    return await site.client.post(
        "/login", data={"email": email, "password": password, "next": "/portal"}, follow_redirects=False
    )


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, "the page carries the session's CSRF token in its forms"
    return found.group(1)


async def test_a_page_without_a_session_sends_the_reader_to_sign_in_and_back(site: Site) -> None:
    response = await site.client.get("/portal/alarms", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/portal/alarms"


async def test_signing_in_with_the_form_sets_a_new_session_id_each_time(site: Site) -> None:
    first = await sign_in(site)
    old = site.client.cookies["coldchain_session"]
    second = await sign_in(site)
    new = site.client.cookies["coldchain_session"]

    assert (first.status_code, first.headers["location"]) == (303, "/portal")
    assert second.status_code == 303
    assert new != old
    stale = await site.client.get("/v1/shipments", headers={"Cookie": f"coldchain_session={old}"})
    assert stale.status_code == 401


async def test_the_sign_in_form_locks_out_after_repeated_failures_and_keeps_the_email(site: Site) -> None:
    for _ in range(3):
        refused = await sign_in(site, password="not the password")
        assert refused.status_code == 401
        assert "There is a problem" in refused.text
        assert 'value="admin@example.org"' in refused.text

    locked = await sign_in(site)

    assert locked.status_code == 429
    assert "too many failed sign-ins" in locked.text
    assert "coldchain_session" not in locked.headers.get("set-cookie", "")


async def test_a_form_posted_without_the_csrf_token_is_refused(site: Site) -> None:
    await sign_in(site)

    forged = await site.client.post("/portal/setup/trackers", data={"serial": "TRK-FORGED"}, follow_redirects=False)
    wrong = await site.client.post(
        "/portal/setup/trackers", data={"serial": "TRK-FORGED", "csrf_token": "guess"}, follow_redirects=False
    )

    assert (forged.status_code, wrong.status_code) == (403, 403)
    assert "Reload the page" in forged.text, "a person is told what to do, on a page"
    page = await site.client.get("/portal/setup")
    assert "TRK-FORGED" not in page.text


async def test_signing_out_needs_the_csrf_token_and_ends_the_session(site: Site) -> None:
    await sign_in(site)
    board = await site.client.get("/portal")

    refused = await site.client.post("/logout", follow_redirects=False)
    out = await site.client.post("/logout", data={"csrf_token": csrf_of(board)}, follow_redirects=False)

    assert refused.status_code == 403
    assert (out.status_code, out.headers["location"]) == (303, "/login")
    assert (await site.client.get("/portal", follow_redirects=False)).status_code == 303


async def test_pages_forbid_inline_script_and_carry_no_inline_script(site: Site) -> None:
    await sign_in(site)
    for path in ("/login", "/portal", "/portal/alarms", "/portal/setup"):
        page = await site.client.get(path)
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page.text), path
        assert not re.search(r"\son[a-z]+=", page.text), f"no inline event handler on {path}"


async def test_after_signing_in_the_reader_stays_on_this_service(site: Site) -> None:
    for target in ("//evil.example/portal", "https://evil.example/", "portal"):
        response = await site.client.post(
            "/login",
            data={"email": "admin@example.org", "password": PASSWORD, "next": target},
            follow_redirects=False,
        )
        assert response.headers["location"] == "/portal"


async def test_an_admin_adds_disables_and_resets_users_with_the_set_up_forms(site: Site) -> None:
    await sign_in(site)
    token = csrf_of(await site.client.get("/portal/setup"))
    person = {"name": "Paula Pharma", "email": "paula@example.org", "role": "pharmacist", "password": PASSWORD}

    added = await site.client.post("/portal/setup/users", data={**person, "csrf_token": token}, follow_redirects=False)
    short = await site.client.post(
        "/portal/setup/users", data={**person, "email": "p2@example.org", "password": "short", "csrf_token": token}
    )

    assert added.status_code == 303
    assert short.status_code == 422
    assert "at least 10 characters" in short.text
    assert 'value="p2@example.org"' in short.text, "the entered values are kept"
    users = (await site.client.get(f"/v1/organisations/{site.org}/users", headers=OPERATOR_HEADERS)).json()
    paula = next(u for u in users if u["email"] == "paula@example.org")
    disabled = await site.client.post(
        "/portal/setup/user", data={"user_id": paula["id"], "change": "disable", "csrf_token": token}
    )
    assert disabled.status_code == 200
    assert "disabled" in disabled.text
    site.client.cookies.clear()
    assert (await sign_in(site, "paula@example.org")).status_code == 401


async def test_an_auditor_reads_the_pages_but_is_offered_no_set_up_form(site: Site) -> None:
    await sign_in(site, "auditor@example.org")

    for path in ("/portal", "/portal/alarms", "/portal/setup"):
        assert (await site.client.get(path)).status_code == 200, path
    setup = (await site.client.get("/portal/setup")).text
    assert "Register a tracker" not in setup
    assert "Add a user" not in setup
    missing = await site.client.get("/portal/shipments/999")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Not found" in missing.text
    assert "no shipment 999" in missing.text


async def test_an_admin_issues_a_token_shown_once_and_revokes_it_on_the_set_up_page(site: Site) -> None:
    await sign_in(site)
    token = csrf_of(await site.client.get("/portal/setup"))

    issued = await site.client.post(
        "/portal/setup/tokens", data={"token_name": "dispatch", "role": "carrier", "csrf_token": token}
    )

    assert issued.status_code == 201
    text = re.search(r'<code id="token-value">([^<]+)</code>', issued.text)
    assert text, "the token is shown in the answer to its issue"
    bearer_headers = {"Authorization": f"Bearer {text.group(1)}"}
    assert (await site.client.get("/v1/shipments", headers=bearer_headers)).status_code == 200
    listed = await site.client.get("/portal/setup")
    assert text.group(1) not in listed.text, "and never again"
    token_id = re.search(r'name="token_id" value="(\d+)"', listed.text)
    assert token_id
    revoked = await site.client.post("/portal/setup/token", data={"token_id": token_id.group(1), "csrf_token": token})
    assert revoked.status_code == 200
    assert (await site.client.get("/v1/shipments", headers=bearer_headers)).status_code == 401


async def test_a_shipment_created_on_the_set_up_page_keeps_its_legs_in_order(site: Site) -> None:
    road, air = (
        await new_org(site.client, "Road carrier", "carrier"),
        await new_org(site.client, "Air carrier", "carrier"),
    )
    fridge = next(p for p in json.loads(PROFILES_JSON.read_text())["profiles"] if p["id"] == FRIDGE_PROFILE)
    assert (await site.client.post("/v1/profiles", json=fridge, headers=OPERATOR_HEADERS)).is_success
    await sign_in(site)
    token = csrf_of(await site.client.get("/portal/setup"))
    product = await site.client.post(
        "/portal/setup/products", data={"name": "Insulin", "profile_id": FRIDGE_PROFILE, "csrf_token": token}
    )
    assert product.status_code == 200  # back on the set-up page
    products = (await site.client.get("/v1/products")).json()
    body = {
        "csrf_token": token,
        "reference": "SHP-LEGS",
        "product_id": str(products[0]["id"]),
        "quantity": "10",
        "origin_name": "Berlin",
        "origin_lat": "52.52",
        "origin_lon": "13.405",
        "destination_name": "Lisbon",
        "destination_lat": "38.72",
        "destination_lon": "-9.14",
        "legs": f"{road} road; {air} air",
        "priority": "standard",
    }

    bad = await site.client.post("/portal/setup/shipments", data={**body, "legs": f"{road} bicycle"})
    created = await site.client.post("/portal/setup/shipments", data=body)

    assert bad.status_code == 422
    assert "mode road, air, sea or rail" in bad.text
    assert created.status_code == 200, re.findall(r"Error: [^<]+", created.text)
    [shipment] = (await site.client.get("/v1/shipments")).json()
    assert [(leg["carrier_id"], leg["mode"]) for leg in shipment["legs"]] == [(road, "road"), (air, "air")]


async def test_times_inside_the_arrival_reasons_on_the_shipment_page_are_marked_utc(site: Site) -> None:
    fridge = next(p for p in json.loads(PROFILES_JSON.read_text())["profiles"] if p["id"] == FRIDGE_PROFILE)
    assert (await site.client.post("/v1/profiles", json=fridge, headers=OPERATOR_HEADERS)).is_success
    await sign_in(site)
    session = {"X-CSRF-Token": csrf_of(await site.client.get("/portal/setup"))}
    product = await site.client.post(
        "/v1/products", json={"name": "Insulin", "profile_id": FRIDGE_PROFILE}, headers=session
    )
    promised = (datetime.now(UTC) - timedelta(days=2)).replace(second=0, microsecond=0)
    body = {
        "reference": "SHP-LATE",
        "product_id": product.json()["id"],
        "quantity": 10,
        "origin": {"name": "Berlin", "lat": 52.52, "lon": 13.405},
        "destination": {"name": "Lisbon", "lat": 38.72, "lon": -9.14},
        "promised_at": promised.astimezone(timezone(timedelta(hours=-5))).isoformat(),  # given in New York time
    }
    shipment = await site.client.post("/v1/shipments", json=body, headers=session)
    assert shipment.status_code == 201, shipment.text
    moved = await site.client.post(
        f"/v1/shipments/{shipment.json()['id']}/status", json={"status": "in_transit"}, headers=session
    )
    assert moved.status_code == 200, moved.text

    page = await site.client.get(f"/portal/shipments/{shipment.json()['id']}")

    assert page.status_code == 200
    assert f"overdue by 48 h (promised {promised:%Y-%m-%d %H:%M} UTC)" in page.text
