"""The status, excursions and alarms API through the real app, on each storage engine: readings synced through
the signed sync API are judged at ingest (inside each batch's transaction, or after it commits, when every read of
the shipment first settles what waits), and every party of the shipment (and nobody else) reads the result."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.access import Role
from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
from coldchain.settings import load_settings
from coldchain.storage import Store
from tests.factories import OPERATOR_HEADERS, OPERATOR_TOKEN, bearer, make_org, make_token
from tests.http.test_sync_api import as_json, assert_error, batch, post_batch
from tests.services.test_evaluation_ingest import TRIP, World, at, log, make_world

Client = AsyncTestClient[Litestar]


@dataclass
class Api:
    client: Client
    world: World
    serial: str

    def call(self, function: Any, *args: Any) -> Any:
        """Run ``function(store, *args)`` on the app's own event loop."""
        return self.client.blocking_portal.call(function, self.client.app.state.store, *args)

    def token(self, organisation_id: int, role: Role) -> dict[str, str]:
        return bearer(self.call(make_token, organisation_id, role))

    @property
    def status_path(self) -> str:
        return f"/v1/shipments/{self.world.shipment.id}/status"


async def _serial(store: Store, tracker_id: int) -> str:
    async with store.transaction() as tx:
        tracker = await tx.get_tracker_by_id(tracker_id)
    assert tracker is not None
    return tracker.serial


@pytest.fixture(params=["in_transaction", "after_commit"])
async def api(database_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Api]:
    """The app on the test's database, judging inside each batch's transaction or after commit (the judge then
    lingers a minute, so it is the reads that settle what waits)."""
    after_commit = request.param == "after_commit"
    settings = load_settings(
        {}, database_url=database_url, admin_token=OPERATOR_TOKEN, judge_after_commit=after_commit, judge_linger_s=60
    )
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        world: World = client.blocking_portal.call(make_world, app.state.store)
        serial: str = client.blocking_portal.call(_serial, app.state.store, world.tracker_id)
        yield Api(client=client, world=world, serial=serial)


async def synced(api: Api, readings: Sequence[Reading]) -> None:
    """Send readings as the tracker does: signed JSON, device times with their offset."""
    wire: list[dict[str, object]] = [
        {"seq": r.seq, "device_time": r.device_time.isoformat(), "temperature_c": r.temperature_c} for r in readings
    ]
    response = await post_batch(api.client, "secret", as_json(batch(*wire)), serial=api.serial)
    assert response.status_code == 200, response.text


async def test_the_status_shows_each_rule_the_budget_mkt_excursions_alarms_and_a_recommendation(api: Api) -> None:
    await synced(api, log(TRIP))
    logistics = api.token(api.world.shipper, "logistics")

    response = await api.client.get(api.status_path, headers=logistics)

    assert response.status_code == 200, response.text
    status = response.json()
    assert (status["shipment_id"], status["readings"], status["streams"]) == (api.world.shipment.id, len(TRIP), 1)
    rules = {rule["rule"]: rule for rule in status["rules"]}
    assert {name: rule["status"] for name, rule in rules.items()} == {
        "above 25": "alarmed",
        "heat": "alarmed",
        "budget": "alarmed",
    }
    assert (rules["heat"]["beyond_min"], rules["heat"]["longest_min"]) == (120.0, 120.0)
    assert rules["budget"]["allowance_left_min"] == 0.0
    (budget,) = status["budgets"]
    assert (budget["allowed_min"], budget["spent_in_shipment_min"], budget["remaining_min"]) == (120.0, 120.0, 0.0)
    assert budget["exhausted"] is True
    assert status["mkt"]["window"] == "24h" and status["mkt"]["credited_min"] == (len(TRIP) - 1) * 10.0
    # 2 h at 9-26 °C in a 5 h record: not a 24 h window, so the verdict rests on the bounds of the full window.
    mkt = status["mkt"]
    assert (mkt["window_complete"], mkt["verdict"], mkt["rests_on"], mkt["passes"]) == (False, "review", "bounds", None)
    assert (
        mkt["coverage"] == mkt["covered_min"] / (24 * 60.0) and mkt["best_case_mkt_c"] < 8.0 < mkt["worst_case_mkt_c"]
    )
    assert {e["rule"] for e in status["excursions"]} == {"above 25", "heat", "budget"}
    alarms = {alarm["rule"]: alarm for alarm in status["alarms"]}
    assert alarms["heat"]["began_at"] == at(60).isoformat().replace("+00:00", "Z")
    assert alarms["heat"]["met_at"] == at(120).isoformat().replace("+00:00", "Z")
    assert all(alarm["late"] for alarm in alarms.values())  # readings of February, synced today: not live
    assert status["disposition"]["recommendation"] == "reject"
    assert {reason["code"] for reason in status["disposition"]["reasons"]} >= {"alarm"}


async def test_every_party_reads_the_status_and_anyone_else_finds_no_shipment(api: Api) -> None:
    await synced(api, log(TRIP))
    world = api.world
    outsider = api.call(make_org, None, "carrier").id

    readers: list[tuple[int, Role]] = [
        (world.shipper, "auditor"),
        (world.carrier, "carrier"),
        (world.receiver, "pharmacist"),
    ]
    for party, role in readers:
        response = await api.client.get(api.status_path, headers=api.token(party, role))
        assert response.status_code == 200, (role, response.text)
    for path in ("status", "excursions", "alarms"):
        url = f"/v1/shipments/{world.shipment.id}/{path}"
        assert_error(await api.client.get(url, headers=api.token(outsider, "admin")), 404, "not_found")
        assert_error(await api.client.get(url), 401, "unauthenticated")
    assert_error(await api.client.get("/v1/shipments/999999/status", headers=OPERATOR_HEADERS), 404, "not_found")


async def test_a_shipment_without_readings_is_judged_on_no_data(api: Api) -> None:
    response = await api.client.get(api.status_path, headers=OPERATOR_HEADERS)

    assert response.status_code == 200, response.text
    status = response.json()
    assert (status["readings"], status["streams"], status["excursions"], status["alarms"]) == (0, 0, [], [])
    assert {rule["status"] for rule in status["rules"]} == {"ok"}
    assert status["disposition"]["recommendation"] == "quarantine"
    assert [reason["code"] for reason in status["disposition"]["reasons"]] == ["no_data"]


async def test_the_lists_show_standing_findings_and_on_request_the_withdrawn_ones_too(api: Api) -> None:
    base = f"/v1/shipments/{api.world.shipment.id}"
    await synced(api, log([5.0, 26.0, 5.0]))  # above 25 °C from minute 10
    raised = (await api.client.get(f"{base}/alarms", headers=OPERATOR_HEADERS)).json()  # judged after commit: now
    assert [(a["rule"], a["began_at"][11:16]) for a in raised] == [("above 25", "06:10")]
    await synced(api, [Reading(seq=100, device_time=at(5), temperature_c=30.0)])  # it began at minute 5

    standing = (await api.client.get(f"{base}/alarms", headers=OPERATOR_HEADERS)).json()
    every = (await api.client.get(f"{base}/alarms?withdrawn=true", headers=OPERATOR_HEADERS)).json()
    excursions = (await api.client.get(f"{base}/excursions", headers=OPERATOR_HEADERS)).json()

    assert [(a["rule"], a["began_at"][11:16]) for a in standing] == [("above 25", "06:05")]
    assert sorted((a["began_at"][11:16], a["withdrawn_at"] is not None) for a in every) == [
        ("06:05", False),
        ("06:10", True),
    ]
    (excursion,) = [e for e in excursions if e["rule"] == "above 25"]
    assert (excursion["start"][11:16], excursion["end"][11:16], excursion["peak"], excursion["open"]) == (
        "06:05",
        "06:20",
        30.0,
        False,
    )
    assert_error(await api.client.get(f"{base}/alarms?withdrawn=maybe", headers=OPERATOR_HEADERS), 422, "invalid")


async def test_an_alarm_is_acknowledged_once_with_a_comment_by_a_role_that_may(api: Api) -> None:
    await synced(api, log(TRIP))
    base = f"/v1/shipments/{api.world.shipment.id}/alarms"
    (alarm, *_) = (await api.client.get(base, headers=OPERATOR_HEADERS)).json()
    url = f"{base}/{alarm['id']}/acknowledge"
    pharmacist = api.token(api.world.receiver, "pharmacist")

    auditor = await api.client.post(url, json={"comment": "seen"}, headers=api.token(api.world.shipper, "auditor"))
    empty = await api.client.post(url, json={"comment": ""}, headers=pharmacist)
    unknown = await api.client.post(url, json={"comment": "ok", "by": "me"}, headers=pharmacist)
    first = await api.client.post(url, json={"comment": "Batch moved to quarantine."}, headers=pharmacist)
    second = await api.client.post(url, json={"comment": "again"}, headers=OPERATOR_HEADERS)

    assert_error(auditor, 403, "forbidden", "acknowledge")
    assert_error(empty, 422, "invalid", "comment")
    assert_error(unknown, 422, "invalid")
    assert first.status_code == 200, first.text
    assert (first.json()["id"], first.json()["comment"]) == (alarm["id"], "Batch moved to quarantine.")
    assert first.json()["acknowledged_at"] is not None
    assert_error(second, 409, "conflict", "already acknowledged")
    (listed,) = [a for a in (await api.client.get(base, headers=OPERATOR_HEADERS)).json() if a["id"] == alarm["id"]]
    assert listed == first.json()


async def test_an_outsider_cannot_acknowledge_and_nothing_changes(api: Api) -> None:
    await synced(api, log(TRIP))
    base = f"/v1/shipments/{api.world.shipment.id}/alarms"
    before = (await api.client.get(base, headers=OPERATOR_HEADERS)).json()
    outsider = api.token(api.call(make_org, None, "receiver").id, "admin")

    response = await api.client.post(f"{base}/{before[0]['id']}/acknowledge", json={"comment": "x"}, headers=outsider)

    assert_error(response, 404, "not_found")
    assert (await api.client.get(base, headers=OPERATOR_HEADERS)).json() == before


async def test_readings_quarantined_at_ingest_show_as_faults_and_are_listed_page_by_page(api: Api) -> None:
    readings = log([5.0, -300.0, 5.0, -250.0, 5.0, 5.0])  # two readings no sensor can make
    await synced(api, readings)
    base = f"/v1/shipments/{api.world.shipment.id}"

    status = (await api.client.get(api.status_path, headers=OPERATOR_HEADERS)).json()
    first = await api.client.get(f"{base}/quarantined?limit=1", headers=OPERATOR_HEADERS)
    cursor = first.json()["next"]
    second = await api.client.get(f"{base}/quarantined?limit=1&after={cursor}", headers=OPERATOR_HEADERS)

    assert status["quarantined"] == [
        {
            "kind": "temperature_c outside the physical range",
            "first_at": at(10).isoformat().replace("+00:00", "Z"),
            "last_at": at(30).isoformat().replace("+00:00", "Z"),
            "readings": 2,
        }
    ]
    assert "quarantined_readings" in {reason["code"] for reason in status["disposition"]["reasons"]}
    assert first.status_code == 200, first.text
    [one] = first.json()["items"]
    assert (one["seq"], one["reading"]["temperature_c"]) == (2, -300.0)
    assert "outside the physical range" in one["reason"]
    assert [(item["seq"], item["reading"]["temperature_c"]) for item in second.json()["items"]] == [(4, -250.0)]
    assert second.json()["next"] is None


async def test_a_malformed_cursor_or_page_size_is_refused_with_a_4xx(api: Api) -> None:
    base = f"/v1/shipments/{api.world.shipment.id}/quarantined"

    assert_error(await api.client.get(f"{base}?after=yesterday", headers=OPERATOR_HEADERS), 422, "invalid")
    assert_error(await api.client.get(f"{base}?limit=0", headers=OPERATOR_HEADERS), 422, "invalid")
    assert_error(await api.client.get(f"{base}?limit=many", headers=OPERATOR_HEADERS), 422, "invalid")


async def test_judging_after_commit_a_sync_is_answered_before_judging_and_refused_while_the_judge_stays_behind(
    database_url: str,
) -> None:
    settings = load_settings(
        {},
        database_url=database_url,
        admin_token=OPERATOR_TOKEN,
        judge_after_commit=True,
        judge_linger_s=60,
        judge_max_held_readings=len(TRIP),
        judge_room_wait_s=0.05,
    )
    app = create_app(settings)
    async with AsyncTestClient(app) as client:
        world: World = client.blocking_portal.call(make_world, app.state.store)
        api = Api(
            client=client, world=world, serial=client.blocking_portal.call(_serial, app.state.store, world.tracker_id)
        )
        await synced(api, log(TRIP))
        assert client.blocking_portal.call(excursions_stored, app.state.store, world.shipment.id) == 0

        refused = await post_batch(
            client, "secret", as_json(batch({"seq": 999, "device_time": "2026-02-02T00:00:00Z"})), serial=api.serial
        )
        assert_error(refused, 429, "too_many_requests", "behind judging")
        assert refused.headers["Retry-After"] == str(settings.retry_after_s)

        status = await client.get(api.status_path, headers=api.token(world.shipper, "logistics"))
        assert status.json()["disposition"]["recommendation"] == "reject", "the read settled what waited"
        assert client.blocking_portal.call(excursions_stored, app.state.store, world.shipment.id) > 0
        await synced(api, log([5.0], first_seq=len(TRIP) + 1))


async def excursions_stored(store: Store, shipment_id: int) -> int:
    async with store.transaction() as tx:
        return len(await tx.excursions_of_shipment(shipment_id))
