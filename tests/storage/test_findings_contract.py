"""What a batch's findings become in the store: excursions and alarms written in one statement per kind, and the
lot's spending summed without its intervals; the same on both engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from coldchain.domain.evaluation import encode_state, new_state
from coldchain.domain.excursions import Excursion
from coldchain.domain.findings import EvaluationStream
from coldchain.domain.lot_budget import Spending
from coldchain.domain.rules import Alarm
from coldchain.domain.shipments import Assignment
from coldchain.storage import Store
from tests.factories import assign, example_profile, make_org, make_shipment, make_tracker

T0 = datetime(2026, 3, 1, 8, 0, 0, 123456, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


async def a_stream(store: Store, *, shipment_id: int | None = None, lot: bool = True) -> Assignment:
    """A tracker's stream on a new shipment (of a lot of its own unless ``lot`` is false), or on ``shipment_id``."""
    shipper = await make_org(store)
    tracker = await make_tracker(store, shipper.id)
    if shipment_id is None:
        shipment_id = (await make_shipment(store, owner=shipper.id, lot_number="L-1" if lot else None)).id
    assignment = await assign(store, shipment_id, tracker.id, T0)
    profile = await example_profile(store)
    async with store.transaction() as tx:
        await tx.save_evaluation_stream(
            EvaluationStream(
                assignment_id=assignment.id,
                shipment_id=shipment_id,
                tracker_id=tracker.id,
                profile=profile,
                state=encode_state(new_state(profile)),
                readings=0,
                updated_at=NOW,
            )
        )
    return assignment


def excursion(start_min: int, *, end_min: int | None, peak: float = 9.0) -> Excursion:
    return Excursion(
        rule="heat",
        metric="temperature",
        direction="above",
        threshold=8.0,
        start=T0 + timedelta(minutes=start_min),
        start_seq=start_min + 1,
        end=None if end_min is None else T0 + timedelta(minutes=end_min),
        duration_min=float((end_min or start_min + 5) - start_min),
        uncredited_min=0.0,
        peak=peak,
        degree_min=0.5,
    )


def alarm(began_min: int, *, met_min: int) -> Alarm:
    return Alarm(
        rule="heat",
        action="quarantine",
        metric="temperature",
        direction="above",
        threshold=8.0,
        mode="consecutive",
        scope="shipment",
        delay_min=60.0,
        began_at=T0 + timedelta(minutes=began_min),
        began_seq=began_min + 1,
        met_at=T0 + timedelta(minutes=met_min),
    )


async def test_a_batchs_excursions_are_inserted_and_updated_together_by_key(store: Store) -> None:
    stream = await a_stream(store)
    carrier = await make_org(store, kind="carrier")
    kept, withdrawn = excursion(0, end_min=None), excursion(100, end_min=130)
    async with store.transaction() as tx:
        await tx.upsert_excursions(stream.id, stream.shipment_id, [(kept, carrier.id), (withdrawn, None)], now=NOW)
        await tx.withdraw_excursion(stream.id, withdrawn.key, now=NOW)

    later = NOW + timedelta(hours=1)
    closed = excursion(0, end_min=45, peak=11.5)
    new_one = excursion(300, end_min=None)
    superseded = excursion(300, end_min=310)
    found = [(closed, None), (withdrawn, None), (superseded, None), (new_one, carrier.id)]
    async with store.transaction() as tx:
        await tx.upsert_excursions(stream.id, stream.shipment_id, found, now=later)
        stored = await tx.excursions_of_shipment(stream.shipment_id, withdrawn=True)

    assert [item.excursion for item in stored] == [closed, withdrawn, new_one], "of two with one key, the later"
    first, restored, added = stored
    assert first.custodian_id == carrier.id, "no custodian given keeps the one stored"
    assert (first.detected_at, first.updated_at) == (NOW, later)
    assert restored.withdrawn_at is None, "found again: no longer withdrawn"
    assert (added.custodian_id, added.detected_at) == (carrier.id, later)


async def test_a_batchs_new_alarms_are_inserted_together_and_a_held_key_is_left_alone(store: Store) -> None:
    stream = await a_stream(store)
    held = alarm(0, met_min=60)
    async with store.transaction() as tx:
        [first] = await tx.insert_alarms(stream.shipment_id, [(stream.id, held, False)], detected_at=NOW)

    later = NOW + timedelta(hours=1)
    fresh, late = alarm(200, met_min=260), alarm(500, met_min=560)
    again = alarm(0, met_min=75)  # the held condition, judged again: the insert leaves it as it is
    found = [(stream.id, fresh, False), (stream.id, again, True), (stream.id, late, True), (stream.id, fresh, True)]
    async with store.transaction() as tx:
        inserted = await tx.insert_alarms(stream.shipment_id, found, detected_at=later)
        stored = await tx.alarms_of_shipment(stream.shipment_id)

    assert [(item.alarm, item.late, item.detected_at) for item in inserted] == [
        (fresh, False, later),
        (late, True, later),
    ], "the new ones in the order given; of two with one key, the first"
    assert [item.alarm for item in stored] == [held, fresh, late]
    assert stored[0] == first, "the held alarm is unchanged"
    async with store.transaction() as tx:
        assert await tx.insert_alarms(stream.shipment_id, [], detected_at=later) == []


async def test_a_lots_spending_is_summed_per_rule_with_the_count_of_its_standing_budget_alarms(store: Store) -> None:
    first = await a_stream(store)
    second = await a_stream(store, shipment_id=first.shipment_id)  # a second tracker of the same shipment
    elsewhere = await a_stream(store)  # another product's lot
    lone = await a_stream(store, lot=False)
    async with store.transaction() as tx:
        shipment = await tx.get_shipment(first.shipment_id)
        lone_shipment = await tx.get_shipment(lone.shipment_id)
    assert shipment is not None and shipment.lot_id is not None and lone_shipment is not None
    budget = msgspec.structs.replace(alarm(0, met_min=60), rule="budget", mode="cumulative", scope="lifetime")

    def spent(stream: Assignment, rule: str, minutes: float) -> Spending:
        return Spending(stream_id=stream.id, shipment_id=stream.shipment_id, rule=rule, unplaced_min=minutes)

    async with store.transaction() as tx:
        assert await tx.lot_spent_totals(lot_id=shipment.lot_id, shipment_id=shipment.id) == ({}, 0)
        await tx.save_budget_spent(first.id, first.shipment_id, [spent(first, "budget", 30.5), spent(first, "b", 1)])
        await tx.save_budget_spent(second.id, second.shipment_id, [spent(second, "budget", 12.25)])
        await tx.save_budget_spent(elsewhere.id, elsewhere.shipment_id, [spent(elsewhere, "budget", 500.0)])
        await tx.save_budget_spent(lone.id, lone.shipment_id, [spent(lone, "budget", 7.0)])
        await tx.insert_alarms(first.shipment_id, [(second.id, budget, False)], detected_at=NOW)
        await tx.insert_alarms(first.shipment_id, [(first.id, alarm(0, met_min=60), False)], detected_at=NOW)

        assert await tx.lot_spent_totals(lot_id=shipment.lot_id, shipment_id=shipment.id) == (
            {"budget": 42.75, "b": 1.0},
            1,
        ), "every stream of the lot, and its lifetime alarms only"
        assert await tx.lot_spent_totals(lot_id=None, shipment_id=lone.shipment_id) == ({"budget": 7.0}, 0)
        await tx.withdraw_alarm(second.id, budget.key, now=NOW)
        assert await tx.lot_spent_totals(lot_id=shipment.lot_id, shipment_id=shipment.id) == (
            {"budget": 42.75, "b": 1.0},
            0,
        ), "a withdrawn alarm does not stand"
