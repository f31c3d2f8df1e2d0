"""The service's clock is injected at ``create_app``: what the routes call "now" is the app's clock, so time-bound
answers (ETA, the server time of a sync answer, record times) are tested over HTTP without waiting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.settings import load_settings
from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON, bearer
from tests.http.test_tenancy_api import new_org, new_token

START = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


class SettableClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Road:
    client: AsyncTestClient[Litestar]
    clock: SettableClock
    logistics: dict[str, str]
    shipment_id: int


@pytest.fixture
async def road(database_url: str) -> AsyncIterator[Road]:
    clock = SettableClock(START)
    app = create_app(load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN), clock=clock)
    async with AsyncTestClient(app) as client:
        fridge = next(
            p for p in json.loads(PROFILES_JSON.read_text(encoding="utf-8"))["profiles"] if p["id"] == FRIDGE_PROFILE
        )
        assert (await client.post("/v1/profiles", json=fridge, headers=OPERATOR_HEADERS)).status_code == 201
        shipper = await new_org(client, "Shipper")
        logistics = bearer(await new_token(client, shipper, "logistics"))
        product = await client.post(
            "/v1/products", json={"name": "Vaccine", "profile_id": FRIDGE_PROFILE}, headers=logistics
        )
        shipment = await client.post(
            "/v1/shipments",
            json={
                "reference": "SHP-ETA",
                "product_id": product.json()["id"],
                "quantity": 10,
                "origin": {"name": "Berlin", "lat": 52.52, "lon": 13.405},
                "destination": {"name": "Munich", "lat": 48.137, "lon": 11.575},
                "promised_at": (START + timedelta(hours=8)).isoformat(),
                "priority": "urgent",
            },
            headers=logistics,
        )
        assert shipment.status_code == 201, shipment.text
        shipment_id = shipment.json()["id"]
        assert (await client.post("/v1/trackers", json={"serial": "TRK-ETA"}, headers=logistics)).status_code == 201
        assigned = await client.post(
            f"/v1/shipments/{shipment_id}/trackers", json={"serial": "TRK-ETA"}, headers=logistics
        )
        assert assigned.status_code == 201, assigned.text
        moved = await client.post(
            f"/v1/shipments/{shipment_id}/status", json={"status": "in_transit"}, headers=logistics
        )
        assert moved.status_code == 200, moved.text
        yield Road(client=client, clock=clock, logistics=logistics, shipment_id=shipment_id)


async def eta(road: Road) -> dict[str, object]:
    response = await road.client.get(f"/v1/shipments/{road.shipment_id}/eta", headers=road.logistics)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def test_records_carry_the_time_of_the_injected_clock(road: Road) -> None:
    shipment = await road.client.get(f"/v1/shipments/{road.shipment_id}", headers=road.logistics)
    assert shipment.json()["created_at"] == "2026-05-01T08:00:00Z"
    assignment = (await road.client.get(f"/v1/shipments/{road.shipment_id}/trackers", headers=road.logistics)).json()
    assert assignment[0]["starts_at"] == "2026-05-01T08:00:00Z", "an assignment without a start begins at the app's now"


async def test_a_shipment_in_transit_without_a_position_is_at_risk_with_the_reason(road: Road) -> None:
    road.clock.now = START + timedelta(hours=5)
    early = await eta(road)
    assert early["estimate"] is None
    assert (early["at_risk"], early["reasons"]) == (True, ["no position for 5 h (since tracking began)"])

    road.clock.now = START + timedelta(hours=26)
    silent = await eta(road)
    assert silent["computed_at"] == "2026-05-02T10:00:00Z"
    assert silent["estimate"] is None
    assert silent["at_risk"] is True, "a null estimate never means fine"
    assert silent["reasons"] == ["no position for more than 24 h", "overdue by 18 h (promised 2026-05-01 16:00 UTC)"]


async def test_a_shipment_still_on_time_before_its_first_fix_says_only_that_its_position_is_unknown(road: Road) -> None:
    road.clock.now = START + timedelta(minutes=30)
    answer = await eta(road)
    assert answer["reasons"] == ["no position for 30 min (since tracking began)"]
