"""The audit trail for auditors through the real app, on each engine: pages filtered in SQL, an organisation's
part of the trail and nothing of others', exports that recompute the chain, and a row altered in the database
found by verification and by the scheduled job, which notifies once."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta

import asyncpg

from coldchain.domain.audit import GENESIS_HASH, entry_hash
from coldchain.services.audit import check_chains
from coldchain.storage import open_store
from tests.factories import OPERATOR_HEADERS, bearer
from tests.http.test_shipments_api import World, create
from tests.http.test_sync_api import assert_error
from tests.http.test_tenancy_api import new_token


async def auditor(world: World, organisation_id: int) -> dict[str, str]:
    return bearer(await new_token(world.client, organisation_id, "auditor"))


async def entries(world: World, headers: dict[str, str], query: str = "") -> list[dict[str, object]]:
    response = await world.client.get(f"/v1/audit{query}", headers=headers)
    assert response.status_code == 200, response.text
    found: list[dict[str, object]] = response.json()["entries"]
    return found


async def two_shipments(world: World) -> tuple[int, int]:
    first = (await create(world))["id"]
    second = (await create(world, reference="SHP-2"))["id"]
    status = await world.client.post(
        f"/v1/shipments/{first}/status", json={"status": "in_transit"}, headers=world.logistics
    )
    assert status.is_success, status.text
    return first, second


async def test_an_auditor_pages_the_organisations_entries_filtered_by_shipment_actor_and_time(world: World) -> None:
    first, second = await two_shipments(world)
    shipper_auditor = await auditor(world, world.shipper)

    about_first = await entries(world, shipper_auditor, f"?shipment={first}")
    assert [e["subject"] for e in about_first] == [f"shipment:{first}"] * 2
    assert about_first[0]["action"] == "shipment.created"
    assert {e["subject"] for e in await entries(world, shipper_auditor, f"?shipment={second}")} == {
        f"shipment:{second}"
    }

    everything = await entries(world, shipper_auditor)
    subjects = {e["subject"] for e in everything}
    assert {f"shipment:{first}", f"shipment:{second}", f"organisation:{world.shipper}"} <= subjects
    assert f"organisation:{world.outsider}" not in subjects

    page = (await world.client.get(f"/v1/audit?shipment={first}&limit=1", headers=shipper_auditor)).json()
    assert [e["id"] for e in page["entries"]] == [about_first[0]["id"]]
    rest = await entries(world, shipper_auditor, f"?shipment={first}&after={page['next']}")
    assert [e["id"] for e in rest] == [about_first[1]["id"]]

    actor = str(about_first[0]["actor"])
    assert actor.startswith(f"org:{world.shipper}/token:")
    assert {e["actor"] for e in await entries(world, shipper_auditor, f"?actor=org:{world.shipper}/token:")} == {actor}
    assert await entries(world, shipper_auditor, "?actor=nobody-at-all") == []

    at = datetime.fromisoformat(str(about_first[1]["at"]))
    later = (at + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    since = await entries(world, shipper_auditor, f"?shipment={first}&since={at.isoformat().replace('+00:00', 'Z')}")
    assert about_first[1] in since
    assert await entries(world, shipper_auditor, f"?shipment={first}&since={later}") == []
    before = await entries(world, shipper_auditor, f"?shipment={first}&until={later}")
    assert before == about_first

    assert_error(await world.client.get("/v1/audit", headers=world.logistics), 403, "forbidden")
    assert (await world.client.get("/v1/audit", headers=OPERATOR_HEADERS)).status_code == 200
    assert_error(await world.client.get("/v1/audit?limit=0", headers=shipper_auditor), 422, "invalid")
    assert_error(await world.client.get("/v1/audit?actor=a%00b", headers=shipper_auditor), 422, "invalid")


async def test_an_auditor_of_another_organisation_sees_none_of_the_shipments_entries(world: World) -> None:
    first, _ = await two_shipments(world)
    outsider_auditor = await auditor(world, world.outsider)

    assert_error(await world.client.get(f"/v1/audit?shipment={first}", headers=outsider_auditor), 404, "not_found")
    assert_error(
        await world.client.get(f"/v1/audit/export?shipment={first}", headers=outsider_auditor), 404, "not_found"
    )
    seen = await entries(world, outsider_auditor, "?limit=1000")
    assert seen, "its own organisation's entries"
    assert all(not str(e["subject"]).startswith("shipment:") for e in seen)
    assert {e["subject"] for e in seen} <= {f"organisation:{world.outsider}"} | {f"token:{n}" for n in range(1, 100)}
    exported = (await world.client.get("/v1/audit/export", headers=outsider_auditor)).text
    assert f"shipment:{first}" not in exported
    # A carrier of the shipment takes part in it, so its auditor reads the shipment's entries.
    carrier_auditor = await auditor(world, world.carrier)
    assert len(await entries(world, carrier_auditor, f"?shipment={first}")) == 2


async def test_the_exports_carry_the_entries_and_the_json_lines_recompute_the_chain(world: World) -> None:
    await two_shipments(world)

    jsonl = await world.client.get("/v1/audit/export?format=jsonl", headers=OPERATOR_HEADERS)
    table = await world.client.get("/v1/audit/export?format=csv", headers=OPERATOR_HEADERS)

    assert jsonl.status_code == 200 and table.status_code == 200
    assert table.headers["content-type"].startswith("text/csv")
    lines = [json.loads(line) for line in jsonl.text.splitlines()]
    prev_hash = GENESIS_HASH
    for line in lines:
        fields = {k: v for k, v in line.items() if k != "hash"}
        assert fields["prev_hash"] == prev_hash
        assert entry_hash(**{**fields, "at": datetime.fromisoformat(fields["at"])}) == line["hash"]
        prev_hash = line["hash"]
    rows = list(csv.DictReader(io.StringIO(table.text, newline="")))
    assert [int(row["id"]) for row in rows] == [line["id"] for line in lines]
    assert [row["hash"] for row in rows] == [line["hash"] for line in lines]
    whole = await entries(world, OPERATOR_HEADERS, "?limit=1000")
    assert [e["id"] for e in whole] == [line["id"] for line in lines]


async def _alter_row(database_url: str, table: str, change: str, where: str) -> None:
    """Change a row of an append-only table behind the service's back: its update trigger is lifted for the
    change and put back."""
    trigger = f"{table}_no_update"
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            body = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?", (trigger,))
            (recreate,) = body.fetchone()
            conn.executescript(f"DROP TRIGGER {trigger}; UPDATE {table} SET {change} WHERE {where}; {recreate};")
        finally:
            conn.close()
        return
    pg = await asyncpg.connect(database_url)
    try:
        await pg.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        await pg.execute(f"UPDATE {table} SET {change} WHERE {where}")
        await pg.execute(f"ALTER TABLE {table} ENABLE TRIGGER {trigger}")
    finally:
        await pg.close()


async def test_a_row_altered_in_the_database_is_found_by_verify_and_by_the_job_which_notifies_once(
    world: World, database_url: str
) -> None:
    first, _ = await two_shipments(world)
    shipper_auditor = await auditor(world, world.shipper)
    intact = (await world.client.get("/v1/audit/verify", headers=shipper_auditor)).json()
    assert intact["intact"] is True and intact["first_broken_id"] is None
    assert intact["checked"] == intact["head_id"] > 3
    store = await open_store(database_url, pool_size=1)
    try:
        quiet = await check_chains(store, now=datetime.now(UTC))
        assert (quiet.broken, quiet.notified) == ([], [])
        assert quiet.chains == 1 + 2

        target = int((await entries(world, shipper_auditor, f"?shipment={first}"))[0]["id"])  # type: ignore[call-overload]
        await _alter_row(database_url, "audit_log", "detail = '{\"tampered\":true}'", f"id = {target}")

        verdict = (await world.client.get("/v1/audit/verify", headers=shipper_auditor)).json()
        assert verdict == {**intact, "intact": False, "first_broken_id": target}
        found = await check_chains(store, now=datetime.now(UTC))
        again = await check_chains(store, now=datetime.now(UTC))
        async with store.transaction() as tx:
            check = await tx.chain_check("audit")
            kinds = [n.kind for org in (world.shipper, world.outsider) for n in await tx.notifications(org)]
    finally:
        await store.close()

    assert found.broken == ["audit"]
    organisations = len((await world.client.get("/v1/organisations", headers=OPERATOR_HEADERS)).json())
    assert len(found.notified) == organisations, "every organisation is told"
    assert (again.broken, again.notified) == (["audit"], []), "once per break, not every run"
    assert check is not None and (check.intact, check.broken_at, check.reported_break) == (False, target, target)
    assert kinds == ["audit.broken", "audit.broken"]


async def test_a_custody_event_altered_in_the_database_is_told_to_the_shipments_parties_once(
    world: World, database_url: str
) -> None:
    first, second = (await create(world))["id"], (await create(world, reference="SHP-2"))["id"]
    packed = {"kind": "packed", "place": {"lat": 52.52, "lon": 13.405}, "occurred_at": datetime.now(UTC).isoformat()}
    for sid in (first, second):
        recorded = await world.client.post(f"/v1/shipments/{sid}/custody", json=packed, headers=world.logistics)
        assert recorded.status_code == 201, recorded.text
    await _alter_row(database_url, "custody_events", "note = 'moved'", f"shipment_id = {first} AND seq = 1")

    store = await open_store(database_url, pool_size=1)
    try:
        found = await check_chains(store, now=datetime.now(UTC))
        again = await check_chains(store, now=datetime.now(UTC))
        async with store.transaction() as tx:
            told = {
                org: [n.kind for n in await tx.notifications(org)]
                for org in (world.shipper, world.carrier, world.receiver, world.outsider)
            }
            check = await tx.chain_check(f"custody:{first}")
    finally:
        await store.close()

    assert found.broken == [f"custody:{first}"]
    assert again.notified == []
    assert check is not None and (check.intact, check.broken_at) == (False, 1)
    assert [kinds.count("custody.broken") for kinds in told.values()] == [1, 1, 1, 0]
    verified = (await world.client.get(f"/v1/shipments/{first}/custody/verify", headers=world.logistics)).json()
    assert verified["intact"] is False
