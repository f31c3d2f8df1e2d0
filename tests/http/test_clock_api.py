"""The service's clock is injected at ``create_app``: what the routes call "now" is the app's clock, so time-bound
answers (ETA, the server time of a sync answer, record times) are tested over HTTP without waiting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.jobs import running_jobs
from coldchain.settings import load_settings
from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON, bearer
from tests.http.test_status_api import Api, _serial, synced
from tests.http.test_tenancy_api import new_org, new_token
from tests.services.test_evaluation_ingest import TRIP, World, at, log, make_world

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


async def test_an_alarm_is_escalated_when_the_apps_clock_passes_the_escalation_delay(database_url: str) -> None:
    """The jobs and the routes share the app's clock: an alarm raised live over the sync API stays unescalated
    until the clock moves past COLDCHAIN_ESCALATE_AFTER_S, then the job marks it, as the alarms API shows."""
    clock = SettableClock(at(len(TRIP) * 10))
    settings = load_settings(
        {}, database_url=database_url, admin_token=OPERATOR_TOKEN, job_interval_s=0.05, escalate_after_s=1800
    )
    app = create_app(settings, clock=clock, background=[lambda store: running_jobs(store, settings, clock=clock)])
    async with AsyncTestClient(app) as client:
        world: World = client.blocking_portal.call(make_world, app.state.store)
        api = Api(
            client=client, world=world, serial=client.blocking_portal.call(_serial, app.state.store, world.tracker_id)
        )
        await synced(api, log(TRIP))
        alarms_path = f"/v1/shipments/{world.shipment.id}/alarms"

        async def alarms() -> list[dict[str, object]]:
            response = await client.get(alarms_path, headers=OPERATOR_HEADERS)
            assert response.status_code == 200, response.text
            listed: list[dict[str, object]] = response.json()
            return listed

        raised = await alarms()
        assert raised and all(alarm["detected_at"] == "2026-02-01T11:00:00Z" for alarm in raised)
        await anyio.sleep(0.3)  # several job ticks, all within the delay
        assert all(alarm["escalated_at"] is None for alarm in await alarms())

        clock.now += timedelta(minutes=31)
        for _ in range(200):  # the next tick of the job, at most 10 s away
            if all(alarm["escalated_at"] is not None for alarm in await alarms()):
                break
            await anyio.sleep(0.05)
        assert {alarm["escalated_at"] for alarm in await alarms()} == {"2026-02-01T11:31:00Z"}
