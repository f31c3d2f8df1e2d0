"""The pharmacist's decision through the real app, on each storage engine: the worklist, the investigation, and
decisions signed with the password (21 CFR 11.200), showing name, time and meaning (11.50), bound to the
evaluation's snapshot (11.70), audited (11.10(e)), flagged when late data changes what was signed, and the second
signature an organisation may require."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import rfc8785
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.access import OPERATOR, Role
from coldchain.domain.audit import first_broken_entry
from coldchain.domain.readings import Reading
from coldchain.domain.users import LoginLimits
from coldchain.http.app import create_app
from coldchain.services import decisions
from coldchain.services.decisions import recheck_decisions
from coldchain.services.errors import Conflict
from coldchain.services.evaluation import judge_readings
from coldchain.services.users import create_user, session_principal
from coldchain.settings import load_settings
from coldchain.storage import Store
from tests.factories import OPERATOR_TOKEN, bearer, make_org, make_token
from tests.http.test_status_api import _serial, synced
from tests.http.test_sync_api import assert_error
from tests.postgres_server import until_waiting_on_a_lock
from tests.services.test_evaluation_ingest import TRIP, World, at, log, make_world

Client = AsyncTestClient[Litestar]
PASSWORD = "correct horse battery"


@dataclass
class Desk:
    client: Client
    world: World
    serial: str
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)

    def call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        return self.client.blocking_portal.call(lambda: function(self.client.app.state.store, *args, **kwargs))

    def token(self, organisation_id: int, role: Role) -> dict[str, str]:
        return bearer(self.call(make_token, organisation_id, role))

    @property
    def sid(self) -> int:
        return self.world.shipment.id


async def _user(store: Store, organisation_id: int, role: Role, name: str, email: str) -> None:
    await create_user(
        store,
        OPERATOR,
        organisation_id=organisation_id,
        role=role,
        name=name,
        email=email,
        password=PASSWORD,
        now=datetime.now(UTC),
    )


async def sign_in(desk: Desk, email: str) -> dict[str, str]:
    response = await desk.client.post("/v1/session", json={"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    cookie = response.cookies.get("coldchain_session")
    desk.client.cookies.clear()
    return {"Cookie": f"coldchain_session={cookie}", "X-CSRF-Token": response.json()["csrf_token"]}


@pytest.fixture
async def desk(database_url: str) -> AsyncIterator[Desk]:
    app = create_app(load_settings({}, database_url=database_url, admin_token=OPERATOR_TOKEN, login_max_failures=4))
    async with AsyncTestClient(app) as client:
        world: World = client.blocking_portal.call(make_world, app.state.store)
        serial: str = client.blocking_portal.call(_serial, app.state.store, world.tracker_id)
        desk = Desk(client=client, world=world, serial=serial)
        outsider = desk.call(make_org, kind="receiver").id
        people = [
            (world.receiver, "pharmacist", "Grace Hopper", "grace@pharmacy.example"),
            (world.receiver, "pharmacist", "Ada Lovelace", "ada@pharmacy.example"),
            (world.receiver, "logistics", "Linus Torvalds", "linus@pharmacy.example"),
            (world.receiver, "auditor", "Alan Turing", "alan@pharmacy.example"),
            (outsider, "pharmacist", "Eve Mallory", "eve@elsewhere.example"),
        ]
        for organisation_id, role, name, email in people:
            desk.call(_user, organisation_id, role, name, email)
            desk.sessions[email.split("@")[0]] = await sign_in(desk, email)
        yield desk


async def delivered(desk: Desk) -> None:
    logistics = desk.token(desk.world.shipper, "logistics")
    for status in ("in_transit", "delivered"):
        response = await desk.client.post(
            f"/v1/shipments/{desk.sid}/status", json={"status": status}, headers=logistics
        )
        assert response.status_code == 200, response.text


async def investigate(desk: Desk, who: str = "grace") -> dict[str, Any]:
    response = await desk.client.get(f"/v1/shipments/{desk.sid}/investigation", headers=desk.sessions[who])
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def decide(desk: Desk, who: str = "grace", **body: Any) -> Any:
    found = await investigate(desk, who)
    payload = {"outcome": "quarantine", "snapshot_sha256": found["integrity"]["snapshot_sha256"], "password": PASSWORD}
    payload.update(body)
    return await desk.client.post(f"/v1/shipments/{desk.sid}/decisions", json=payload, headers=desk.sessions[who])


async def audit_actions(desk: Desk) -> list[tuple[str, str]]:
    async def read(store: Store) -> list[tuple[str, str]]:
        async with store.transaction() as tx:
            return [(entry.action, entry.detail) for entry in await tx.audit_entries(limit=10_000)]

    result: list[tuple[str, str]] = desk.call(read)
    return result


async def test_a_delivered_shipment_with_excursions_waits_on_the_worklist_until_a_decision_is_signed(
    desk: Desk,
) -> None:
    await synced_trip(desk)
    assert (await desk.client.get("/v1/worklist", headers=desk.sessions["grace"])).json() == [], "still in transit"
    await delivered(desk)

    [item] = (await desk.client.get("/v1/worklist", headers=desk.sessions["grace"])).json()
    assert (item["shipment_id"], item["recommendation"]) == (desk.sid, "reject")
    assert item["reasons"][0] == "undecided" and "excursions" in item["reasons"]
    assert (await desk.client.get("/v1/worklist", headers=desk.sessions["eve"])).json() == [], "not eve's shipment"

    signed = await decide(desk, outcome="reject", email="grace@pharmacy.example", comment="destroy the lot")
    assert signed.status_code == 201, signed.text
    assert (await desk.client.get("/v1/worklist", headers=desk.sessions["grace"])).json() == []


async def synced_trip(desk: Desk) -> None:
    await synced(desk, log(TRIP))  # type: ignore[arg-type]


async def synced_later(desk: Desk, count: int, *, after: int = 0) -> None:
    """``count`` readings at 5 °C every 10 min after the trip (and ``after`` readings already sent after it)."""
    first = len(TRIP) + after
    readings = [Reading(seq=first + i + 1, device_time=at((first + i) * 10.0), temperature_c=5.0) for i in range(count)]
    await synced(desk, readings)  # type: ignore[arg-type]


async def test_a_signature_shows_printed_name_time_with_offset_and_meaning_and_binds_the_snapshot(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)
    found = await investigate(desk)
    snapshot_bytes = rfc8785.dumps(found["snapshot"])
    assert hashlib.sha256(snapshot_bytes).hexdigest() == found["integrity"]["snapshot_sha256"]
    assert found["snapshot"]["readings"]["sha256"] == found["integrity"]["readings_sha256"]

    response = await decide(desk, outcome="reject", email="grace@pharmacy.example", reason=None)

    assert response.status_code == 201, response.text
    decision = response.json()
    assert (decision["outcome"], decision["meaning"], decision["state"], decision["seq"]) == (
        "reject",
        "rejected",
        "in_effect",
        1,
    )
    assert decision["snapshot_sha256"] == found["integrity"]["snapshot_sha256"]
    [signature] = decision["signatures"]
    assert (signature["name"], signature["email"], signature["meaning"]) == (
        "Grace Hopper",
        "grace@pharmacy.example",
        "rejected",
    )
    assert "Grace Hopper" in signature["manifest"] and "UTC+00:00" in signature["manifest"]
    assert "rejected" in signature["manifest"]
    assert signature["record_sha256"] == decision["record_sha256"]
    again = await investigate(desk, "ada")
    assert again["decisions"][0]["signatures"][0]["manifest"] == signature["manifest"]
    actions = await audit_actions(desk)
    [(_, detail)] = [entry for entry in actions if entry[0] == "decision.signed"]
    assert json.loads(detail)["record_sha256"] == decision["record_sha256"]


async def test_signing_needs_the_password_and_at_the_first_signing_of_a_session_the_user_id(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)

    without_id = await decide(desk, outcome="reject")
    wrong = await decide(desk, outcome="reject", email="grace@pharmacy.example", password="not her password")
    other_id = await decide(desk, outcome="reject", email="ada@pharmacy.example")

    assert_error(without_id, 403, "forbidden", "email")
    assert_error(wrong, 403, "forbidden", "password is not right", "recorded")
    assert_error(other_id, 403, "forbidden", "not the signed-in user")
    assert (await desk.client.get(f"/v1/shipments/{desk.sid}/decisions", headers=desk.sessions["grace"])).json() == []
    refusals = [json.loads(detail) for action, detail in await audit_actions(desk) if action == "signature.refused"]
    assert [refusal["problem"] for refusal in refusals] == [
        "the first signature of a session needs your email (user id) and your password",
        "the password is not right",
        "the email is not the signed-in user's",
    ]
    first = await decide(desk, outcome="reject", email="grace@pharmacy.example")
    assert first.status_code == 201, first.text
    later = await decide(desk, outcome="quarantine", reason="the lot is retested instead")
    assert later.status_code == 201, later.text
    assert later.json()["seq"] == 2, "a later signing in the same session needs the password only"


async def test_repeated_wrong_passwords_lock_signing_out(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)
    for _ in range(4):
        assert (await decide(desk, email="grace@pharmacy.example", password="wrong guess")).status_code == 403

    locked = await decide(desk, outcome="reject", email="grace@pharmacy.example")

    assert_error(locked, 403, "forbidden", "too many failed attempts")


async def test_a_later_change_is_a_new_decision_with_a_reason_and_the_earlier_stays_visible(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)
    assert (await decide(desk, outcome="reject", email="grace@pharmacy.example")).status_code == 201

    no_reason = await decide(desk, outcome="quarantine")
    changed = await decide(desk, outcome="quarantine", reason="stability data from the manufacturer allow a retest")

    assert_error(no_reason, 422, "invalid", "reason")
    assert changed.status_code == 201, changed.text
    decisions = (await desk.client.get(f"/v1/shipments/{desk.sid}/decisions", headers=desk.sessions["ada"])).json()
    assert [(d["seq"], d["outcome"], d["state"]) for d in decisions] == [
        (1, "reject", "superseded"),
        (2, "quarantine", "in_effect"),
    ]
    assert decisions[1]["reason"] == "stability data from the manufacturer allow a retest"


async def test_releasing_against_a_stricter_recommendation_needs_a_reason(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)

    bare = await decide(desk, outcome="release", email="grace@pharmacy.example")

    assert_error(bare, 422, "invalid", "reason", "recommends reject")


async def test_a_signature_on_an_evaluation_that_changed_since_it_was_read_is_refused(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)
    found = await investigate(desk)
    await synced_later(desk, 3)

    response = await desk.client.post(
        f"/v1/shipments/{desk.sid}/decisions",
        json={
            "outcome": "reject",
            "snapshot_sha256": found["integrity"]["snapshot_sha256"],
            "password": PASSWORD,
            "email": "grace@pharmacy.example",
        },
        headers=desk.sessions["grace"],
    )

    assert_error(response, 409, "conflict", "changed since it was shown")


async def test_late_readings_through_the_sync_api_flag_the_signed_decision_and_return_it_to_the_worklist(
    desk: Desk,
) -> None:
    await synced_trip(desk)
    await delivered(desk)
    assert (await decide(desk, outcome="reject", email="grace@pharmacy.example")).status_code == 201
    assert (await desk.client.get("/v1/worklist", headers=desk.sessions["ada"])).json() == []

    await synced_later(desk, 3)

    [decision] = (await desk.client.get(f"/v1/shipments/{desk.sid}/decisions", headers=desk.sessions["ada"])).json()
    assert decision["state"] == "evaluation_changed"
    assert decision["evaluation_changed_at"] is not None
    current = await investigate(desk, "ada")
    assert decision["evaluation_changed_sha256"] == current["integrity"]["snapshot_sha256"]
    assert decision["snapshot_sha256"] != current["integrity"]["snapshot_sha256"]
    [item] = (await desk.client.get("/v1/worklist", headers=desk.sessions["ada"])).json()
    assert item["reasons"] == ["evaluation_changed"]
    assert item["latest_decision"]["state"] == "evaluation_changed"
    actions = [action for action, _ in await audit_actions(desk)]
    assert actions.count("decision.evaluation_changed") == 1
    await synced_later(desk, 2, after=3)
    assert [a for a, _ in await audit_actions(desk)].count("decision.evaluation_changed") == 1, "marked once"
    resigned = await decide(desk, "ada", outcome="reject", email="ada@pharmacy.example", reason="re-reviewed")
    assert resigned.status_code == 201 and resigned.json()["state"] == "in_effect"
    assert (await desk.client.get("/v1/worklist", headers=desk.sessions["ada"])).json() == []


async def test_a_release_after_an_excursion_takes_effect_with_a_second_pharmacists_approval_only(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)
    admin = desk.token(desk.world.receiver, "admin")
    policy = await desk.client.put(
        f"/v1/organisations/{desk.world.receiver}/release-policy", json={"release_needs_approval": True}, headers=admin
    )
    assert policy.status_code == 200, policy.text
    found = await investigate(desk)
    assert found["approval_required"] is True

    released = await decide(desk, outcome="release", email="grace@pharmacy.example", reason="the manufacturer's data")
    assert released.status_code == 201, released.text
    decision = released.json()
    assert (decision["state"], decision["requires_approval"]) == ("awaiting_approval", True)
    [item] = (await desk.client.get("/v1/worklist", headers=desk.sessions["ada"])).json()
    assert item["reasons"] == ["awaiting_approval"]
    path = f"/v1/shipments/{desk.sid}/decisions/{decision['id']}/approval"

    self_approved = await desk.client.post(path, json={"password": PASSWORD}, headers=desk.sessions["grace"])
    approved = await desk.client.post(
        path, json={"password": PASSWORD, "email": "ada@pharmacy.example"}, headers=desk.sessions["ada"]
    )
    twice = await desk.client.post(path, json={"password": PASSWORD}, headers=desk.sessions["ada"])

    assert_error(self_approved, 403, "forbidden", "another pharmacist")
    assert approved.status_code == 200, approved.text
    body = approved.json()
    assert body["state"] == "in_effect"
    assert [(s["role"], s["name"], s["meaning"]) for s in body["signatures"]] == [
        ("decision", "Grace Hopper", "approved for release"),
        ("approval", "Ada Lovelace", "QA approval of the release"),
    ]
    assert_error(twice, 403, "forbidden", "you signed this decision")
    assert (await desk.client.get("/v1/worklist", headers=desk.sessions["ada"])).json() == []


async def test_only_a_pharmacist_of_a_party_signs(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)
    found = await investigate(desk)
    body = {"outcome": "reject", "snapshot_sha256": found["integrity"]["snapshot_sha256"], "password": PASSWORD}
    path = f"/v1/shipments/{desk.sid}/decisions"

    logistics = await desk.client.post(
        path, json={**body, "email": "linus@pharmacy.example"}, headers=desk.sessions["linus"]
    )
    outsider = await desk.client.post(
        path, json={**body, "email": "eve@elsewhere.example"}, headers=desk.sessions["eve"]
    )
    token = await desk.client.post(path, json=body, headers=desk.token(desk.world.receiver, "pharmacist"))

    assert_error(logistics, 403, "forbidden", "pharmacist")
    assert_error(outsider, 404, "not_found")
    assert_error(token, 403, "forbidden")
    assert (await desk.client.get(f"/v1/shipments/{desk.sid}/decisions", headers=desk.sessions["grace"])).json() == []


async def test_a_shipment_in_transit_is_not_decided_yet(desk: Desk) -> None:
    await synced_trip(desk)

    response = await decide(desk, outcome="reject", email="grace@pharmacy.example")

    assert_error(response, 409, "conflict", "delivered")


async def test_the_audit_chain_verifies_after_a_day_of_decisions_and_decisions_cannot_be_rewritten(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)
    await decide(desk, email="grace@pharmacy.example", password="wrong one")
    for outcome, reason in [("reject", None), ("quarantine", "retest"), ("reject", "retest failed")]:
        extra = {"email": "grace@pharmacy.example"} if reason is None else {"reason": reason}
        assert (await decide(desk, outcome=outcome, **extra)).status_code == 201

    async def verify(store: Store) -> tuple[int | None, int]:
        async with store.transaction() as tx:
            entries = await tx.audit_entries(limit=10_000)
        return first_broken_entry(entries), len(entries)

    broken, count = desk.call(verify)
    assert broken is None and count > 5

    async def rewrite(store: Store) -> None:
        async with store.transaction() as tx:
            await tx._conn.execute("UPDATE decisions SET outcome = 'release'")  # type: ignore[attr-defined]

    with pytest.raises(Exception, match="never changed"):
        desk.call(rewrite)


async def test_a_trackers_calibration_is_recorded_audited_and_an_overdue_one_is_flagged(desk: Desk) -> None:
    await synced_trip(desk)
    owner = desk.token(desk.world.carrier, "logistics")
    path = f"/v1/trackers/{desk.serial}/calibration"

    overdue = await desk.client.put(path, json={"due_on": "2026-01-15", "certificate": "CAL-118"}, headers=owner)
    by_stranger = await desk.client.put(
        path, json={"due_on": "2030-01-01"}, headers=desk.token(desk.world.receiver, "logistics")
    )
    by_auditor = await desk.client.put(
        path, json={"due_on": "2030-01-01"}, headers=desk.token(desk.world.carrier, "auditor")
    )

    assert overdue.status_code == 200, overdue.text
    assert overdue.json() == {"tracker_id": desk.serial, "calibration_due_on": "2026-01-15"}
    assert_error(by_stranger, 404, "not_found")
    assert_error(by_auditor, 403, "forbidden")
    [tracker] = (await investigate(desk))["trackers"]
    assert (tracker["calibration_due_on"], tracker["calibration_overdue"]) == ("2026-01-15", True)
    renewed = await desk.client.put(path, json={"due_on": "2099-01-15"}, headers=owner)
    assert renewed.status_code == 200
    [tracker] = (await investigate(desk))["trackers"]
    assert tracker["calibration_overdue"] is False
    details = [json.loads(d) for action, d in await audit_actions(desk) if action == "tracker.calibrated"]
    assert [(d["before"], d["calibration_due_on"]) for d in details] == [
        (None, "2026-01-15"),
        ("2026-01-15", "2099-01-15"),
    ]
    assert details[0]["certificate"] == "CAL-118"


async def test_only_an_organisations_admin_sets_its_second_signature_rule_and_the_change_is_audited(desk: Desk) -> None:
    path = f"/v1/organisations/{desk.world.receiver}/release-policy"
    admin = desk.token(desk.world.receiver, "admin")

    by_pharmacist = await desk.client.put(path, json={"release_needs_approval": True}, headers=desk.sessions["grace"])
    by_outsider = await desk.client.put(
        path, json={"release_needs_approval": True}, headers=desk.token(desk.world.shipper, "admin")
    )
    by_admin = await desk.client.put(path, json={"release_needs_approval": True}, headers=admin)

    assert_error(by_pharmacist, 403, "forbidden")
    assert_error(by_outsider, 404, "not_found")
    assert by_admin.json() == {"organisation_id": desk.world.receiver, "release_needs_approval": True}
    assert (await desk.client.get(path, headers=desk.sessions["grace"])).json()["release_needs_approval"] is True
    [detail] = [json.loads(d) for action, d in await audit_actions(desk) if action == "organisation.release_policy"]
    assert detail == {"release_needs_approval": True, "before": False}


async def test_an_auditor_reads_the_shipments_audit_trail_in_the_portal_with_the_chains_verdict(desk: Desk) -> None:
    await synced_trip(desk)
    await delivered(desk)
    assert (await decide(desk, outcome="reject", email="grace@pharmacy.example", comment="destroy")).status_code == 201

    page = await desk.client.get(f"/portal/audit?shipment={desk.sid}", headers=desk.sessions["alan"])
    logistics = await desk.client.get("/portal/audit", headers=desk.sessions["linus"])
    bad = await desk.client.get("/portal/audit?since=yesterday", headers=desk.sessions["alan"])
    investigation = await desk.client.get(f"/portal/shipments/{desk.sid}/investigation", headers=desk.sessions["alan"])

    assert page.status_code == 200, page.text
    assert "Chain intact" in page.text and "decision.signed" in page.text and f"shipment:{desk.sid}" in page.text
    assert "signature.refused" not in page.text, "refusals are about the user, not the shipment"
    assert logistics.status_code == 403
    assert bad.status_code == 422 and "There is a problem" in bad.text and "since" in bad.text
    assert f"/v1/shipments/{desk.sid}/certificate.pdf" in investigation.text
    assert f"/portal/audit?shipment={desk.sid}" in investigation.text


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite runs one writer at a time
async def test_a_decision_signed_while_a_batch_is_in_flight_never_stands_on_what_the_batch_changed(
    desk: Desk, database_url: str
) -> None:
    await synced_trip(desk)
    await delivered(desk)
    seen = (await investigate(desk))["integrity"]["snapshot_sha256"]
    session_id = desk.sessions["grace"]["Cookie"].removeprefix("coldchain_session=")
    first = len(TRIP)
    late = [Reading(seq=first + i + 1, device_time=at((first + i) * 10.0), temperature_c=5.0) for i in range(3)]

    async def sign_during_the_batch(store: Store) -> Any:
        now = datetime.now(UTC)
        signed_in = await session_principal(store, session_id, idle=timedelta(hours=1), now=now)
        assert signed_in is not None
        async with store.transaction() as tx:  # the batch, as record_batch runs it, under its tracker's lock
            await tx.sync_state(desk.world.tracker_id)
            await tx.append_readings(desk.world.tracker_id, late, received_at=now)
            await judge_readings(tx, desk.world.tracker_id, late, now=now)
            earliest, latest = late[0].device_time, late[-1].device_time
            await recheck_decisions(tx, desk.world.tracker_id, earliest=earliest, latest=latest, now=now)
            signing = asyncio.create_task(
                decisions.decide(
                    store,
                    signed_in[0],
                    desk.sid,
                    outcome="reject",
                    snapshot_sha256=seen,
                    reason=None,
                    comment=None,
                    email="grace@pharmacy.example",
                    password=PASSWORD,
                    client="test",
                    limits=LoginLimits(per_account=4, per_client=4, window=timedelta(minutes=15)),
                    now=now,
                )
            )
            # The batch has re-checked its decisions; the signing runs into its lock (or, unlocked, ends first).
            await until_waiting_on_a_lock(database_url, signing, statement_like="%tracker_sync_state%")
        return (await asyncio.gather(signing, return_exceptions=True))[0]

    outcome = desk.call(sign_during_the_batch)

    current = (await investigate(desk, "ada"))["integrity"]["snapshot_sha256"]
    assert current != seen, "the batch changed the evaluation"
    listed = (await desk.client.get(f"/v1/shipments/{desk.sid}/decisions", headers=desk.sessions["ada"])).json()
    in_effect = [d for d in listed if d["state"] == "in_effect"]
    assert all(d["snapshot_sha256"] == current for d in in_effect), "no decision stands on an evaluation gone by"
    assert isinstance(outcome, Conflict) and "changed since it was shown" in str(outcome)
    assert listed == []
