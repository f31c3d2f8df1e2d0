"""The portal in a real browser: Debian's Chromium (``ops/require-packages chromium``), driven by Playwright's
Python package through ``executable_path`` (Playwright's own browser downloads are never used), against the
service run as a real process (``coldchain serve``) on a world set up through its API.

Every journey saves a full-page screenshot to ``tests/artifacts/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON, bearer
from tests.served import served

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PASSWORD = "cold chain portal"
ADMIN_EMAIL = "max.weber@nordpharma.example"
AUDITOR_EMAIL = "otto.pruefer@apotheke-am-markt.example"
NOW = datetime.now(UTC).replace(second=0, microsecond=0)


@dataclass
class Portal:
    url: str
    http: httpx.AsyncClient
    logistics: dict[str, str]
    shipment_id: int
    tracker_secret: str
    email: str
    pharmacist_email: str
    log: Path
    """The service's output, to explain an unexpected answer."""

    def explain(self, response: httpx.Response) -> str:
        return f"{response.status_code} {response.text}\n--- service log ---\n{self.log.read_text()[-4000:]}"


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def push(portal: Portal, readings: list[dict[str, Any]], serial: str = "TRK-A1") -> None:
    body = json.dumps({"readings": readings}).encode()
    response = await portal.http.post(
        f"{portal.url}/v1/trackers/{serial}/sync",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": signature(body, portal.tracker_secret)},
    )
    assert response.status_code == 200, response.text


def journey(start: datetime, count: int, *, first_seq: int = 1, step_min: int = 10) -> list[dict[str, Any]]:
    """Readings along Berlin to Munich, 5 °C, one every ``step_min`` minutes from ``start``."""
    readings = []
    for n in range(count):
        share = min(1.0, (first_seq + n) / 160)
        readings.append(
            {
                "seq": first_seq + n,
                "device_time": (start + timedelta(minutes=step_min * n)).isoformat(),
                "temperature_c": 5.0 + (n % 6) * 0.2,
                "humidity_pct": 55.0,
                "latitude": 52.52 + (48.137 - 52.52) * share,
                "longitude": 13.405 + (11.575 - 13.405) * share,
            }
        )
    return readings


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.is_success, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def portal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Portal]:
    """The service with a shipper (a logistics user), a carrier, a pharmacy, and shipment SHP-100 in transit
    with twelve hours of readings, among them a freezing excursion that raised an alarm."""
    monkeypatch.setenv("COLDCHAIN_EVENTS_POLL_S", "0.2")
    monkeypatch.setenv("COLDCHAIN_JOB_INTERVAL_S", "2")
    async with (
        httpx.AsyncClient(timeout=30) as http,
        served(f"sqlite:///{tmp_path / 'portal.db'}", tmp_path, http=http, admin_token=OPERATOR_TOKEN) as service,
    ):
        url = service.url
        fridge = next(p for p in json.loads(PROFILES_JSON.read_text())["profiles"] if p["id"] == FRIDGE_PROFILE)
        await _ok(await http.post(f"{url}/v1/profiles", json=fridge, headers=OPERATOR_HEADERS))
        orgs = {}
        for name, kind in (
            ("Nordpharma Distribution", "shipper"),
            ("Kühltrans", "carrier"),
            ("Apotheke am Markt", "receiver"),
        ):
            orgs[kind] = (
                await _ok(
                    await http.post(
                        f"{url}/v1/organisations", json={"name": name, "kind": kind}, headers=OPERATOR_HEADERS
                    )
                )
            )["id"]
        token = (
            await _ok(
                await http.post(
                    f"{url}/v1/organisations/{orgs['shipper']}/tokens",
                    json={"role": "logistics", "name": "seed"},
                    headers=OPERATOR_HEADERS,
                )
            )
        )["token"]
        logistics = bearer(token)
        admin = {"role": "admin", "name": "Max Weber", "email": ADMIN_EMAIL, "password": PASSWORD}
        await _ok(
            await http.post(f"{url}/v1/organisations/{orgs['shipper']}/users", json=admin, headers=OPERATOR_HEADERS)
        )
        email = "lena.fischer@nordpharma.example"
        user = {"role": "logistics", "name": "Lena Fischer", "email": email, "password": PASSWORD}
        await _ok(
            await http.post(f"{url}/v1/organisations/{orgs['shipper']}/users", json=user, headers=OPERATOR_HEADERS)
        )
        pharmacist_email = "jana.richter@apotheke-am-markt.example"
        pharmacist = {"role": "pharmacist", "name": "Dr. Jana Richter", "email": pharmacist_email, "password": PASSWORD}
        await _ok(
            await http.post(
                f"{url}/v1/organisations/{orgs['receiver']}/users", json=pharmacist, headers=OPERATOR_HEADERS
            )
        )
        auditor = {"role": "auditor", "name": "Otto Prüfer", "email": AUDITOR_EMAIL, "password": PASSWORD}
        await _ok(
            await http.post(f"{url}/v1/organisations/{orgs['receiver']}/users", json=auditor, headers=OPERATOR_HEADERS)
        )
        product = await _ok(
            await http.post(
                f"{url}/v1/products",
                json={"name": "Influenza vaccine", "profile_id": FRIDGE_PROFILE},
                headers=logistics,
            )
        )
        lot = await _ok(
            await http.post(
                f"{url}/v1/products/{product['id']}/lots", json={"lot_number": "FLU-2611"}, headers=logistics
            )
        )
        secret = (await _ok(await http.post(f"{url}/v1/trackers", json={"serial": "TRK-A1"}, headers=logistics)))[
            "secret"
        ]
        await _ok(await http.post(f"{url}/v1/trackers", json={"serial": "TRK-B2"}, headers=logistics))
        start = NOW - timedelta(hours=12)
        shipments = []
        for reference, serial in (("SHP-100", "TRK-A1"), ("SHP-101", "TRK-B2")):
            body = {
                "reference": reference,
                "product_id": product["id"],
                "lot_id": lot["id"],
                "quantity": 240,
                "origin": {"name": "Berlin hub", "lat": 52.52, "lon": 13.405},
                "destination": {"name": "Munich pharmacy", "lat": 48.137, "lon": 11.575},
                "waypoints": [[50.98, 11.03]],
                "legs": [{"carrier_id": orgs["carrier"], "mode": "road"}],
                "receiver_id": orgs["receiver"],
                "promised_at": (NOW + timedelta(hours=6)).isoformat(),
                "priority": "urgent",
            }
            shipment = await _ok(await http.post(f"{url}/v1/shipments", json=body, headers=logistics))
            await _ok(
                await http.post(
                    f"{url}/v1/shipments/{shipment['id']}/trackers",
                    json={"serial": serial, "starts_at": start.isoformat()},
                    headers=logistics,
                )
            )
            packed = {
                "kind": "packed",
                "place": {"lat": 52.52, "lon": 13.405, "name": "Berlin hub"},
                "occurred_at": start.isoformat(),
            }
            await _ok(await http.post(f"{url}/v1/shipments/{shipment['id']}/custody", json=packed, headers=logistics))
            await _ok(
                await http.post(
                    f"{url}/v1/shipments/{shipment['id']}/status", json={"status": "in_transit"}, headers=logistics
                )
            )
            shipments.append(shipment["id"])
        portal = Portal(
            url=url,
            http=http,
            logistics=logistics,
            shipment_id=shipments[0],
            tracker_secret=secret,
            email=email,
            pharmacist_email=pharmacist_email,
            log=tmp_path / "serve.log",
        )
        readings = journey(start, 66)
        for reading in readings[24:33]:  # 8 h to 6.5 h ago: 90 minutes freezing
            reading["temperature_c"] = -2.5
        await push(portal, readings)
        yield portal


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield launched
        await launched.close()


@pytest.fixture
async def page(browser: Browser, portal: Portal) -> AsyncIterator[Page]:
    """A page at 1366×768 in Berlin's time zone; closed before the service stops (a page left on the board holds
    its event stream open, which the service would wait for on its way out)."""
    del portal
    context = await browser.new_context(viewport={"width": 1366, "height": 768}, timezone_id="Europe/Berlin")
    opened = await context.new_page()
    yield opened
    await context.close()


async def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def sign_in(page: Page, portal: Portal, password: str = PASSWORD, email: str | None = None) -> None:
    await page.goto(f"{portal.url}/portal")
    await page.get_by_label("Email address").fill(email or portal.email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
