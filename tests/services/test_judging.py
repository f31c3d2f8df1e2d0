"""Judging after commit, on each storage engine: a batch commits its readings and what waits to be judged, and
the judge finds later exactly what judging inside the transaction finds (an independent oracle: one pass of the
engine over the whole log), whether it takes the readings as handed over or reads them back."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.domain.access import OPERATOR
from coldchain.domain.evaluation import evaluate
from coldchain.domain.readings import Reading
from coldchain.domain.sync import SyncState
from coldchain.services.evaluation import shipment_judgement
from coldchain.services.judging import Judge, Waiting, judge_waiting
from coldchain.services.sync import SyncPolicy, record_batch
from coldchain.storage import Store
from coldchain.storage._sql import SqlTransaction
from tests.services.test_evaluation_ingest import (
    TRIP,
    World,
    alarms_of,
    at,
    excursions_of,
    found,
    log,
    make_world,
    raised,
    raised_in_order,
)

AFTER_COMMIT = SyncPolicy(max_future=timedelta(days=3650), judge_after_commit=True)


async def sync_after_commit(
    store: Store,
    world: World,
    readings: Sequence[Reading],
    *,
    batch: int,
    hand_over: Callable[[Waiting], object] | None = None,
) -> None:
    for start in range(0, len(readings), batch):
        await record_batch(
            store, world.tracker_id, readings[start : start + batch], now=at(5000), policy=AFTER_COMMIT,
            hand_over=hand_over,
        )  # fmt: skip


async def sync_state(store: Store, world: World) -> SyncState:
    async with store.transaction() as tx:
        return await tx.sync_state(world.tracker_id)


async def assert_judged_as_one_pass(store: Store, world: World, readings: Sequence[Reading]) -> None:
    expected = evaluate(world.profile, readings)
    assert found(await excursions_of(store, world.shipment.id)) == expected.excursions
    stream_alarms = [alarm for alarm in expected.alarms if alarm.scope != "lifetime"]
    standing = [a for a in await alarms_of(store, world.shipment.id) if a.alarm.scope != "lifetime"]
    assert raised(standing) == raised_in_order(stream_alarms)
    judgement = await shipment_judgement(store, OPERATOR, world.shipment.id)
    assert judgement.evaluation == msgspec.structs.replace(expected, budgets=judgement.evaluation.budgets)


def counting_read_backs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many readings the judge read back from the database, per read."""
    reads: list[int] = []
    original = SqlTransaction.readings_after

    async def readings_after(self: SqlTransaction, *args: object, **kwargs: object) -> list[Reading]:
        found = await original(self, *args, **kwargs)  # type: ignore[arg-type]
        reads.append(len(found))
        return found

    monkeypatch.setattr(SqlTransaction, "readings_after", readings_after)
    return reads


async def test_a_batch_commits_what_waits_and_the_judge_finds_what_one_pass_finds(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = await make_world(store)
    readings = log(TRIP * 3)
    handed: list[Waiting] = []

    await sync_after_commit(store, world, readings, batch=25, hand_over=handed.append)

    waiting = await sync_state(store, world)
    assert (waiting.judge_from, waiting.judge_until, waiting.judge_count) == (
        readings[0].device_time,
        readings[-1].device_time,
        len(readings),
    )
    assert waiting.judge_since == at(5000)
    assert await excursions_of(store, world.shipment.id) == [], "nothing judged inside the batches' transactions"
    assert [r for w in handed for r in w.readings] == readings
    read_backs = counting_read_backs(monkeypatch)

    judged = await judge_waiting(store, world.tracker_id, now=at(5001), take=lambda: handed)

    assert judged == len(readings)
    assert read_backs == [], "the readings handed over are all that waits: none read back"
    after = await sync_state(store, world)
    assert (after.judge_from, after.judge_until, after.judge_since, after.judge_count) == (None, None, None, 0)
    assert after.judge_round == waiting.judge_round + 1
    await assert_judged_as_one_pass(store, world, readings)
    assert await judge_waiting(store, world.tracker_id, now=at(5002)) == 0, "nothing waits any more"


@pytest.mark.parametrize("handed_over", ["one batch missing", "of an earlier round", "none"])
async def test_the_judge_reads_back_what_it_was_not_handed_in_full(
    store: Store, monkeypatch: pytest.MonkeyPatch, handed_over: str
) -> None:
    world = await make_world(store)
    readings = log(TRIP * 2)
    handed: list[Waiting] = []
    await sync_after_commit(store, world, readings, batch=20, hand_over=handed.append)
    if handed_over == "one batch missing":  # one came through another process
        handed = handed[:1] + handed[2:]
    elif handed_over == "of an earlier round":  # kept from before another process judged the tracker
        handed = [msgspec.structs.replace(w, round=w.round - 1) for w in handed]
    else:
        handed = []
    read_backs = counting_read_backs(monkeypatch)

    await judge_waiting(store, world.tracker_id, now=at(5001), take=lambda: handed)

    assert read_backs == [len(readings)]
    await assert_judged_as_one_pass(store, world, readings)


async def test_a_batch_handed_over_and_then_rolled_back_is_not_judged(store: Store) -> None:
    world = await make_world(store)
    readings = log(TRIP * 2)
    handed: list[Waiting] = []
    await sync_after_commit(store, world, readings[:30], batch=30, hand_over=handed.append)

    def fail_after_handing_over(waiting: Waiting) -> None:
        handed.append(waiting)
        raise RuntimeError("the process fails before the batch commits")

    with pytest.raises(RuntimeError):
        await sync_after_commit(store, world, readings[30:], batch=30, hand_over=fail_after_handing_over)
    assert (await sync_state(store, world)).judge_count == 30

    await judge_waiting(store, world.tracker_id, now=at(5001), take=lambda: handed)

    await assert_judged_as_one_pass(store, world, readings[:30])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batch=st.integers(1, 40),
    judged_after=st.lists(st.booleans(), min_size=1, max_size=40),
    late=st.integers(0, 3),
    seed=st.integers(0, 1000),
    handed_over=st.booleans(),
)
async def test_whatever_the_batches_and_whenever_the_judge_comes_the_result_is_one_passes(
    store: Store, batch: int, judged_after: list[bool], late: int, seed: int, handed_over: bool
) -> None:
    """Batches of any size, some late (sent after later ones), the judge coming after any of them with what
    it was handed over since it last came, or reading it back: what is stored and judged is what one pass over
    the log finds."""
    world = await make_world(store)
    readings = log(TRIP * 2)
    batches = [readings[start : start + batch] for start in range(0, len(readings), batch)]
    randomness = random.Random(seed)
    for _ in range(late):  # a batch held back and sent later
        held = batches.pop(randomness.randrange(len(batches)))
        batches.insert(randomness.randrange(len(batches) + 1), held)
    handed: list[Waiting] = []

    def take() -> list[Waiting]:
        taken = list(handed) if handed_over else []
        handed.clear()
        return taken

    for number, readings_of_batch in enumerate(batches):
        await record_batch(
            store, world.tracker_id, readings_of_batch, now=at(5000), policy=AFTER_COMMIT, hand_over=handed.append
        )
        if judged_after[number % len(judged_after)]:
            await judge_waiting(store, world.tracker_id, now=at(5001), take=take)
    await judge_waiting(store, world.tracker_id, now=at(5001), take=take)

    await assert_judged_as_one_pass(store, world, readings)


async def until(condition: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0) -> None:
    """Wait, looking every 10 ms, until ``condition`` holds; fail after ``timeout_s``."""
    for _ in range(int(timeout_s * 100)):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within {timeout_s} s")


async def test_the_judge_takes_what_was_handed_over_after_lingering_and_what_another_process_left_on_its_sweep(
    store: Store,
) -> None:
    ours, theirs = await make_world(store), await make_world(store)
    readings = log(TRIP * 2)
    judge = Judge(store, clock=lambda: at(5001), linger_s=0.05, sweep_s=0.2)
    async with judge.running():
        await sync_after_commit(store, ours, readings, batch=20, hand_over=judge.hand_over)
        await sync_after_commit(store, theirs, readings, batch=20)  # handed to no judge of this process

        async def judged(world: World) -> bool:
            return (await sync_state(store, world)).judge_count == 0

        await until(lambda: judged(ours))
        assert judge.held == 0
        await until(lambda: judged(theirs))
    for world in (ours, theirs):
        await assert_judged_as_one_pass(store, world, readings)


async def test_a_sweep_leaves_a_tracker_to_the_process_it_was_handed_to_until_it_has_waited_too_long(
    store: Store,
) -> None:
    """Another process still judging its backlog keeps what it was handed: a sweep takes a waiting tracker only
    once it has waited ``orphaned_s`` (its process stopped, or is far behind); at start, a judge takes every one."""
    theirs = await make_world(store)
    readings = log(TRIP)
    now = [at(5000)]
    judge = Judge(store, clock=lambda: now[0], linger_s=3600, sweep_s=0.02, orphaned_s=30)
    async with judge.running():
        await asyncio.sleep(0.05)  # the sweep at start found nothing waiting
        await sync_after_commit(store, theirs, readings, batch=20)  # received at(5000), handed to no judge here
        now[0] = at(5000) + timedelta(seconds=29)
        await asyncio.sleep(0.2)  # ten sweeps
        assert (await sync_state(store, theirs)).judge_count == len(readings)
        now[0] = at(5000) + timedelta(seconds=31)

        async def judged() -> bool:
            return (await sync_state(store, theirs)).judge_count == 0

        await until(judged)
    await assert_judged_as_one_pass(store, theirs, readings)

    other = await make_world(store)
    await sync_after_commit(store, other, readings, batch=20)
    async with Judge(store, clock=lambda: at(5000), linger_s=3600, sweep_s=3600, orphaned_s=3600).running():
        await until(lambda: judged_world(store, other))
    await assert_judged_as_one_pass(store, other, readings)


async def judged_world(store: Store, world: World) -> bool:
    return (await sync_state(store, world)).judge_count == 0


async def test_settling_a_shipment_judges_its_trackers_at_once_and_no_other(store: Store) -> None:
    ours, other = await make_world(store), await make_world(store)
    readings = log(TRIP * 2)
    judge = Judge(store, clock=lambda: at(5001), linger_s=3600, sweep_s=3600)
    for world in (ours, other):
        await sync_after_commit(store, world, readings, batch=20, hand_over=judge.hand_over)

    await judge.settle(ours.shipment.id)

    assert (await sync_state(store, ours)).judge_count == 0
    assert (await sync_state(store, other)).judge_count == len(readings)
    assert judge.held == len(readings), "the other tracker's readings are still held for it"
    await assert_judged_as_one_pass(store, ours, readings)


async def test_a_batch_waits_for_room_while_the_judge_holds_all_it_may_and_goes_on_once_it_judged(
    store: Store,
) -> None:
    world = await make_world(store)
    readings = log(TRIP)
    judge = Judge(store, clock=lambda: at(5001), linger_s=3600, sweep_s=3600, max_held=len(readings))
    await sync_after_commit(store, world, readings, batch=len(readings), hand_over=judge.hand_over)
    assert judge.behind

    assert not await judge.room(timeout_s=0.05), "nothing judged: no room"
    waiting = asyncio.create_task(judge.room(timeout_s=10))
    await asyncio.sleep(0)
    assert not waiting.done()
    await judge.settle(world.shipment.id)

    assert await waiting
    assert (judge.held, judge.behind) == (0, False)
