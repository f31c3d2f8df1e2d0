"""record_batch on each engine, for what the HTTP tests cannot reach: the service's own clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coldchain.domain.readings import Reading
from coldchain.services.sync import SyncPolicy, record_batch
from coldchain.storage import Store

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
