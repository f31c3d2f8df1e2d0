"""record_batch on each engine, for what the HTTP tests cannot reach: the service's own clock."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.domain.readings import Reading
from coldchain.domain.retention import month_of
from coldchain.services.sync import SyncPolicy, record_batch
from coldchain.storage import Store
from coldchain.storage.postgres import PostgresStore

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = SyncPolicy(max_future=timedelta(hours=1))


async def _tracker(store: Store) -> int:
    async with store.transaction() as tx:
        return (await tx.create_tracker(serial="P-1", secret="s", organisation_id=None, model=None, now=NOW)).id


async def test_an_unsequenced_position_quarantined_as_future_and_sent_again_valid_is_a_conflict_beside_it(
    store: Store,
) -> None:
    tracker_id = await _tracker(store)
    ahead = NOW + timedelta(days=2)
    position = Reading(seq=int(ahead.timestamp() * 1000), device_time=ahead, temperature_c=4.0)

    first = await record_batch(store, tracker_id, [position], now=NOW, policy=POLICY, sequenced=False)
    again = await record_batch(store, tracker_id, [position], now=ahead, policy=POLICY, sequenced=False)
    third = await record_batch(store, tracker_id, [position], now=ahead, policy=POLICY, sequenced=False)

    assert (first.quarantined, first.new) == (1, 0)
    assert (again.conflicts, again.duplicates, again.new, again.quarantined) == (1, 0, 0, 0)
    assert (third.conflicts, third.duplicates) == (0, 1)  # the same copy again is recorded once
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker_id) == 0
        assert [r.seq for r, _ in await tx.quarantined_readings(tracker_id)] == [position.seq]
        [conflict] = await tx.sync_conflicts(tracker_id)
    assert (conflict.held_as, conflict.held, conflict.sent, conflict.sent_reason) == (
        "quarantined",
        position,
        position,
        None,
    )


async def test_a_sequenced_batch_that_continues_the_log_is_acknowledged_without_missing_ranges(store: Store) -> None:
    tracker_id = await _tracker(store)
    readings = [Reading(seq=n, device_time=NOW - timedelta(minutes=10 - n), temperature_c=5.0) for n in range(1, 6)]

    first = await record_batch(store, tracker_id, readings[:3], now=NOW, policy=POLICY)
    second = await record_batch(store, tracker_id, readings[3:] + readings[:1], now=NOW, policy=POLICY)

    assert (first.acked_through, first.missing) == (3, [])
    assert (second.acked_through, second.missing, second.new, second.duplicates) == (5, [], 2, 1)


# --- Exact idempotency over partitioned readings -----------------------------------------------------------------
# On PostgreSQL readings are partitioned by month of device time: a copy of a held number with another device time
# would land in another partition, where no key refuses it. Ingest must catch it all the same, on both engines.

JANUARY = datetime(2026, 1, 15, 8, 0, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 15, 8, 0, tzinfo=UTC)
MARCH = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
MONTHS = (JANUARY, FEBRUARY, MARCH)
_serials = itertools.count()


async def _months_ready(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.prepare_reading_months([month_of(moment) for moment in MONTHS])


async def _partitions_holding(store: Store, tracker_id: int) -> dict[int, list[str]]:
    """PostgreSQL: the partitions each of the tracker's numbers is stored in."""
    assert isinstance(store, PostgresStore)
    async with store.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT seq, tableoid::regclass::text AS part FROM readings WHERE tracker_id = $1 ORDER BY part", tracker_id
        )
    found: dict[int, list[str]] = {}
    for row in rows:
        found.setdefault(row["seq"], []).append(row["part"])
    return found


async def test_a_replayed_number_with_a_device_time_in_another_month_is_a_conflict_and_is_not_stored(
    store: Store,
) -> None:
    await _months_ready(store)
    tracker_id = await _tracker(store)
    held = [Reading(seq=n, device_time=MARCH + timedelta(minutes=n), temperature_c=5.0) for n in (1, 2, 4)]
    replay = Reading(seq=2, device_time=JANUARY, temperature_c=5.0)  # the same values, another month
    hole = Reading(seq=3, device_time=FEBRUARY, temperature_c=5.0)  # missing so far: new, wherever it is dated
    hole_replay = Reading(seq=4, device_time=FEBRUARY, temperature_c=5.0)

    first = await record_batch(store, tracker_id, held, now=NOW, policy=POLICY)
    second = await record_batch(store, tracker_id, [replay, hole, hole_replay, held[0]], now=NOW, policy=POLICY)

    assert (first.new, first.acked_through, first.missing) == (3, 2, [(3, 3)])
    assert (second.new, second.duplicates, second.conflicts, second.acked_through) == (1, 1, 2, 4)
    async with store.transaction() as tx:
        stored = await tx.readings_between(tracker_id, JANUARY - timedelta(days=1), NOW)
        conflicts = await tx.sync_conflicts(tracker_id)
    assert stored == sorted([*held, hole], key=lambda r: r.device_time)
    assert sorted((c.seq, c.held, c.sent) for c in conflicts) == [(2, held[1], replay), (4, held[2], hole_replay)]
    if store.engine == "postgresql":
        assert await _partitions_holding(store, tracker_id) == {
            1: ["readings_2026_03"],
            2: ["readings_2026_03"],
            3: ["readings_2026_02"],
            4: ["readings_2026_03"],
        }


async def test_an_unsequenced_source_replaying_its_number_with_another_device_time_is_a_conflict(store: Store) -> None:
    await _months_ready(store)
    tracker_id = await _tracker(store)
    position = Reading(seq=1_000, device_time=MARCH, temperature_c=4.0)
    moved = Reading(seq=1_000, device_time=JANUARY, temperature_c=4.0)

    await record_batch(store, tracker_id, [position], now=NOW, policy=POLICY, sequenced=False)
    again = await record_batch(store, tracker_id, [moved], now=NOW, policy=POLICY, sequenced=False)

    assert (again.new, again.conflicts) == (0, 1)
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker_id) == 1


Copy = tuple[int, int]
"""A reading to send: its sequence number, and which of the three months it is dated in."""


def _reading(copy: Copy) -> Reading:
    seq, month = copy
    return Reading(seq=seq, device_time=MONTHS[month] + timedelta(minutes=seq), temperature_c=5.0)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(1, 8), st.integers(0, 2)), max_size=8),
        min_size=1,
        max_size=5,
    )
)
async def test_whatever_copies_come_in_whatever_months_the_first_copy_of_each_number_is_the_one_held(
    store: Store, batches: list[list[Copy]]
) -> None:
    await _months_ready(store)
    async with store.transaction() as tx:
        tracker = await tx.create_tracker(
            serial=f"PROP-{next(_serials)}", secret="s", organisation_id=None, model=None, now=NOW
        )
    held: dict[int, Copy] = {}
    recorded: set[Copy] = set()
    for batch in batches:
        outcome = await record_batch(store, tracker.id, [_reading(copy) for copy in batch], now=NOW, policy=POLICY)
        new = duplicates = conflicts = 0
        for copy in batch:
            seq, _ = copy
            if seq not in held:
                held[seq] = copy
                new += 1
            elif held[seq] == copy or copy in recorded:
                duplicates += 1
            else:
                recorded.add(copy)
                conflicts += 1
        assert (outcome.new, outcome.duplicates, outcome.conflicts) == (new, duplicates, conflicts)
    async with store.transaction() as tx:
        stored = await tx.readings_between(tracker.id, JANUARY - timedelta(days=1), NOW)
        kept_apart = await tx.sync_conflicts(tracker.id, limit=1_000)
    assert sorted(stored, key=lambda r: r.seq) == [_reading(held[seq]) for seq in sorted(held)]
    assert sorted((c.sent for c in kept_apart), key=_by_time_seq) == sorted(map(_reading, recorded), key=_by_time_seq)
    if store.engine == "postgresql":
        places = await _partitions_holding(store, tracker.id)
        assert {seq: len(parts) for seq, parts in places.items()} == dict.fromkeys(held, 1)


def _by_time_seq(reading: Reading) -> tuple[datetime, int]:
    return reading.device_time, reading.seq
