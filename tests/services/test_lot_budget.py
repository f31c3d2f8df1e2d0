"""The lot's stability budget as one timeline in device time, through the real ingest path on each engine.

Three shipments of one lot, one after the other, each with a tracker of its own: 300, 300 and 200 minutes above
8 °C against a lifetime allowance of 720 minutes. The budget runs out 120 minutes into the third shipment's
spending, on the third shipment and nowhere else, whatever order the trackers sync in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

import msgspec
import pytest

from coldchain.domain.access import OPERATOR
from coldchain.domain.profiles import AlarmRule, Profile
from coldchain.domain.readings import Reading
from coldchain.domain.shipments import Shipment
from coldchain.services.evaluation import budgets_left, judge_readings, shipment_judgement
from coldchain.services.sync import record_batch
from coldchain.storage import Store, open_store
from tests.factories import assign, make_tracker
from tests.postgres_server import until_waiting_on_a_lock
from tests.services.test_evaluation_ingest import LIVE, World, alarms_of, at, make_world, shipment_of

ALLOWANCE = Profile(
    id="lot-budget",
    name="12 h at 8-25 °C over the lot's life",
    label_range_c=(2.0, 8.0),
    max_gap_min=30.0,
    rules=(
        AlarmRule(name="budget", direction="above", threshold=8.0, inclusive=False, mode="cumulative",
                  delay_min=720, scope="lifetime", action="reject"),
    ),
)  # fmt: skip

DAY_MIN = 24 * 60.0


def leg(day: int, warm_min: int) -> list[Reading]:
    """A day's leg: an hour at 5 °C, ``warm_min`` minutes at 9 °C from minute 60, then 5 °C until minute 600."""
    start = day * DAY_MIN
    return [
        Reading(
            seq=index + 1,
            device_time=at(start + minute),
            temperature_c=9.0 if 60 <= minute < 60 + warm_min else 5.0,
        )
        for index, minute in enumerate(range(0, 601, 10))
    ]


class Lot(msgspec.Struct, kw_only=True):
    world: World
    shipments: list[Shipment]
    trackers: list[int]
    legs: list[list[Reading]]


async def lot_of_three(store: Store) -> Lot:
    world = await make_world(store, ALLOWANCE)
    shipments = [world.shipment]
    trackers = [world.tracker_id]
    for _ in range(2):
        shipment = await shipment_of(
            store,
            owner=world.shipper,
            carrier=world.carrier,
            receiver=None,
            profile=world.profile,
            product_id=world.product_id,
            lot_id=world.lot_id,
        )
        tracker = await make_tracker(store, world.carrier)
        await assign(store, shipment.id, tracker.id, at(-60))
        shipments.append(shipment)
        trackers.append(tracker.id)
    legs = [leg(0, 300), leg(1, 300), leg(2, 200)]
    return Lot(world=world, shipments=shipments, trackers=trackers, legs=legs)


async def sync_legs(store: Store, lot: Lot, order: Sequence[int], *, batch: int = 1000) -> None:
    for index in order:
        readings = lot.legs[index]
        for start in range(0, len(readings), batch):
            await record_batch(
                store, lot.trackers[index], readings[start : start + batch], now=at(4 * DAY_MIN), policy=LIVE
            )


async def budget_alarms(store: Store, lot: Lot) -> list[tuple[int, datetime]]:
    found: list[tuple[int, datetime]] = []
    for number, shipment in enumerate(lot.shipments):
        for stored in await alarms_of(store, shipment.id):
            if stored.alarm.rule == "budget":
                found.append((number, stored.alarm.met_at))
    return found


CROSSING = at(2 * DAY_MIN + 60 + 120)  # 600 minutes spent before; 120 more into the third shipment's warm spell


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 0, 1), (2, 1, 0), (1, 2, 0)])
async def test_the_lot_budget_runs_out_on_the_shipment_whose_readings_cross_it_whatever_the_sync_order(
    store: Store, order: tuple[int, int, int]
) -> None:
    lot = await lot_of_three(store)

    await sync_legs(store, lot, order)

    assert await budget_alarms(store, lot) == [(2, CROSSING)]


async def test_a_shipment_shows_what_the_lot_had_spent_by_its_own_time_and_the_lots_total_now(store: Store) -> None:
    lot = await lot_of_three(store)
    await sync_legs(store, lot, (0, 1, 2))

    budgets = []
    for shipment in lot.shipments:
        judgement = await shipment_judgement(store, OPERATOR, shipment.id)
        (budget,) = judgement.evaluation.budgets
        budgets.append(budget)

    assert [(b.spent_before_min, b.spent_in_shipment_min, b.consumed_min) for b in budgets] == [
        (0.0, 300.0, 300.0),
        (300.0, 300.0, 600.0),
        (600.0, 200.0, 800.0),
    ]
    assert [b.exhausted for b in budgets] == [False, False, True]
    assert [b.lot_spent_min for b in budgets] == [800.0, 800.0, 800.0]
    assert [b.lot_exhausted_at for b in budgets] == [CROSSING] * 3
    assert [b.overrun_min for b in budgets] == [0.0, 0.0, 80.0]


async def test_the_allowance_left_for_an_estimate_is_the_lots_total_now(store: Store) -> None:
    lot = await lot_of_three(store)
    await sync_legs(store, lot, (0, 1))

    async with store.transaction() as tx:
        first = await tx.get_shipment(lot.shipments[0].id)
        assert first is not None
        [(rule, left_min)] = await budgets_left(tx, first)

    assert (rule.name, left_min) == ("budget", 120.0)


async def test_late_data_in_an_earlier_shipment_moves_the_crossing_and_withdraws_the_alarm_it_disproves(
    store: Store,
) -> None:
    lot = await lot_of_three(store)
    first = lot.legs[0]
    cooled = [r for r in first if r.device_time < at(200)]  # the first leg's warm spell seen only up to minute 200
    await sync_legs(store, lot, (1, 2))
    await record_batch(store, lot.trackers[0], cooled, now=at(4 * DAY_MIN), policy=LIVE)
    assert await budget_alarms(store, lot) == []  # 130 + 300 + 200 = 630 minutes: within the allowance

    rest = [r for r in first if r.device_time >= at(200)]
    await record_batch(store, lot.trackers[0], rest, now=at(4 * DAY_MIN), policy=LIVE)

    assert await budget_alarms(store, lot) == [(2, CROSSING)]
    withdrawn_anywhere = [
        stored
        for shipment in lot.shipments
        for stored in await alarms_of(store, shipment.id, withdrawn=True)
        if stored.withdrawn_at is not None
    ]
    assert withdrawn_anywhere == []


async def test_an_earlier_shipment_arriving_last_takes_the_alarm_back_from_the_one_it_was_raised_on(
    store: Store,
) -> None:
    lot = await lot_of_three(store)
    lot.legs[1] = leg(1, 450)
    lot.legs[2] = leg(2, 500)
    await sync_legs(store, lot, (2, 1))
    assert await budget_alarms(store, lot) == [(2, at(2 * DAY_MIN + 60 + 270))]  # 450 + 270

    await sync_legs(store, lot, (0,))  # 300 + 420: the second shipment ran the budget out

    assert await budget_alarms(store, lot) == [(1, at(DAY_MIN + 60 + 420))]
    (taken_back,) = await alarms_of(store, lot.shipments[2].id, withdrawn=True)
    assert (taken_back.alarm.met_at, taken_back.withdrawn_at) == (at(2 * DAY_MIN + 60 + 270), at(4 * DAY_MIN))


async def test_late_data_moving_the_crossing_within_a_shipment_brings_its_alarm_up_to_date(store: Store) -> None:
    lot = await lot_of_three(store)
    lot.legs[2] = leg(2, 500)
    await sync_legs(store, lot, (2, 1))
    (before,) = await alarms_of(store, lot.shipments[2].id)
    assert before.alarm.met_at == at(2 * DAY_MIN + 60 + 420)  # 300 + 420

    await sync_legs(store, lot, (0,))

    (after,) = await alarms_of(store, lot.shipments[2].id, withdrawn=True)
    assert (after.id, after.alarm.met_at, after.withdrawn_at) == (before.id, CROSSING, None)  # the same condition


async def _sync_at_once(url: str, order: Sequence[int]) -> list[tuple[int, datetime]]:
    store = await open_store(url, pool_size=4)
    try:
        lot = await lot_of_three(store)
        await sync_legs(store, lot, order[:1])
        await asyncio.gather(*(sync_legs(store, lot, (index,), batch=7) for index in order[1:]))
        return await budget_alarms(store, lot)
    finally:
        await store.close()


async def test_two_trackers_of_a_lot_syncing_at_once_do_not_both_miss_the_crossing(database_url: str) -> None:
    assert await _sync_at_once(database_url, (0, 1, 2)) == [(2, CROSSING)]
    assert await _sync_at_once(database_url, (1, 0, 2)) == [(2, CROSSING)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite runs one writer at a time
async def test_two_trackers_of_a_shipment_of_no_lot_syncing_at_once_do_not_both_miss_the_crossing(
    database_url: str,
) -> None:
    """The shipment's own budget: the first tracker spends 540 minutes on day 0 (warm from minute 60 to its last
    reading), the second 200 on day 1, while the first one's batch is still being stored. The crossing is 180
    minutes into the second's spell."""
    store = await open_store(database_url, pool_size=4)
    try:
        world = await make_world(store, ALLOWANCE)
        alone = await shipment_of(
            store,
            owner=world.shipper,
            carrier=world.carrier,
            receiver=None,
            profile=world.profile,
            product_id=world.product_id,
        )
        assert alone.lot_id is None
        first, second = (await make_tracker(store, world.carrier)).id, (await make_tracker(store, world.carrier)).id
        await assign(store, alone.id, first, at(-60), at(DAY_MIN - 60))
        await assign(store, alone.id, second, at(DAY_MIN - 60))
        first_leg, second_leg = leg(0, 540), leg(1, 200)
        now = at(4 * DAY_MIN)

        async with store.transaction() as tx:  # the first tracker's batch, as record_batch runs it
            await tx.sync_state(first)
            await tx.append_readings(first, first_leg, received_at=now)
            await judge_readings(tx, first, first_leg, now=now)
            syncing = asyncio.create_task(record_batch(store, second, second_leg, now=now, policy=LIVE))
            await until_waiting_on_a_lock(database_url, syncing)
        await syncing

        found = [(s.alarm.rule, s.alarm.met_at) for s in await alarms_of(store, alone.id) if s.alarm.rule == "budget"]
        assert found == [("budget", at(DAY_MIN + 60 + 180))]
    finally:
        await store.close()
