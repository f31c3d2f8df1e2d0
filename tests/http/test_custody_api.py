"""The chain of custody through the real app, on each storage engine: recording, hand-overs signed by both sides,
verification (also after tampering by SQL), tenant isolation, roles, refusals, and the automatic arrival a
tracker's sync batch triggers by entering the destination's geofence."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.http.app import create_app
from coldchain.services.custody import custodian_at
from coldchain.settings import load_settings
from coldchain.storage import Store
from tests.factories import FRIDGE_PROFILE, OPERATOR_HEADERS, OPERATOR_TOKEN, PROFILES_JSON, bearer
from tests.http.test_sync_api import as_json, assert_error, post_batch
from tests.http.test_tenancy_api import new_org, new_token
from tests.http.test_users_sessions import PASSWORD, session_of

Client = AsyncTestClient[Litestar]

# The service judges event times against its own clock: the journey happened yesterday.
START = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
MUNICH = {"lat": 48.137, "lon": 11.575}
BERLIN = {"lat": 52.52, "lon": 13.405, "name": "Berlin hub"}
SERIAL = "TRK-CUSTODY"


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).isoformat()


@dataclass
class World:
    client: Client
    sid: int
    shipper: int
    carrier_a: int
    carrier_b: int
    receiver: int
    logistics: dict[str, str]
    auditor: dict[str, str]
    a: dict[str, str]
    b: dict[str, str]
    pharmacy: dict[str, str]
    pharmacy_as_carrier: dict[str, str]
    outsider: dict[str, str]

    @property
    def custody(self) -> str:
        return f"/v1/shipments/{self.sid}/custody"


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    app = create_app(load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN))
    async with AsyncTestClient(app) as client:
        fridge = next(
            p for p in json.loads(PROFILES_JSON.read_text(encoding="utf-8"))["profiles"] if p["id"] == FRIDGE_PROFILE
        )
        assert (await client.post("/v1/profiles", json=fridge, headers=OPERATOR_HEADERS)).status_code in (200, 201)
        shipper = await new_org(client, "Shipper")
        carrier_a, carrier_b = await new_org(client, "Road", "carrier"), await new_org(client, "Air", "carrier")
        receiver, outsider = await new_org(client, "Pharmacy", "receiver"), await new_org(client, "Other shipper")
        logistics = bearer(await new_token(client, shipper, "logistics"))
        product = await client.post(
            "/v1/products", json={"name": "Vaccine", "profile_id": FRIDGE_PROFILE}, headers=logistics
        )
        shipment = await client.post(
            "/v1/shipments",
            json={
                "reference": "SHP-1",
                "product_id": product.json()["id"],
                "quantity": 120,
                "origin": BERLIN,
                "destination": {"name": "Munich pharmacy", **MUNICH},
                "legs": [{"carrier_id": carrier_a, "mode": "road"}, {"carrier_id": carrier_b, "mode": "air"}],
                "receiver_id": receiver,
                "geofence_m": 500.0,
            },
            headers=logistics,
        )
        assert shipment.status_code == 201, shipment.text
        yield World(
            client=client,
            sid=shipment.json()["id"],
            shipper=shipper,
            carrier_a=carrier_a,
            carrier_b=carrier_b,
            receiver=receiver,
            logistics=logistics,
            auditor=bearer(await new_token(client, shipper, "auditor")),
            a=bearer(await new_token(client, carrier_a, "carrier")),
            b=bearer(await new_token(client, carrier_b, "carrier")),
            pharmacy=bearer(await new_token(client, receiver, "logistics")),
            pharmacy_as_carrier=bearer(await new_token(client, receiver, "carrier")),
            outsider=bearer(await new_token(client, outsider, "admin")),
        )


def event(kind: str, hours: float, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "place": BERLIN, "occurred_at": at(hours), **extra}


async def record(world: World, headers: dict[str, str], kind: str, hours: float, **extra: Any) -> dict[str, Any]:
    response = await world.client.post(world.custody, json=event(kind, hours, **extra), headers=headers)
    assert response.status_code == 201, response.text
    recorded: dict[str, Any] = response.json()
    return recorded


async def hand_over(world: World, giver: dict[str, str], to: int, hours: float) -> dict[str, Any]:
    response = await world.client.post(
        f"{world.custody}/handovers",
        json={"to_organisation_id": to, "place": BERLIN, "occurred_at": at(hours), "note": "dock 4"},
        headers=giver,
    )
    assert response.status_code == 201, response.text
    proposed: dict[str, Any] = response.json()
    return proposed


async def custody(world: World, headers: dict[str, str] = OPERATOR_HEADERS) -> dict[str, Any]:
    response = await world.client.get(world.custody, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def verdict(world: World) -> dict[str, Any]:
    response = await world.client.get(f"{world.custody}/verify", headers=world.auditor)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def shipment_status(world: World) -> str:
    status: str = (await world.client.get(f"/v1/shipments/{world.sid}", headers=world.logistics)).json()["status"]
    return status


class Trail:
    """What a refused request must leave unchanged: the audit trail and every organisation's notifications (of
    custody only, with ``custody=True``: ingest writes others of its own)."""

    @staticmethod
    async def read(store: Store, organisations: list[int], custody: bool) -> tuple[int, int]:
        async with store.transaction() as tx:
            audit = [entry.action for entry in await tx.audit_entries(limit=100_000)]
            notes = [n.kind for org in organisations for n in await tx.notifications(org, limit=10_000)]
        if custody:
            audit = [action for action in audit if action.startswith("custody.")]
            notes = [kind for kind in notes if kind.startswith("custody.")]
        return len(audit), len(notes)

    @staticmethod
    def of(world: World, *, custody: bool = False) -> tuple[int, int]:
        parties = [world.shipper, world.carrier_a, world.carrier_b, world.receiver]
        store = world.client.app.state.store
        counts: tuple[int, int] = world.client.blocking_portal.call(Trail.read, store, parties, custody)
        return counts


async def test_a_whole_journey_is_recorded_signed_chained_and_moves_the_shipment(world: World) -> None:
    packed = await record(world, world.logistics, "packed", 0, note="2 boxes, 120 vials")
    picked = await record(world, world.a, "picked_up", 1)
    assert await shipment_status(world) == "in_transit"
    proposal = await hand_over(world, world.a, world.carrier_b, 5)
    accepted = await world.client.post(f"{world.custody}/handovers/{proposal['id']}/accept", headers=world.b)
    assert accepted.status_code == 201, accepted.text
    arrived = await record(world, world.b, "arrived", 9, place=MUNICH)
    delivered = await record(world, world.b, "delivered", 10)
    received = await record(world, world.pharmacy, "received", 10.5)

    chain = await custody(world, world.a)
    assert [(e["seq"], e["kind"], e["party_id"], e["counterparty_id"]) for e in chain["events"]] == [
        (1, "packed", world.shipper, None),
        (2, "picked_up", world.carrier_a, world.shipper),
        (3, "handed_over", world.carrier_a, world.carrier_b),
        (4, "arrived", world.carrier_b, None),
        (5, "delivered", world.carrier_b, world.receiver),
        (6, "received", world.receiver, world.carrier_b),
    ]
    assert chain["events"] == [packed, picked, accepted.json(), arrived, delivered, received]
    assert [e["prev_hash"] for e in chain["events"][1:]] == [e["hash"] for e in chain["events"][:-1]]
    assert packed["signers"][0]["by"] == "token" and packed["signers"][0]["organisation_id"] == world.shipper
    assert packed["occurred_at"] == at(0).replace("+00:00", "Z") and packed["note"] == "2 boxes, 120 vials"
    assert (chain["custodian_id"], chain["pending_handovers"]) == (world.receiver, [])
    assert await shipment_status(world) == "delivered"
    assert await verdict(world) == {"intact": True, "checked": 6, "broken_at_seq": None, "problem": None}
    holders = world.client.blocking_portal.call(
        holders_at, world.client.app.state.store, world.sid, [-1, 0.5, 4, 5, 9.9, 11]
    )
    assert holders == [None, world.shipper, world.carrier_a, world.carrier_b, world.carrier_b, world.receiver]


async def holders_at(store: Store, shipment_id: int, hours: list[float]) -> list[int | None]:
    """What evaluation asks to attribute an excursion: who held the shipment then."""
    async with store.transaction() as tx:
        return [await custodian_at(tx, shipment_id, START + timedelta(hours=h)) for h in hours]


async def test_every_recorded_event_is_audited_and_notified_to_every_party(world: World) -> None:
    before = Trail.of(world)

    await record(world, world.a, "picked_up", 1)

    audit, notifications = Trail.of(world)
    assert (audit - before[0], notifications - before[1]) == (1, 4)


async def test_a_hand_over_joins_the_chain_only_when_the_receiving_organisation_accepts_it(world: World) -> None:
    await record(world, world.a, "picked_up", 1)

    proposal = await hand_over(world, world.a, world.carrier_b, 2)
    pending = await custody(world, world.b)
    accept = f"{world.custody}/handovers/{proposal['id']}/accept"
    refusals = [
        await world.client.post(accept, headers=world.a),
        await world.client.post(accept, headers=world.logistics),
        await world.client.post(accept, headers=OPERATOR_HEADERS),
    ]
    after_refusals = await custody(world, world.b)
    accepted = await world.client.post(accept, headers=world.b)
    again = await world.client.post(accept, headers=world.b)

    assert [e["kind"] for e in pending["events"]] == ["picked_up"]
    assert [h["id"] for h in pending["pending_handovers"]] == [proposal["id"]]
    assert (proposal["from_organisation_id"], proposal["to_organisation_id"], proposal["accepted_by"]) == (
        world.carrier_a,
        world.carrier_b,
        None,
    )
    assert pending["custodian_id"] == world.carrier_a
    for refusal in refusals:
        assert_error(refusal, 403, "forbidden", f"only organisation {world.carrier_b}")
    assert after_refusals == pending
    assert accepted.status_code == 201, accepted.text
    signed = [(s["by"], s["organisation_id"]) for s in accepted.json()["signers"]]
    assert signed == [("token", world.carrier_a), ("token", world.carrier_b)]
    assert (accepted.json()["occurred_at"], accepted.json()["note"]) == (at(2).replace("+00:00", "Z"), "dock 4")
    assert_error(again, 409, "conflict", "already accepted (custody event 2)")
    final = await custody(world, world.b)
    assert (final["custodian_id"], final["pending_handovers"], len(final["events"])) == (world.carrier_b, [], 2)


async def signed_in_person(world: World, organisation_id: int, name: str, email: str, role: str) -> dict[str, str]:
    """Headers of a person of ``organisation_id`` signed in to the portal: the session cookie and its CSRF token."""
    body = {"role": role, "name": name, "email": email, "password": PASSWORD}
    added = await world.client.post(f"/v1/organisations/{organisation_id}/users", json=body, headers=OPERATOR_HEADERS)
    assert added.status_code == 201, added.text
    response = await world.client.post("/v1/session", json={"email": email, "password": PASSWORD})
    world.client.cookies.clear()
    assert response.status_code == 201, response.text
    return {"Cookie": f"coldchain_session={session_of(response)}", "X-CSRF-Token": response.json()["csrf_token"]}


async def audit_of(world: World, action: str) -> list[tuple[str, dict[str, Any]]]:
    async def read(store: Store) -> list[tuple[str, dict[str, Any]]]:
        async with store.transaction() as tx:
            entries = await tx.audit_entries(limit=100_000)
        return [(entry.actor, json.loads(entry.detail)) for entry in entries if entry.action == action]

    found: list[tuple[str, dict[str, Any]]] = world.client.blocking_portal.call(read, world.client.app.state.store)
    return found


async def test_people_signed_in_to_the_portal_propose_and_accept_a_hand_over_and_are_named_as_its_signers(
    world: World,
) -> None:
    ada = await signed_in_person(world, world.carrier_a, "Ada Driver", "ada@road.example", "carrier")
    bo = await signed_in_person(world, world.carrier_b, "Bo Pilot", "bo@air.example", "logistics")
    await record(world, ada, "picked_up", 1)

    proposal = await hand_over(world, ada, world.carrier_b, 2)
    pending = await custody(world, bo)
    without_csrf = await world.client.post(
        f"{world.custody}/handovers/{proposal['id']}/accept", headers={"Cookie": bo["Cookie"]}
    )
    accepted = await world.client.post(f"{world.custody}/handovers/{proposal['id']}/accept", headers=bo)

    ada_signs = {"by": "user", "organisation_id": world.carrier_a, "token_id": None, "tracker_id": None}
    ada_signs |= {"user_id": proposal["proposed_by"]["user_id"], "name": "Ada Driver", "email": "ada@road.example"}
    assert proposal["proposed_by"] == ada_signs
    assert pending["pending_handovers"][0]["proposed_by"] == ada_signs
    assert_error(without_csrf, 403, "forbidden", "CSRF")
    assert accepted.status_code == 201, accepted.text
    signers = accepted.json()["signers"]
    assert signers[0] == ada_signs
    assert (signers[1]["by"], signers[1]["organisation_id"], signers[1]["name"], signers[1]["email"]) == (
        "user",
        world.carrier_b,
        "Bo Pilot",
        "bo@air.example",
    )
    final = await custody(world, world.auditor)
    assert (final["custodian_id"], final["pending_handovers"]) == (world.carrier_b, [])
    assert final["events"][-1]["signers"] == signers
    assert (await verdict(world))["intact"] is True

    proposed_audit = await audit_of(world, "custody.handover_proposed")
    recorded_audit = await audit_of(world, "custody.recorded")
    assert [actor.split(" (")[0] for actor, _ in proposed_audit] == ["Ada Driver <ada@road.example>"]
    assert proposed_audit[0][1]["proposed_by"].startswith("Ada Driver <ada@road.example> (org:")
    actor, detail = recorded_audit[-1]
    assert (actor.split(" (")[0], detail["kind"]) == ("Bo Pilot <bo@air.example>", "handed_over")
    assert [signer.split(" (")[0] for signer in detail["signers"]] == [
        "Ada Driver <ada@road.example>",
        "Bo Pilot <bo@air.example>",
    ]


async def test_a_person_and_a_token_sign_the_two_sides_of_one_hand_over(world: World) -> None:
    bo = await signed_in_person(world, world.carrier_b, "Bo Pilot", "bo@air.example", "carrier")
    await record(world, world.a, "picked_up", 1)
    proposal = await hand_over(world, world.a, world.carrier_b, 2)

    accepted = await world.client.post(f"{world.custody}/handovers/{proposal['id']}/accept", headers=bo)

    assert accepted.status_code == 201, accepted.text
    assert [(s["by"], s.get("name")) for s in accepted.json()["signers"]] == [("token", None), ("user", "Bo Pilot")]
    detail = (await audit_of(world, "custody.recorded"))[-1][1]
    assert detail["signers"][0] == f"org:{world.carrier_a}/token:{proposal['proposed_by']['token_id']}"


async def test_a_person_of_another_organisation_cannot_accept_a_hand_over_meant_for_someone_else(
    world: World,
) -> None:
    shipper_person = await signed_in_person(world, world.shipper, "Sam Shipper", "sam@ship.example", "logistics")
    await record(world, world.a, "picked_up", 1)
    proposal = await hand_over(world, world.a, world.carrier_b, 2)

    refused = await world.client.post(f"{world.custody}/handovers/{proposal['id']}/accept", headers=shipper_person)

    assert_error(refused, 403, "forbidden", f"only organisation {world.carrier_b}")
    assert [h["id"] for h in (await custody(world))["pending_handovers"]] == [proposal["id"]]


async def test_only_the_custodian_proposes_a_hand_over_and_only_to_a_carrier_of_the_shipment(world: World) -> None:
    before_pickup = await world.client.post(
        f"{world.custody}/handovers",
        json={"to_organisation_id": world.carrier_b, "place": BERLIN, "occurred_at": at(1)},
        headers=world.a,
    )
    await record(world, world.a, "picked_up", 1)
    body = {"place": BERLIN, "occurred_at": at(2)}

    not_holder = await world.client.post(
        f"{world.custody}/handovers", json={**body, "to_organisation_id": world.carrier_a}, headers=world.b
    )
    to_receiver = await world.client.post(
        f"{world.custody}/handovers", json={**body, "to_organisation_id": world.receiver}, headers=world.a
    )
    by_operator = await world.client.post(
        f"{world.custody}/handovers", json={**body, "to_organisation_id": world.carrier_b}, headers=OPERATOR_HEADERS
    )

    assert_error(before_pickup, 409, "conflict", "handed_over is recorded while a shipment is in_transit")
    assert_error(not_holder, 409, "conflict", f"organisation {world.carrier_a} holds shipment {world.sid}")
    assert_error(to_receiver, 422, "invalid", "a hand-over goes to a carrier")
    assert_error(by_operator, 403, "forbidden", "signed by the two organisations themselves")
    assert (await custody(world))["pending_handovers"] == []


async def test_a_hand_over_that_no_longer_fits_the_chain_is_refused_at_acceptance(world: World) -> None:
    await record(world, world.a, "picked_up", 1)
    proposal = await hand_over(world, world.a, world.carrier_b, 2)
    await record(world, world.a, "arrived", 3)  # the chain moved on past the proposed time

    response = await world.client.post(f"{world.custody}/handovers/{proposal['id']}/accept", headers=world.b)

    assert_error(response, 409, "conflict", "is before the last custody event (arrived, event 2")
    assert [h["id"] for h in (await custody(world))["pending_handovers"]] == [proposal["id"]]


async def test_another_organisation_gets_404_from_every_custody_route_and_changes_nothing(world: World) -> None:
    await record(world, world.a, "picked_up", 1)
    proposal = await hand_over(world, world.a, world.carrier_b, 2)
    before, trail = await custody(world), Trail.of(world)
    handover = {"to_organisation_id": world.carrier_b, "place": BERLIN, "occurred_at": at(3)}

    responses = [
        await world.client.post(world.custody, json=event("arrived", 3), headers=world.outsider),
        await world.client.get(world.custody, headers=world.outsider),
        await world.client.post(f"{world.custody}/handovers", json=handover, headers=world.outsider),
        await world.client.post(f"{world.custody}/handovers/{proposal['id']}/accept", headers=world.outsider),
        await world.client.get(f"{world.custody}/verify", headers=world.outsider),
    ]

    for response in responses:
        assert_error(response, 404, "not_found", f"no shipment {world.sid}")
    assert await custody(world) == before
    assert Trail.of(world) == trail
    missing = await world.client.get("/v1/shipments/999999/custody/verify", headers=world.logistics)
    assert_error(missing, 404, "not_found")
    wrong_shipment_handover = await world.client.post(
        f"/v1/shipments/{world.sid}/custody/handovers/999999/accept", headers=world.b
    )
    assert_error(wrong_shipment_handover, 404, "not_found", "no hand-over 999999")


async def test_a_role_that_may_not_record_custody_gets_403_and_a_carrier_token_only_on_shipments_it_carries(
    world: World,
) -> None:
    trail = Trail.of(world)

    auditor = await world.client.post(world.custody, json=event("packed", 0), headers=world.auditor)
    foreign_carrier = await world.client.post(
        world.custody, json=event("received", 0), headers=world.pharmacy_as_carrier
    )

    assert_error(auditor, 403, "forbidden", "auditor role may not custody")
    assert_error(foreign_carrier, 403, "forbidden", "carries no leg of shipment")
    assert (await custody(world, world.auditor))["events"] == []
    assert Trail.of(world) == trail


async def test_an_event_out_of_order_is_refused_with_409_naming_the_rule(world: World) -> None:
    await record(world, world.a, "picked_up", 1)
    trail = Trail.of(world)

    cases = [
        (world.logistics, event("packed", 2), "packed is recorded while a shipment is planned"),
        (world.b, event("picked_up", 2), "picked_up is already recorded for shipment"),
        (world.b, event("delivered", 2), f"organisation {world.carrier_a} holds shipment {world.sid}"),
        (world.pharmacy, event("received", 2), "received is recorded while a shipment is delivered"),
        (world.a, event("arrived", 0.5), "is before the last custody event (picked_up, event 1"),
    ]
    for headers, body, words in cases:
        assert_error(await world.client.post(world.custody, json=body, headers=headers), 409, "conflict", words)

    assert [e["kind"] for e in (await custody(world))["events"]] == ["picked_up"]
    assert Trail.of(world) == trail
    assert await shipment_status(world) == "in_transit"


async def test_an_invalid_event_is_refused_with_422_saying_what_is_wrong(world: World) -> None:
    cases: list[tuple[dict[str, str], dict[str, Any], str]] = [
        (world.a, event("lost", 1), "kind: Invalid enum value 'lost'"),
        (
            world.a,
            {**event("picked_up", 1), "occurred_at": "2026-03-01T10:00:00"},
            "occurred_at: Expected `datetime` with a timezone",
        ),
        (world.a, {**event("picked_up", 1), "place": {"lat": 91, "lon": 0}}, "place.lat: Expected `float` <= 90.0"),
        (world.a, {**event("picked_up", 1), "signature": "trust me"}, "unknown field `signature`"),
        (
            world.a,
            event("picked_up", 1, party_id=world.carrier_b),
            "party_id: an organisation records custody as itself",
        ),
        (world.a, event("handed_over", 1), "a hand-over needs both sides"),
        (world.a, event("picked_up", 48), "ahead of the service's clock"),
        (world.logistics, event("picked_up", 1), "carries none of its legs"),
        (world.a, event("packed", 1), f"packed is recorded by the shipper, organisation {world.shipper}"),
    ]

    for headers, body, words in cases:
        assert_error(await world.client.post(world.custody, json=body, headers=headers), 422, "invalid", words)

    assert (await custody(world))["events"] == []
    assert await shipment_status(world) == "planned"


async def test_the_operator_records_for_the_party_the_chain_names_or_the_one_it_names_itself(world: World) -> None:
    picked = await record(world, OPERATOR_HEADERS, "picked_up", 1)
    arrived = await record(world, OPERATOR_HEADERS, "arrived", 2, party_id=world.carrier_a)

    assert (picked["party_id"], picked["signers"]) == (
        world.carrier_a,
        [{"by": "operator", "organisation_id": None, "token_id": None, "tracker_id": None}],
    )
    assert arrived["party_id"] == world.carrier_a


async def _tamper(store: Store, *statements: str) -> None:
    async with store.transaction() as tx:
        if store.engine == "sqlite":
            await tx._conn.execute("DROP TRIGGER custody_events_no_update")  # type: ignore[attr-defined]
        else:
            await tx._conn.execute("ALTER TABLE custody_events DISABLE TRIGGER USER")  # type: ignore[attr-defined]
        for statement in statements:
            await tx._conn.execute(statement)  # type: ignore[attr-defined]


async def test_verification_finds_an_event_changed_by_sql_and_nothing_more_is_appended_to_the_broken_chain(
    world: World,
) -> None:
    await record(world, world.logistics, "packed", 0)
    await record(world, world.a, "picked_up", 1)
    await record(world, world.a, "arrived", 2)
    statement = f"UPDATE custody_events SET party_id = {world.carrier_b} WHERE shipment_id = {world.sid} AND seq = 2"
    world.client.blocking_portal.call(_tamper, world.client.app.state.store, statement)

    found = await verdict(world)
    refused = await world.client.post(world.custody, json=event("delivered", 3), headers=world.a)

    assert (found["intact"], found["checked"], found["broken_at_seq"]) == (False, 1, 2)
    assert "event 2 was altered" in found["problem"]
    assert_error(refused, 409, "conflict", "broken at event 2", "nothing is appended to a broken chain")


# --- The automatic arrival --------------------------------------------------------------------------------------


def reading(seq: int, hours: float, lat: float, lon: float) -> dict[str, object]:
    return {"seq": seq, "device_time": at(hours), "temperature_c": 5.0, "latitude": lat, "longitude": lon}


async def tracked(world: World) -> str:
    """A tracker of the shipper on the shipment from the start, the shipment picked up by the first carrier."""
    registered = await world.client.post("/v1/trackers", json={"serial": SERIAL}, headers=world.logistics)
    assert registered.status_code == 201, registered.text
    assigned = await world.client.post(
        f"/v1/shipments/{world.sid}/trackers", json={"serial": SERIAL, "starts_at": at(0)}, headers=world.logistics
    )
    assert assigned.status_code == 201, assigned.text
    await record(world, world.a, "picked_up", 1)
    secret: str = registered.json()["secret"]
    return secret


async def sync(world: World, secret: str, *readings: dict[str, object]) -> None:
    response = await post_batch(world.client, secret, as_json({"readings": list(readings)}), serial=SERIAL)
    assert response.status_code == 200, response.text


async def test_a_batch_that_enters_the_destination_geofence_records_the_arrival_once(world: World) -> None:
    secret = await tracked(world)
    await sync(world, secret, reading(1, 2, 50.98, 11.03), reading(2, 3, 48.2, 11.6))  # on the road, 7 km out
    assert [e["kind"] for e in (await custody(world))["events"]] == ["picked_up"]
    trail = Trail.of(world, custody=True)

    await sync(world, secret, reading(4, 3.75, 48.1370, 11.5751), reading(3, 3.5, 48.1385, 11.5760))
    await sync(world, secret, reading(5, 4, 48.1370, 11.5750), reading(3, 3.5, 48.1385, 11.5760))

    events = (await custody(world))["events"]
    assert [e["kind"] for e in events] == ["picked_up", "arrived"]
    arrival = events[1]
    assert arrival["occurred_at"] == at(3.5).replace("+00:00", "Z"), "the earliest reading inside, by device time"
    assert (arrival["party_id"], arrival["place"]) == (
        world.carrier_a,
        {"lat": 48.1385, "lon": 11.576, "name": "Munich pharmacy"},
    )
    tracker_id = arrival["signers"][0]["tracker_id"]
    assert arrival["signers"] == [
        {"by": "geofence", "organisation_id": None, "token_id": None, "tracker_id": tracker_id}
    ]
    audit, notifications = Trail.of(world, custody=True)
    assert (audit - trail[0], notifications - trail[1]) == (1, 4)
    assert (await verdict(world))["intact"]
    assert await shipment_status(world) == "in_transit", "arrival is not delivery"
    manual = await world.client.post(world.custody, json=event("arrived", 5), headers=world.a)
    assert_error(manual, 409, "conflict", "arrived is already recorded")


async def test_no_arrival_is_recorded_for_a_shipment_not_in_transit_or_a_reading_before_the_last_event(
    world: World,
) -> None:
    registered = await world.client.post("/v1/trackers", json={"serial": SERIAL}, headers=world.logistics)
    secret = registered.json()["secret"]
    await world.client.post(
        f"/v1/shipments/{world.sid}/trackers", json={"serial": SERIAL, "starts_at": at(0)}, headers=world.logistics
    )

    await sync(world, secret, reading(1, 0.5, MUNICH["lat"], MUNICH["lon"]))  # planned: not in transit yet
    await record(world, world.a, "picked_up", 1)
    await sync(world, secret, reading(2, 0.75, MUNICH["lat"], MUNICH["lon"]))  # inside, but before the pick-up

    assert [e["kind"] for e in (await custody(world))["events"]] == ["picked_up"]

    await sync(world, secret, reading(3, 1.5, MUNICH["lat"], MUNICH["lon"]))
    assert [e["kind"] for e in (await custody(world))["events"]] == ["picked_up", "arrived"]
