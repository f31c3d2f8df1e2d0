"""The custody records on SQLite and PostgreSQL alike: events come back as sealed, the database refuses to change
them, and whatever is changed behind its back anyway (by SQL, with the guard removed) verification detects."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from coldchain.domain.audit import first_broken_entry
from coldchain.domain.custody import (
    ChainHead,
    CustodyEvent,
    CustodyKind,
    Location,
    Signer,
    seal,
    verify_chain,
)
from coldchain.domain.shipments import Shipment
from coldchain.storage import AlreadyExists, Engine, Store, open_store
from coldchain.storage.migrations import discover_migrations
from tests.factories import assign, make_org, make_shipment, make_tracker

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
BERLIN = Location(lat=52.52, lon=13.405, name="Berlin hub")


async def run_sql(store: Store, *statements: str) -> None:
    """Raw SQL on the store's own connection, as someone with database access could run it."""
    async with store.transaction() as tx:
        for statement in statements:
            await tx._conn.execute(statement)  # type: ignore[attr-defined]


async def remove_guard(store: Store) -> None:
    if store.engine == "sqlite":
        await run_sql(store, "DROP TRIGGER custody_events_no_update", "DROP TRIGGER custody_events_no_delete")
    else:
        await run_sql(store, "ALTER TABLE custody_events DISABLE TRIGGER USER")


async def a_shipment(store: Store) -> tuple[Shipment, list[int]]:
    shipper = await make_org(store, kind="shipper")
    carrier = await make_org(store, kind="carrier")
    receiver = await make_org(store, kind="receiver")
    shipment = await make_shipment(store, owner=shipper.id, carriers=[carrier.id], receiver=receiver.id)
    return shipment, [shipper.id, carrier.id, receiver.id]


KINDS: list[CustodyKind] = ["packed", "picked_up", "arrived", "delivered", "received"]


def chain_of(shipment_id: int, parties: list[int], count: int) -> list[CustodyEvent]:
    events: list[CustodyEvent] = []
    shipper, carrier, receiver = parties
    for n in range(count):
        kind = KINDS[n % len(KINDS)]
        party = {"packed": shipper, "picked_up": carrier, "received": receiver}.get(kind, carrier)
        events.append(
            seal(
                shipment_id=shipment_id,
                after=events[-1].head if events else None,
                kind=kind,
                party_id=party,
                counterparty_id=receiver if kind == "delivered" else None,
                place=Location(lat=52.52 - n / 10, lon=-0.0 if n == 0 else 13.405, name=None if n % 2 else "Dock"),
                occurred_at=T0 + timedelta(hours=n, microseconds=n),
                recorded_at=T0 + timedelta(hours=n, minutes=1),
                signers=[Signer(by="token", organisation_id=party, token_id=40 + n)]
                if n != 2
                else [Signer(by="geofence", tracker_id=3)],
                note="ok" if n == 1 else None,
            )
        )
    return events


async def append_all(store: Store, events: list[CustodyEvent]) -> None:
    async with store.transaction() as tx:
        for event in events:
            await tx.lock_custody(event.shipment_id)
            await tx.append_custody_event(event)


async def stored(store: Store, shipment_id: int) -> tuple[list[CustodyEvent], ChainHead | None]:
    async with store.transaction() as tx:
        return await tx.custody_events(shipment_id), await tx.custody_head(shipment_id)


async def test_events_come_back_exactly_as_sealed_and_the_head_follows_the_last(store: Store) -> None:
    shipment, parties = await a_shipment(store)
    events = chain_of(shipment.id, parties, 5)

    await append_all(store, events)
    back, head = await stored(store, shipment.id)

    assert back == events
    assert head == events[-1].head
    assert verify_chain(shipment.id, back, head).intact
    assert (await stored(store, shipment.id + 1000)) == ([], None)


async def test_a_taken_sequence_number_is_refused_and_changes_nothing(store: Store) -> None:
    shipment, parties = await a_shipment(store)
    events = chain_of(shipment.id, parties, 2)
    await append_all(store, events)
    rival = seal(
        shipment_id=shipment.id,
        after=events[0].head,
        kind="arrived",
        party_id=parties[1],
        counterparty_id=None,
        place=BERLIN,
        occurred_at=T0,
        recorded_at=T0,
        signers=[Signer(by="operator")],
    )

    with pytest.raises(AlreadyExists):
        await append_all(store, [rival])

    assert await stored(store, shipment.id) == (events, events[-1].head)


async def test_the_database_refuses_to_change_or_delete_a_custody_event(store: Store) -> None:
    shipment, parties = await a_shipment(store)
    await append_all(store, chain_of(shipment.id, parties, 2))

    with pytest.raises(Exception, match="append-only"):
        await run_sql(store, "UPDATE custody_events SET note = 'rewritten'")
    with pytest.raises(Exception, match="append-only"):
        await run_sql(store, "DELETE FROM custody_events")

    events, head = await stored(store, shipment.id)
    assert len(events) == 2 and verify_chain(shipment.id, events, head).intact


def _timeshift(engine: str) -> str:
    if engine == "sqlite":
        return "occurred_at = '2026-03-01T10:00:00.123459+00:00'"  # event 3 was at ...123458
    return "occurred_at = occurred_at + interval '1 microsecond'"


TAMPERING: list[tuple[str, str, int]] = [
    ("a note", "UPDATE custody_events SET note = 'all fine' WHERE seq = 3", 3),
    ("the party", "UPDATE custody_events SET party_id = counterparty_id WHERE seq = 4", 4),
    ("the place", "UPDATE custody_events SET place_lat = place_lat + 0.000001 WHERE seq = 1", 1),
    ("the kind", "UPDATE custody_events SET kind = 'delivered' WHERE seq = 3", 3),
    ("the signers", "UPDATE custody_events SET signers = '[]' WHERE seq = 2", 2),
    ("undecodable signers", "UPDATE custody_events SET signers = 'mallory' WHERE seq = 2", 2),
    ("the time", "UPDATE custody_events SET {time} WHERE seq = 3", 3),
    ("a link", "UPDATE custody_events SET prev_hash = hash WHERE seq = 2", 2),
    ("a hash", "UPDATE custody_events SET hash = prev_hash WHERE seq = 5", 5),
    ("a middle event removed", "DELETE FROM custody_events WHERE seq = 3", 3),
    ("the first event removed", "DELETE FROM custody_events WHERE seq = 1", 1),
    ("the last event removed", "DELETE FROM custody_events WHERE seq = 5", 5),
    ("the head removed", "DELETE FROM custody_heads", 1),
    ("the head cut back", "UPDATE custody_heads SET seq = 4", 5),
]


@pytest.mark.parametrize(("what", "statement", "broken_at"), TAMPERING, ids=[t[0] for t in TAMPERING])
async def test_tampering_by_sql_is_detected_where_it_happened(
    store: Store, what: str, statement: str, broken_at: int
) -> None:
    shipment, parties = await a_shipment(store)
    other, other_parties = await a_shipment(store)
    await append_all(store, chain_of(shipment.id, parties, 5))
    await append_all(store, chain_of(other.id, other_parties, 5))
    await remove_guard(store)

    await run_sql(
        store,
        statement.replace("{time}", _timeshift(store.engine)).replace(
            " WHERE ", f" WHERE shipment_id = {shipment.id} AND "
        )
        if " WHERE " in statement
        else f"{statement} WHERE shipment_id = {shipment.id}",
    )

    verdict = verify_chain(shipment.id, *(await stored(store, shipment.id)))
    assert (verdict.intact, verdict.broken_at_seq) == (False, broken_at), verdict
    assert verdict.problem
    assert verify_chain(other.id, *(await stored(store, other.id))).intact  # the other shipment's chain is untouched


async def test_two_events_that_trade_sequence_numbers_by_sql_are_detected(store: Store) -> None:
    shipment, parties = await a_shipment(store)
    await append_all(store, chain_of(shipment.id, parties, 5))
    await remove_guard(store)
    where = f"shipment_id = {shipment.id}"

    await run_sql(
        store,
        f"UPDATE custody_events SET seq = 1000 WHERE {where} AND seq = 2",
        f"UPDATE custody_events SET seq = 2 WHERE {where} AND seq = 4",
        f"UPDATE custody_events SET seq = 4 WHERE {where} AND seq = 1000",
    )

    verdict = verify_chain(shipment.id, *(await stored(store, shipment.id)))
    assert (verdict.intact, verdict.broken_at_seq) == (False, 2)


async def test_concurrent_appends_to_one_chain_serialise_on_its_lock(store: Store) -> None:
    shipment, parties = await a_shipment(store)

    async def append_next(n: int) -> None:
        async with store.transaction() as tx:
            await tx.lock_custody(shipment.id)
            head = await tx.custody_head(shipment.id)
            await asyncio.sleep(0.01)  # let the other transaction try meanwhile
            await tx.append_custody_event(
                seal(
                    shipment_id=shipment.id,
                    after=head,
                    kind="arrived",
                    party_id=parties[1],
                    counterparty_id=None,
                    place=BERLIN,
                    occurred_at=T0,
                    recorded_at=T0,
                    signers=[Signer(by="operator")],
                    note=str(n),
                )
            )

    await asyncio.gather(*(append_next(n) for n in range(4)))

    events, head = await stored(store, shipment.id)
    assert [e.seq for e in events] == [1, 2, 3, 4]
    assert verify_chain(shipment.id, events, head).intact


async def test_the_arrival_watch_lists_in_transit_shipments_of_the_tracker_without_an_arrival(store: Store) -> None:
    watched, parties = await a_shipment(store)
    planned, _ = await a_shipment(store)
    arrived, arrived_parties = await a_shipment(store)
    tracker = await make_tracker(store, parties[1])
    other_tracker = await make_tracker(store, parties[1])
    await assign(store, watched.id, tracker.id, T0, T0 + timedelta(days=2))
    await assign(store, planned.id, tracker.id, T0 + timedelta(days=2))
    await assign(store, arrived.id, other_tracker.id, T0)
    await append_all(store, chain_of(arrived.id, arrived_parties, 3))  # packed, picked_up, arrived
    async with store.transaction() as tx:
        for shipment in (watched, arrived):
            await tx.set_shipment_status(shipment.id, "in_transit", now=T0)

    async with store.transaction() as tx:
        watches = await tx.arrival_watch(tracker.id)
        others = await tx.arrival_watch(other_tracker.id)

    assert others == []
    assert [(w.shipment_id, w.starts_at, w.ends_at, w.geofence_m) for w in watches] == [
        (watched.id, T0, T0 + timedelta(days=2), watched.geofence_m)
    ]
    assert watches[0].destination == Location(
        lat=watched.destination.lat, lon=watched.destination.lon, name=watched.destination.name
    )


async def test_a_hand_over_is_pending_until_accepted_once(store: Store) -> None:
    shipment, (_, carrier, _) = await a_shipment(store)
    second = await make_org(store, kind="carrier")
    async with store.transaction() as tx:
        giver = await tx.create_api_token(organisation_id=carrier, role="carrier", name="g", token_sha256="a", now=T0)
        taker = await tx.create_api_token(organisation_id=second.id, role="carrier", name="t", token_sha256="b", now=T0)
        proposed = await tx.insert_handover(
            shipment_id=shipment.id,
            from_id=carrier,
            to_id=second.id,
            place=BERLIN,
            occurred_at=T0,
            note="dock 4",
            proposer=Signer(by="token", organisation_id=carrier, token_id=giver.id),
            proposed_at=T0 + timedelta(minutes=1),
        )

    async with store.transaction() as tx:
        assert await tx.pending_handovers(shipment.id) == [proposed]
        assert await tx.get_handover(shipment.id, proposed.id) == proposed
        assert await tx.get_handover(shipment.id + 1, proposed.id) is None
        acceptor = Signer(by="token", organisation_id=second.id, token_id=taker.id)
        first = await tx.accept_handover(
            proposed.id, acceptor=acceptor, accepted_at=T0 + timedelta(hours=1), event_seq=3
        )
        again = await tx.accept_handover(
            proposed.id, acceptor=acceptor, accepted_at=T0 + timedelta(hours=2), event_seq=4
        )

    async with store.transaction() as tx:
        accepted = await tx.get_handover(shipment.id, proposed.id)
        assert await tx.pending_handovers(shipment.id) == []
    assert (first, again) == (True, False)
    assert accepted is not None
    assert (accepted.acceptor, accepted.accepted_at, accepted.event_seq) == (acceptor, T0 + timedelta(hours=1), 3)
    assert (accepted.proposer, accepted.place, accepted.note) == (proposed.proposer, BERLIN, "dock 4")


async def test_a_hand_over_proposed_and_accepted_by_people_keeps_who_they_were(store: Store) -> None:
    shipment, (_, carrier, _) = await a_shipment(store)
    second = await make_org(store, kind="carrier")
    async with store.transaction() as tx:
        ada = await tx.create_user(
            organisation_id=carrier,
            role="carrier",
            name="Ada Driver",
            email="ada@road.example",
            password_hash="x",
            now=T0,
        )
        bo = await tx.create_user(
            organisation_id=second.id,
            role="logistics",
            name="Bo Pilot",
            email="bo@air.example",
            password_hash="y",
            now=T0,
        )
        proposer = Signer(by="user", organisation_id=carrier, user_id=ada.id, name=ada.name, email=ada.email)
        proposed = await tx.insert_handover(
            shipment_id=shipment.id,
            from_id=carrier,
            to_id=second.id,
            place=BERLIN,
            occurred_at=T0,
            note=None,
            proposer=proposer,
            proposed_at=T0 + timedelta(minutes=1),
        )
    acceptor = Signer(by="user", organisation_id=second.id, user_id=bo.id, name=bo.name, email=bo.email)

    async with store.transaction() as tx:
        assert await tx.pending_handovers(shipment.id) == [proposed]
        assert await tx.accept_handover(
            proposed.id, acceptor=acceptor, accepted_at=T0 + timedelta(hours=1), event_seq=2
        )
    async with store.transaction() as tx:
        accepted = await tx.get_handover(shipment.id, proposed.id)

    assert proposed.proposer == proposer
    assert accepted is not None
    assert (accepted.proposer, accepted.acceptor, accepted.event_seq) == (proposer, acceptor, 2)


async def test_a_hand_over_side_is_a_token_or_a_person_of_that_side_and_never_the_operator(store: Store) -> None:
    shipment, (_, carrier, _) = await a_shipment(store)
    second = await make_org(store, kind="carrier")
    async with store.transaction() as tx:
        giver = await tx.create_api_token(organisation_id=carrier, role="carrier", name="g", token_sha256="a", now=T0)
        proposed = await tx.insert_handover(
            shipment_id=shipment.id,
            from_id=carrier,
            to_id=second.id,
            place=BERLIN,
            occurred_at=T0,
            note=None,
            proposer=Signer(by="token", organisation_id=carrier, token_id=giver.id),
            proposed_at=T0,
        )
    for proposer in (Signer(by="operator"), Signer(by="token", organisation_id=second.id, token_id=giver.id)):
        with pytest.raises(ValueError, match="proposed by a token or a user of the giving organisation"):
            async with store.transaction() as tx:
                await tx.insert_handover(
                    shipment_id=shipment.id,
                    from_id=carrier,
                    to_id=second.id,
                    place=BERLIN,
                    occurred_at=T0,
                    note=None,
                    proposer=proposer,
                    proposed_at=T0,
                )
    with pytest.raises(ValueError, match="accepted by a token or a user"):
        async with store.transaction() as tx:
            await tx.accept_handover(proposed.id, acceptor=Signer(by="operator"), accepted_at=T0, event_seq=2)

    async with store.transaction() as tx:
        assert await tx.pending_handovers(shipment.id) == [proposed]


async def test_hand_overs_stored_before_people_could_sign_them_come_through_the_migration_unchanged(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine: Engine = "sqlite" if empty_database_url.startswith("sqlite") else "postgresql"
    before_people = [migration for migration in discover_migrations(engine) if migration.version < 15]
    module = "sqlite" if engine == "sqlite" else "postgres"
    monkeypatch.setattr(f"coldchain.storage.{module}.discover_migrations", lambda _engine: before_people)
    old = await open_store(empty_database_url, pool_size=2)
    try:
        shipment, (_, carrier, _) = await a_shipment(old)
        second = await make_org(old, kind="carrier")
        async with old.transaction() as tx:
            giver = await tx.create_api_token(
                organisation_id=carrier, role="carrier", name="g", token_sha256="a", now=T0
            )
            taker = await tx.create_api_token(
                organisation_id=second.id, role="carrier", name="t", token_sha256="b", now=T0
            )
        columns = (
            "shipment_id, from_id, to_id, place_name, place_lat, place_lon, occurred_at, note, proposer_token_id,"
            " proposed_at, acceptor_token_id, accepted_at, event_seq"
        )
        at = f"'{T0.isoformat(timespec='microseconds')}'"
        common = f"{shipment.id}, {carrier}, {second.id}, 'Berlin hub', 52.52, 13.405, {at}, 'dock 4', {giver.id}, {at}"
        await run_sql(
            old,
            f"INSERT INTO custody_handovers ({columns}) VALUES ({common}, {taker.id}, {at}, 2)",
            f"INSERT INTO custody_handovers ({columns}) VALUES ({common}, NULL, NULL, NULL)",
        )
    finally:
        await old.close()
    monkeypatch.undo()

    migrated = await open_store(empty_database_url, pool_size=2, migrate=False)
    try:
        assert [label for label in await migrated.migrate() if label.startswith("0015")] == ["0015_handover_signers"]
        async with migrated.transaction() as tx:
            pending = await tx.pending_handovers(shipment.id)
            accepted = await tx.get_handover(shipment.id, pending[0].id - 1)
    finally:
        await migrated.close()

    by_giver = Signer(by="token", organisation_id=carrier, token_id=giver.id)
    assert [(h.proposer, h.acceptor, h.place, h.note) for h in pending] == [(by_giver, None, BERLIN, "dock 4")]
    assert accepted is not None
    assert (accepted.proposer, accepted.acceptor, accepted.accepted_at, accepted.event_seq) == (
        by_giver,
        Signer(by="token", organisation_id=second.id, token_id=taker.id),
        T0,
        2,
    )


async def test_an_ingest_that_audited_first_and_a_request_that_locked_the_chain_first_do_not_deadlock(
    store: Store,
) -> None:
    """Ingest may audit (an alarm withdrawn) before it records an arrival; a custody request takes the chain's
    lock, then audits. Neither waits for the other in the opposite order: audit entries are chained at commit,
    and the custody lock takes the audit chain's first. The entries follow the commits (on PostgreSQL the
    request, which locked first, commits first; SQLite runs the transactions one after the other)."""
    shipment, _ = await a_shipment(store)
    audited = asyncio.Event()

    async def ingest() -> None:
        async with store.transaction() as tx:
            await tx.append_audit(actor="tracker:1", action="alarm.raised", subject="alarm:1", detail="{}", now=T0)
            audited.set()
            await asyncio.sleep(0.2)  # the request takes its locks meanwhile
            await tx.lock_custody(shipment.id)
        committed.append("alarm.raised")

    async def request() -> None:
        await audited.wait()
        async with store.transaction() as tx:
            await tx.lock_custody(shipment.id)
            await tx.append_audit(actor="org:1", action="custody.recorded", subject="shipment:1", detail="{}", now=T0)
        committed.append("custody.recorded")

    committed: list[str] = []
    await asyncio.wait_for(asyncio.gather(ingest(), request()), timeout=20)

    async with store.transaction() as tx:
        entries = await tx.audit_entries()
    assert [entry.action for entry in entries] == committed
    assert first_broken_entry(entries) is None
