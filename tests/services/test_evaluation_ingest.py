"""Evaluation during ingest, on each engine: readings synced through ``record_batch`` are judged against the
shipment they belong to, incrementally, and what is found is stored once per condition."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from coldchain.domain.access import OPERATOR
from coldchain.domain.custody import Location
from coldchain.domain.evaluation import decode_state, evaluate
from coldchain.domain.excursions import Excursion
from coldchain.domain.findings import StoredAlarm, StoredExcursion
from coldchain.domain.profiles import AlarmRule, MktSettings, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.rules import Alarm
from coldchain.domain.shipments import Leg, Place, Shipment
from coldchain.services import custody
from coldchain.services.errors import Busy
from coldchain.services.evaluation import ShipmentJudgement, judgement_in, shipment_judgement
from coldchain.services.sync import SyncPolicy, record_batch
from coldchain.storage import Store, open_store
from coldchain.storage._sql import SqlTransaction
from tests.factories import assign, make_org, make_tracker

T0 = datetime(2026, 2, 1, 6, 0, tzinfo=UTC)
LIVE = SyncPolicy(max_future=timedelta(days=3650))

# 2-8 °C with a rule of each kind: an instant reject, a consecutive alarm, a lifetime stability budget.
PROFILE = Profile(
    id="ingest-test",
    name="ingest test profile",
    label_range_c=(2.0, 8.0),
    max_gap_min=30.0,
    mkt=MktSettings(window="24h", limit_c=8.0),
    rules=(
        AlarmRule(name="above 25", direction="above", threshold=25.0, inclusive=False, mode="instant",
                  action="reject"),
        AlarmRule(name="heat", direction="above", threshold=8.0, inclusive=True, mode="consecutive",
                  delay_min=60, action="quarantine"),
        AlarmRule(name="budget", direction="above", threshold=8.0, inclusive=False, mode="cumulative",
                  delay_min=120, scope="lifetime", action="reject"),
    ),
)  # fmt: skip


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def log(temperatures: Sequence[float | None], *, step_min: float = 10.0, first_seq: int = 1) -> list[Reading]:
    """Readings every ``step_min`` from T0, seq ``first_seq``, ``first_seq + 1``, ..."""
    return [
        Reading(seq=first_seq + index, device_time=at(index * step_min), temperature_c=temperature)
        for index, temperature in enumerate(temperatures)
    ]


class World(msgspec.Struct, kw_only=True):
    """A shipper, a carrier and a receiver, one shipment of a lot, one tracker assigned from T0."""

    shipper: int
    carrier: int
    receiver: int
    shipment: Shipment
    tracker_id: int
    assignment_id: int
    product_id: int
    lot_id: int
    profile: Profile


async def stored_profile(store: Store, profile: Profile = PROFILE) -> Profile:
    async with store.transaction() as tx:
        saved, _ = await tx.save_profile_version(profile, now=T0)
    return saved


async def shipment_of(
    store: Store,
    *,
    owner: int,
    carrier: int,
    receiver: int | None,
    profile: Profile,
    product_id: int | None = None,
    lot_id: int | None = None,
) -> Shipment:
    """A shipment of ``profile``; of a new product and lot unless given."""
    async with store.transaction() as tx:
        count = len(await tx.shipment_ids(party=None))
        if product_id is None:
            product = await tx.create_product(
                organisation_id=owner, name=f"Product {count + 1}", gtin=None, profile_id=profile.id, now=T0
            )
            product_id = product.id
            lot_id = (await tx.create_lot(product_id=product_id, lot_number="L-1", expires_on=None, now=T0)).id
        return await tx.create_shipment(
            organisation_id=owner,
            reference=f"S-{count + 1}",
            product_id=product_id,
            lot_id=lot_id,
            quantity=1,
            profile=profile,
            origin=Place(name="Basel", lat=47.56, lon=7.59),
            destination=Place(name="Lyon", lat=45.76, lon=4.84),
            waypoints=[],
            geofence_m=500.0,
            legs=[Leg(leg_no=1, carrier_id=carrier, mode="road")],
            receiver_id=receiver,
            promised_at=None,
            priority="standard",
            now=T0,
        )


async def make_world(store: Store, profile: Profile = PROFILE) -> World:
    saved = await stored_profile(store, profile)
    shipper = await make_org(store, kind="shipper")
    carrier = await make_org(store, kind="carrier")
    receiver = await make_org(store, kind="receiver")
    shipment = await shipment_of(store, owner=shipper.id, carrier=carrier.id, receiver=receiver.id, profile=saved)
    tracker = await make_tracker(store, carrier.id)
    assignment = await assign(store, shipment.id, tracker.id, T0 - timedelta(hours=1))
    assert shipment.lot_id is not None
    return World(
        shipper=shipper.id,
        carrier=carrier.id,
        receiver=receiver.id,
        shipment=shipment,
        tracker_id=tracker.id,
        assignment_id=assignment.id,
        product_id=shipment.product_id,
        lot_id=shipment.lot_id,
        profile=saved,
    )


async def sync(
    store: Store,
    world: World,
    readings: Sequence[Reading],
    *,
    now: datetime,
    batch: int = 1000,
    policy: SyncPolicy = LIVE,
) -> None:
    for start in range(0, len(readings), batch):
        await record_batch(store, world.tracker_id, readings[start : start + batch], now=now, policy=policy)


async def excursions_of(store: Store, shipment_id: int, *, withdrawn: bool = False) -> list[StoredExcursion]:
    async with store.transaction() as tx:
        return await tx.excursions_of_shipment(shipment_id, withdrawn=withdrawn)


async def alarms_of(store: Store, shipment_id: int, *, withdrawn: bool = False) -> list[StoredAlarm]:
    async with store.transaction() as tx:
        return await tx.alarms_of_shipment(shipment_id, withdrawn=withdrawn)


def found(stored: Sequence[StoredExcursion]) -> list[Excursion]:
    return sorted((s.excursion for s in stored), key=lambda e: (e.start, e.start_seq, e.rule))


def raised(stored: Sequence[StoredAlarm]) -> list[Alarm]:
    return raised_in_order(s.alarm for s in stored)


def raised_in_order(alarms: Iterable[Alarm]) -> list[Alarm]:
    return sorted(alarms, key=lambda a: (a.began_at, a.began_seq, a.rule))


@contextmanager
def counting_replays(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """How many readings each replay query fetched (the only query that reads readings back)."""
    fetched: list[int] = []
    original = SqlTransaction.readings_after

    async def readings_after(self: SqlTransaction, *args: Any, **kwargs: Any) -> list[Reading]:
        result = await original(self, *args, **kwargs)
        fetched.append(len(result))
        return result

    monkeypatch.setattr(SqlTransaction, "readings_after", readings_after)
    yield fetched


# A 2 h excursion above 8 °C from minute 60 (heat alarm met at minute 120, budget spent at minute 180), back
# in range at minute 180; one reading at 26 °C inside it.
TRIP = [5.0] * 6 + [9.0] * 6 + [26.0] + [9.0] * 5 + [5.0] * 12


async def test_a_trip_synced_in_batches_stores_the_excursions_and_alarms_of_one_pass(store: Store) -> None:
    world = await make_world(store)
    readings = log(TRIP)

    await sync(store, world, readings, now=at(300), batch=7)

    expected = evaluate(world.profile, readings)
    assert found(await excursions_of(store, world.shipment.id)) == expected.excursions
    assert raised(await alarms_of(store, world.shipment.id)) == sorted(
        expected.alarms, key=lambda a: (a.began_at, a.began_seq, a.rule)
    )
    assert {a.rule for a in expected.alarms} == {"above 25", "heat", "budget"}
    judgement = await shipment_judgement(store, OPERATOR, world.shipment.id)
    assert judgement.evaluation.mkt == expected.mkt
    assert judgement.evaluation.budgets == expected.budgets
    assert judgement.disposition.recommendation == "reject"


async def test_batches_in_time_order_never_read_stored_readings_back(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(store)
    readings = log(TRIP * 4)
    await sync(store, world, readings[:5], now=at(2000))  # a stream's first batch reads its range once
    with counting_replays(monkeypatch) as fetched:
        await sync(store, world, readings[5:], now=at(2000), batch=5)

    assert fetched == []  # each later batch advanced the stored state by its own readings only
    async with store.transaction() as tx:
        stream = await tx.evaluation_stream(world.assignment_id)
    assert stream is not None and stream.readings == len(readings)


async def test_a_late_reading_replays_only_from_the_last_checkpoint_before_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(store)
    readings = log([5.0] * 144)  # 24 h at 10 min
    missing = readings[130]
    await sync(store, world, [r for r in readings if r is not missing], now=at(1500), batch=20)

    with counting_replays(monkeypatch) as fetched:
        await sync(store, world, [missing], now=at(1500))

    (replayed,) = fetched
    assert replayed < 30  # from the last checkpoint (hourly) before the late reading onwards, not the whole day
    judgement = await shipment_judgement(store, OPERATOR, world.shipment.id)
    assert judgement.evaluation == msgspec.structs.replace(
        evaluate(world.profile, readings), budgets=judgement.evaluation.budgets
    )


async def test_a_late_reading_back_in_range_withdraws_the_alarm_it_disproves_and_keeps_it_marked(
    store: Store,
) -> None:
    world = await make_world(store)
    readings = log([5.0] * 3 + [9.0] * 9 + [5.0] * 3)  # 9 °C from minute 30 to 120: heat alarm at minute 90
    interruption = Reading(seq=100, device_time=at(65), temperature_c=5.0)
    await sync(store, world, readings, now=at(200))
    (first,) = [a for a in await alarms_of(store, world.shipment.id) if a.alarm.rule == "heat"]

    await sync(store, world, [interruption], now=at(210))

    standing = await alarms_of(store, world.shipment.id)
    assert [a.alarm.rule for a in standing] == []  # 35 + 50 min: never 60 min without interruption
    (withdrawn,) = [a for a in await alarms_of(store, world.shipment.id, withdrawn=True) if a.alarm.rule == "heat"]
    assert (withdrawn.id, withdrawn.withdrawn_at, withdrawn.detected_at) == (first.id, at(210), at(200))
    expected = evaluate(world.profile, [*readings, interruption])
    # The excursions that began at minute 30 are the same ones, now ending at minute 65: updated, not withdrawn.
    assert found(await excursions_of(store, world.shipment.id, withdrawn=True)) == expected.excursions


async def test_the_same_condition_is_raised_once_however_often_and_in_whatever_order_its_readings_come(
    store: Store,
) -> None:
    world = await make_world(store)
    readings = log(TRIP)
    backwards = [readings[start : start + 3] for start in range(0, len(readings), 3)][::-1]
    for batch in backwards:
        await sync(store, world, batch, now=at(300))
    await sync(store, world, readings, now=at(400))  # replayed whole: all duplicates

    standing = await alarms_of(store, world.shipment.id)
    assert sorted(a.alarm.rule for a in standing) == ["above 25", "budget", "heat"]
    assert raised(standing) == sorted(evaluate(world.profile, readings).alarms, key=lambda a: (a.began_at, a.rule))
    every = await alarms_of(store, world.shipment.id, withdrawn=True)  # with those partial data suggested
    async with store.transaction() as tx:
        told = [n for n in await tx.notifications(world.shipper) if n.kind == "alarm.raised"]
    assert sorted(n.payload["alarm_id"] for n in told) == sorted(a.id for a in every)
    assert len({a.alarm.key for a in every}) == len(every)


async def test_an_alarm_detected_from_buffered_data_is_marked_late_and_a_live_one_is_not(store: Store) -> None:
    world = await make_world(store)
    readings = log([5.0, 26.0, 5.0, 5.0, 5.0, 26.0, 5.0])  # above 25 °C at minute 10 and minute 50

    await sync(store, world, readings[:3], now=at(15))  # live: detected 5 min after the fact
    await sync(store, world, readings[3:], now=at(50) + timedelta(hours=6))  # after a 6 h outage

    by_time = {a.alarm.began_at: a for a in await alarms_of(store, world.shipment.id)}
    assert (by_time[at(10)].late, by_time[at(10)].detected_at) == (False, at(15))
    assert (by_time[at(50)].late, by_time[at(50)].alarm.met_at) == (True, at(50))


async def test_a_reading_belongs_to_the_shipment_its_tracker_was_assigned_to_at_that_time(store: Store) -> None:
    world = await make_world(store)
    async with store.transaction() as tx:
        await tx.end_assignment(world.assignment_id, at(60))
    later = await shipment_of(store, owner=world.shipper, carrier=world.carrier, receiver=None, profile=world.profile)
    await assign(store, later.id, world.tracker_id, at(60))
    readings = log([5.0] * 3 + [26.0] * 3 + [26.0, 5.0, 5.0])  # 26 °C from minute 30; a new trip from minute 60

    await sync(store, world, readings, now=at(100))

    first = await shipment_judgement(store, OPERATOR, world.shipment.id)
    second = await shipment_judgement(store, OPERATOR, later.id)
    assert (first.evaluation.readings, second.evaluation.readings) == (6, 3)
    assert [e.excursion.start for e in first.excursions if e.excursion.rule == "above 25"] == [at(30)]
    assert [e.excursion.start for e in second.excursions if e.excursion.rule == "above 25"] == [at(60)]


async def test_readings_outside_every_assignment_are_stored_but_judged_for_no_shipment(store: Store) -> None:
    world = await make_world(store)
    before = [Reading(seq=1, device_time=T0 - timedelta(hours=3), temperature_c=30.0)]

    await sync(store, world, before, now=at(0))

    async with store.transaction() as tx:
        assert await tx.count_readings(world.tracker_id) == 1
        assert await tx.evaluation_stream(world.assignment_id) is None
    assert await alarms_of(store, world.shipment.id) == []


async def test_readings_held_before_their_assignment_was_made_are_judged_with_the_next_batch(store: Store) -> None:
    world = await make_world(store)
    async with store.transaction() as tx:
        await tx.end_assignment(world.assignment_id, at(-30))
    readings = log(TRIP)
    await sync(store, world, readings[:20], now=at(200))  # no assignment covers them yet
    await assign(store, world.shipment.id, world.tracker_id, at(0))  # made afterwards, reaching back

    await sync(store, world, readings[20:], now=at(300))

    judgement = await shipment_judgement(store, OPERATOR, world.shipment.id)
    expected = evaluate(world.profile, readings)
    assert (judgement.evaluation.readings, judgement.evaluation.excursions) == (len(TRIP), expected.excursions)
    assert raised(await alarms_of(store, world.shipment.id)) == raised_in_order(expected.alarms)


async def test_with_evaluation_off_readings_are_stored_and_nothing_is_judged(store: Store) -> None:
    world = await make_world(store)

    await sync(store, world, log(TRIP), now=at(300), policy=SyncPolicy(max_future=LIVE.max_future, evaluate=False))

    async with store.transaction() as tx:
        assert await tx.count_readings(world.tracker_id) == len(TRIP)
        assert await tx.evaluation_streams(world.shipment.id) == []


async def test_a_lots_budget_spent_in_an_earlier_shipment_counts_in_the_next_one(store: Store) -> None:
    world = await make_world(store)
    await sync(store, world, log([5.0] * 3 + [9.0] * 9 + [5.0] * 3), now=at(200))  # 90 min above 8 °C
    next_one = await shipment_of(
        store,
        owner=world.shipper,
        carrier=world.carrier,
        receiver=None,
        profile=world.profile,
        product_id=world.product_id,
        lot_id=world.lot_id,
    )
    tracker = await make_tracker(store, world.carrier)
    await assign(store, next_one.id, tracker.id, at(1000))
    second_leg = [Reading(seq=n, device_time=at(1000 + 10 * n), temperature_c=9.0) for n in range(1, 8)]

    await record_batch(store, tracker.id, second_leg, now=at(1100), policy=LIVE)

    (budget_alarm,) = [a for a in await alarms_of(store, next_one.id) if a.alarm.rule == "budget"]
    assert budget_alarm.alarm.met_at == at(1010 + 30)  # 90 min before + 30 min here = the 120 min allowed
    judgement = await shipment_judgement(store, OPERATOR, next_one.id)
    (budget,) = judgement.evaluation.budgets
    assert (budget.spent_before_min, budget.spent_in_shipment_min, budget.remaining_min) == (90.0, 60.0, 0.0)
    assert budget.overrun_min == 30.0
    first = await shipment_judgement(store, OPERATOR, world.shipment.id)
    (first_budget,) = first.evaluation.budgets
    # By its own time the lot had spent 90 min; the lot's total now is shown apart from it.
    assert (first_budget.spent_before_min, first_budget.consumed_min, first_budget.exhausted) == (0.0, 90.0, False)
    assert (first_budget.lot_spent_min, first_budget.lot_exhausted_at) == (150.0, at(1040))


async def test_an_open_excursion_is_one_row_brought_up_to_date_until_it_closes(store: Store) -> None:
    world = await make_world(store)
    readings = log([5.0, 9.0, 9.0, 9.0, 9.0, 5.0])

    await sync(store, world, readings[:3], now=at(30))
    (opened,) = [e for e in await excursions_of(store, world.shipment.id) if e.excursion.rule == "heat"]
    await sync(store, world, readings[3:], now=at(60))
    (closed,) = [e for e in await excursions_of(store, world.shipment.id) if e.excursion.rule == "heat"]

    assert (opened.excursion.end, opened.excursion.duration_min) == (None, 10.0)
    assert (closed.id, closed.excursion.end, closed.excursion.duration_min) == (opened.id, at(50), 40.0)
    assert (closed.detected_at, closed.updated_at) == (at(30), at(60))


async def test_an_excursion_carries_the_party_that_held_the_shipment_when_it_began(store: Store) -> None:
    world = await make_world(store)
    where = Location(lat=47.56, lon=7.59, name="Basel")
    await custody.record_event(store, OPERATOR, world.shipment.id, kind="packed", place=where, occurred_at=at(0),
                               now=at(0))  # fmt: skip
    await custody.record_event(store, OPERATOR, world.shipment.id, kind="picked_up", place=where, occurred_at=at(60),
                               now=at(60))  # fmt: skip
    readings = log([26.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 26.0, 5.0])  # above 25 °C at minute 0 and 70

    await sync(store, world, readings, now=at(100))

    custodians = {
        e.excursion.start: e.custodian_id
        for e in await excursions_of(store, world.shipment.id)
        if e.excursion.rule == "above 25"
    }
    assert custodians == {at(0): world.shipper, at(70): world.carrier}


async def test_findings_older_than_every_checkpoint_leave_the_state_and_a_reading_older_still_rejudges_them(
    store: Store,
) -> None:
    world = await make_world(store)
    readings = log(TRIP * 15)  # 75 h: an excursion, a heat alarm and an instant one every 5 h
    # In the first trip, minute 80: back at 5 °C. Held back, the first excursion is one 2 h run; delivered,
    # it is two, and the heat alarm begins with the second.
    early = msgspec.structs.replace(readings[8], temperature_c=5.0)
    readings[8] = early
    rest = [reading for reading in readings if reading is not early]
    await sync(store, world, rest, now=at(4600), batch=50)

    async with store.transaction() as tx:
        stream = await tx.evaluation_stream(world.assignment_id)
    assert stream is not None
    state = decode_state(stream.state)
    assert state.excursions_offset > 10 and state.alarms_offset > 10, "more than a day old: gone from the state"
    judgement = await shipment_judgement(store, OPERATOR, world.shipment.id)
    assert judgement.evaluation == msgspec.structs.replace(
        evaluate(world.profile, rest), budgets=judgement.evaluation.budgets
    ), "the judgement takes them from the stored findings"
    standing = await alarms_of(store, world.shipment.id)
    (first_heat,) = [a for a in standing if a.alarm.rule == "heat" and a.alarm.began_at == at(60)]

    await sync(store, world, [early], now=at(4700))

    expected = evaluate(world.profile, readings)
    judgement = await shipment_judgement(store, OPERATOR, world.shipment.id)
    assert judgement.evaluation == msgspec.structs.replace(expected, budgets=judgement.evaluation.budgets)
    assert found(await excursions_of(store, world.shipment.id)) == expected.excursions
    stream_alarms = [a for a in expected.alarms if a.scope != "lifetime"]
    standing = await alarms_of(store, world.shipment.id)
    assert raised([a for a in standing if a.alarm.scope != "lifetime"]) == raised_in_order(stream_alarms)
    withdrawn = [a for a in await alarms_of(store, world.shipment.id, withdrawn=True) if a.withdrawn_at is not None]
    assert [(a.id, a.withdrawn_at) for a in withdrawn] == [(first_heat.id, at(4700))], "replayed from the start"


def moving_on(monkeypatch: pytest.MonkeyPatch, *, rounds: int | None, phantom: Excursion) -> dict[str, int]:
    """Another transaction's batch as the judgement's reads see it in each of its first ``rounds`` rounds
    (``None``: in every round): an excursion the states read do not hold appeared among the findings, and the
    stream moved on after the states were read (its reading count). Counts the reads."""
    original_readings, original_excursions = SqlTransaction.stream_readings, SqlTransaction.excursions_of_shipment
    calls = {"readings": 0, "excursions": 0}

    def moving() -> bool:
        return rounds is None or calls["excursions"] <= rounds

    async def excursions_of_shipment(self: SqlTransaction, shipment_id: int, **kwargs: Any) -> list[StoredExcursion]:
        calls["excursions"] += 1
        found = await original_excursions(self, shipment_id, **kwargs)
        if moving():
            found.append(msgspec.structs.replace(found[-1], id=10_000 + calls["excursions"], excursion=phantom))
        return found

    async def stream_readings(self: SqlTransaction, shipment_id: int) -> dict[int, int]:
        calls["readings"] += 1
        counts = await original_readings(self, shipment_id)
        return {key: count + 1 for key, count in counts.items()} if moving() else counts

    monkeypatch.setattr(SqlTransaction, "stream_readings", stream_readings)
    monkeypatch.setattr(SqlTransaction, "excursions_of_shipment", excursions_of_shipment)
    return calls


@pytest.fixture
async def postgres_store(postgres_database: str) -> AsyncIterator[Store]:
    """A store on PostgreSQL, whose plain transactions are READ COMMITTED: the only engine on which another
    transaction can commit between two reads of one transaction (SQLite's hold the write lock throughout)."""
    store = await open_store(postgres_database, pool_size=3)
    try:
        yield store
    finally:
        await store.close()


async def judged_in_a_plain_transaction(store: Store, shipment_id: int) -> ShipmentJudgement:
    async with store.transaction() as tx:
        assert not tx.one_moment
        shipment = await tx.get_shipment(shipment_id)
        assert shipment is not None
        return await judgement_in(tx, shipment)


async def test_sqlite_transactions_see_one_moment_and_postgresql_ones_do_as_snapshots(store: Store) -> None:
    async with store.transaction() as tx:
        plain = tx.one_moment
    async with store.transaction(snapshot=True) as tx:
        snapshot = tx.one_moment
    assert (plain, snapshot) == (store.engine == "sqlite", True)


async def test_a_batch_committed_between_the_judgements_reads_is_seen_and_the_reads_repeated(
    postgres_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = postgres_store
    world = await make_world(store)
    readings = log(TRIP * 12)  # 60 h: the first day's findings have left the state
    await sync(store, world, readings, now=at(3700), batch=50)
    expected = await shipment_judgement(store, OPERATOR, world.shipment.id)
    assert expected.evaluation == msgspec.structs.replace(
        evaluate(world.profile, readings), budgets=expected.evaluation.budgets
    )
    phantom = msgspec.structs.replace(expected.excursions[-1].excursion, start=at(3650), start_seq=999)
    calls = moving_on(monkeypatch, rounds=2, phantom=phantom)

    judged = await judged_in_a_plain_transaction(store, world.shipment.id)

    assert calls == {"excursions": 3, "readings": 3}, "read again after each of the two"
    assert judged == expected


async def test_a_judgement_that_never_reads_one_moment_tells_the_caller_to_try_again(
    postgres_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = postgres_store
    world = await make_world(store)
    await sync(store, world, log(TRIP * 12), now=at(3700), batch=50)
    expected = await shipment_judgement(store, OPERATOR, world.shipment.id)
    phantom = msgspec.structs.replace(expected.excursions[-1].excursion, start=at(3650), start_seq=999)
    calls = moving_on(monkeypatch, rounds=None, phantom=phantom)

    with pytest.raises(Busy, match="ask again in a moment"):
        await judged_in_a_plain_transaction(store, world.shipment.id)
    assert calls == {"excursions": 3, "readings": 3}, "three rounds of reads, then the caller is told"


async def test_the_judgement_reads_one_snapshot_while_another_tracker_commits_between_its_reads(
    postgres_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL, for real: a batch of the shipment's tracker commits, through another connection, after the
    judgement read the streams and before it reads their findings. The judgement is the one from before the
    batch, read once, and the next judgement sees the batch."""
    store = postgres_store
    world = await make_world(store)
    readings = log(TRIP * 12)  # 60 h, trimmed: the judgement needs the stored findings
    later = log(TRIP * 2, first_seq=len(readings) + 1)
    later = [msgspec.structs.replace(r, device_time=r.device_time + timedelta(hours=60)) for r in later]
    await sync(store, world, readings, now=at(3700), batch=50)
    before = await shipment_judgement(store, OPERATOR, world.shipment.id)
    original = SqlTransaction.excursions_of_shipment
    committed: list[int] = []

    async def excursions_of_shipment(self: SqlTransaction, shipment_id: int, **kwargs: Any) -> list[StoredExcursion]:
        if not committed:
            await sync(store, world, later, now=at(4500), batch=1000)  # another connection of the pool
            committed.append(len(later))
        return await original(self, shipment_id, **kwargs)

    monkeypatch.setattr(SqlTransaction, "excursions_of_shipment", excursions_of_shipment)
    monkeypatch.setattr(SqlTransaction, "stream_readings", None)  # a snapshot never needs to look again

    judged = await shipment_judgement(store, OPERATOR, world.shipment.id)
    assert committed == [len(later)]
    assert judged == before
    monkeypatch.setattr(SqlTransaction, "excursions_of_shipment", original)
    after = await shipment_judgement(store, OPERATOR, world.shipment.id)
    assert after.evaluation.readings == before.evaluation.readings + len(later)
    assert after.evaluation == msgspec.structs.replace(
        evaluate(world.profile, readings + later), budgets=after.evaluation.budgets
    )
