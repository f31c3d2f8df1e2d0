"""The storage contract: every assertion here holds on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coldchain.domain.audit import first_broken_entry
from coldchain.domain.notifications import Notice
from coldchain.domain.readings import Reading
from coldchain.domain.sync import Watched
from coldchain.storage import AlreadyExists, Store, open_store
from coldchain.storage.migrations import discover_migrations
from tests.factories import assign, make_org, make_shipment, make_tracker

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def readings(count: int, *, first_seq: int = 1, start: datetime = NOW) -> list[Reading]:
    return [
        Reading(
            seq=seq,
            device_time=start + timedelta(minutes=seq),
            utc_offset_min=60,
            temperature_c=4.0 + seq % 7 / 10,
            humidity_pct=55.5,
            pressure_kpa=101.3,
            latitude=52.52,
            longitude=13.405,
            battery_pct=99.0,
        )
        for seq in range(first_seq, first_seq + count)
    ]


async def new_tracker(store: Store, serial: str = "T-1") -> int:
    async with store.transaction() as tx:
        org = await tx.create_organisation(name=f"Carrier of {serial}", kind="carrier", now=NOW)
        tracker = await tx.create_tracker(serial=serial, secret="s3cret", organisation_id=org.id, model="X", now=NOW)
    return tracker.id


async def test_the_store_reports_its_engine_and_answers_a_ping(store: Store, database_url: str) -> None:
    assert store.engine == ("sqlite" if database_url.startswith("sqlite") else "postgresql")
    assert await store.ping() is True


async def test_migrating_twice_applies_nothing_the_second_time(store: Store) -> None:
    assert await store.migrate() == []


async def test_migrating_from_two_connections_at_once_applies_each_migration_once(
    empty_database_url: str,
) -> None:
    stores = [await open_store(empty_database_url, migrate=False) for _ in range(2)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
        every_migration = [m.label for m in discover_migrations(stores[0].engine)]
        assert sorted(applied, key=len) == [[], every_migration]
        assert await stores[0].migrate() == []
    finally:
        for s in stores:
            await s.close()


async def test_an_empty_database_has_every_migration_pending_until_it_is_migrated(empty_database_url: str) -> None:
    store = await open_store(empty_database_url, migrate=False)
    try:
        every_migration = [m.label for m in discover_migrations(store.engine)]
        assert await store.pending_migrations() == every_migration
        await store.migrate()
        assert await store.pending_migrations() == []
    finally:
        await store.close()


async def test_the_store_tells_its_connections_in_use_and_idle_without_asking_the_database(store: Store) -> None:
    idle = store.connections()
    assert idle.in_use == 0 and 1 <= idle.idle <= idle.max
    async with store.transaction():
        busy = store.connections()
        assert busy.in_use == 1 and busy.max == idle.max
    assert store.connections().in_use == 0


async def test_a_registered_tracker_can_be_found_by_its_serial(store: Store) -> None:
    tracker_id = await new_tracker(store)
    async with store.transaction() as tx:
        tracker = await tx.get_tracker("T-1")
        missing = await tx.get_tracker("T-404")
    assert tracker is not None and tracker.id == tracker_id
    assert (tracker.serial, tracker.secret, tracker.model, tracker.created_at) == ("T-1", "s3cret", "X", NOW)
    assert missing is None
    assert "s3cret" not in repr(tracker)


async def test_a_second_tracker_with_the_same_serial_is_refused(store: Store) -> None:
    await new_tracker(store)
    with pytest.raises(AlreadyExists, match="T-1"):
        async with store.transaction() as tx:
            await tx.create_tracker(serial="T-1", secret="x", organisation_id=None, model=None, now=NOW)


async def test_a_second_organisation_with_the_same_name_is_refused(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.create_organisation(name="Acme", kind="shipper", now=NOW)
    with pytest.raises(AlreadyExists, match="Acme"):
        async with store.transaction() as tx:
            await tx.create_organisation(name="Acme", kind="carrier", now=NOW)


async def test_readings_come_back_exactly_as_they_were_stored(store: Store) -> None:
    tracker_id = await new_tracker(store)
    batch = readings(50)
    async with store.transaction() as tx:
        new = await tx.insert_readings(tracker_id, batch, received_at=NOW)
    async with store.transaction() as tx:
        stored = await tx.readings_between(tracker_id, NOW, NOW + timedelta(days=1))
    assert sorted(new) == list(range(1, 51))
    assert stored == batch


_examples = itertools.count(1)
_quantity = st.none() | st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(1, 1, 2),  # noqa: DTZ001 (made aware below)
                max_value=datetime(9999, 12, 30),  # noqa: DTZ001
            ),
            st.integers(min_value=-14 * 60, max_value=14 * 60),
            _quantity,
            _quantity,
            _quantity,
            _quantity,
            _quantity,
            _quantity,
        ),
        min_size=1,
        max_size=30,
    ),
    received_at=st.datetimes(
        min_value=datetime(2000, 1, 1),  # noqa: DTZ001
        max_value=datetime(2100, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
)
async def test_readings_known_new_come_back_exactly_as_appended(
    store: Store, values: list[tuple[object, ...]], received_at: datetime
) -> None:
    """The fast path (on PostgreSQL a binary COPY the store encodes itself): any instant to the microsecond, any
    offset, any quantity present or absent, and the time received, as they went in."""
    tracker_id = await new_tracker(store, serial=f"T-{next(_examples)}")
    batch = [
        Reading(
            seq=seq,
            device_time=moment.replace(tzinfo=UTC),  # type: ignore[attr-defined]
            utc_offset_min=offset,  # type: ignore[arg-type]
            temperature_c=t,  # type: ignore[arg-type]
            humidity_pct=h,  # type: ignore[arg-type]
            pressure_kpa=p,  # type: ignore[arg-type]
            latitude=lat,  # type: ignore[arg-type]
            longitude=lon,  # type: ignore[arg-type]
            battery_pct=b,  # type: ignore[arg-type]
        )
        for seq, (moment, offset, t, h, p, lat, lon, b) in enumerate(values, start=1)
    ]
    async with store.transaction() as tx:
        await tx.append_readings(tracker_id, batch, received_at=received_at)
    async with store.transaction() as tx:
        stored = await tx.readings_between(tracker_id, datetime(1, 1, 1, tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
        if store.engine == "postgresql":
            conn: Any = tx._conn  # type: ignore[attr-defined]
            received = await conn.fetch("SELECT DISTINCT received_at FROM readings WHERE tracker_id = $1", tracker_id)
            assert [row[0] for row in received] == [received_at]
    assert sorted(stored, key=lambda r: r.seq) == batch


_STEPS = [timedelta(minutes=1), timedelta(seconds=10, microseconds=7), timedelta(microseconds=1), timedelta(0)]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    runs=st.lists(
        st.tuples(
            st.datetimes(
                min_value=datetime(1, 12, 1),  # noqa: DTZ001 (made aware below; 4 runs of 12 steps back stay in range)
                max_value=datetime(9999, 2, 1),  # noqa: DTZ001
            ),
            st.sampled_from(_STEPS) | st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(days=3)),
            st.integers(min_value=1, max_value=12),
        ),
        min_size=1,
        max_size=4,
    )
)
async def test_a_loggers_evenly_spaced_readings_come_back_at_their_instants(
    store: Store, runs: list[tuple[datetime, timedelta, int]]
) -> None:
    """Readings a fixed interval apart (the usual log, whose times the PostgreSQL COPY steps through by adding
    the interval), runs of several intervals one after the other, with odd microseconds, a repeated time and
    steps back: each comes back at its own instant."""
    tracker_id = await new_tracker(store, serial=f"T-{next(_examples)}")
    moments: list[datetime] = []
    for start, step, count in runs:  # a run goes on from the last one's end, or starts apart from it, as drawn
        first = moments[-1] + step if moments and start.microsecond % 2 else start.replace(tzinfo=UTC)
        moments.extend(first + step * index for index in range(count))
    batch = [
        Reading(seq=seq, device_time=moment, utc_offset_min=60, temperature_c=5.0)
        for seq, moment in enumerate(moments, start=1)
    ]
    async with store.transaction() as tx:
        await tx.append_readings(tracker_id, batch, received_at=NOW)
    async with store.transaction() as tx:
        stored = await tx.readings_between(tracker_id, datetime(1, 1, 1, tzinfo=UTC), datetime.max.replace(tzinfo=UTC))
    assert sorted(stored, key=lambda r: r.seq) == batch


async def test_a_temperature_loggers_readings_come_back_as_appended_beside_others(store: Store) -> None:
    """The usual logger row (temperature alone, on PostgreSQL a COPY row of its own shape) among rows of every
    quantity, of none and of a position without temperature."""
    tracker_id = await new_tracker(store)
    shapes: list[dict[str, float | None]] = [
        {"temperature_c": 4.25},
        {"temperature_c": -0.0},
        {},
        {"temperature_c": 5.5, "humidity_pct": 61.0, "pressure_kpa": 101.3, "latitude": 52.5, "longitude": 13.4,
         "battery_pct": 88.0},
        {"latitude": 48.1, "longitude": 11.6},
        {"temperature_c": 1e300},
    ]  # fmt: skip
    batch = [
        Reading(seq=seq, device_time=NOW + timedelta(minutes=seq), **shape)  # type: ignore[arg-type]
        for seq, shape in enumerate(shapes * 3, start=1)
    ]
    async with store.transaction() as tx:
        await tx.append_readings(tracker_id, batch, received_at=NOW)
        stored = await tx.readings_between(tracker_id, NOW, NOW + timedelta(days=1))
    assert stored == batch


async def test_device_time_keeps_the_instant_and_the_devices_utc_offset(store: Store) -> None:
    tracker_id = await new_tracker(store)
    local = datetime(2026, 3, 1, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    reading = Reading(seq=1, device_time=local.astimezone(UTC), utc_offset_min=330, temperature_c=-20.25)
    async with store.transaction() as tx:
        await tx.insert_readings(tracker_id, [reading], received_at=NOW)
        (stored,) = await tx.readings_between(tracker_id, NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert stored.device_time == local
    assert stored.utc_offset_min == 330


async def test_a_repeated_reading_is_ignored_not_an_error(store: Store) -> None:
    tracker_id = await new_tracker(store)
    async with store.transaction() as tx:
        await tx.insert_readings(tracker_id, readings(10), received_at=NOW)
    changed = [Reading(seq=5, device_time=NOW, temperature_c=99.0)]
    async with store.transaction() as tx:
        new = await tx.insert_readings(tracker_id, readings(15) + changed, received_at=NOW)
        stored = await tx.readings_between(tracker_id, NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert sorted(new) == list(range(11, 16))
    assert [r.temperature_c for r in stored if r.seq == 5] == [readings(10)[4].temperature_c]
    assert len(stored) == 15


async def test_the_same_sequence_number_on_two_trackers_is_two_readings(store: Store) -> None:
    first, second = await new_tracker(store, "A"), await new_tracker(store, "B")
    async with store.transaction() as tx:
        await tx.insert_readings(first, readings(3), received_at=NOW)
        await tx.insert_readings(second, readings(3), received_at=NOW)
        assert (await tx.count_readings(first), await tx.count_readings(second)) == (3, 3)
        assert await tx.count_readings() == 6


async def test_an_empty_batch_inserts_nothing(store: Store) -> None:
    tracker_id = await new_tracker(store)
    async with store.transaction() as tx:
        assert await tx.insert_readings(tracker_id, [], received_at=NOW) == []


async def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    tracker_id = await new_tracker(store)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.insert_readings(tracker_id, readings(5), received_at=NOW)
            raise RuntimeError("use case failed after the insert")
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker_id) == 0


async def test_readings_between_selects_a_half_open_device_time_range(store: Store) -> None:
    tracker_id = await new_tracker(store)
    async with store.transaction() as tx:
        await tx.insert_readings(tracker_id, readings(10), received_at=NOW)
        window = await tx.readings_between(tracker_id, NOW + timedelta(minutes=3), NOW + timedelta(minutes=6))
    assert [r.seq for r in window] == [3, 4, 5]


async def test_inserting_the_same_100000_readings_twice_leaves_exactly_100000(store: Store) -> None:
    tracker_id = await new_tracker(store)
    batch = readings(100_000)
    for _ in range(2):
        async with store.transaction() as tx:
            await tx.insert_readings(tracker_id, batch, received_at=NOW)
    async with store.transaction() as tx:
        assert await tx.count_readings(tracker_id) == 100_000


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(st.integers(min_value=1, max_value=60), max_size=40), min_size=1, max_size=6))
async def test_any_sequence_of_overlapping_batches_stores_each_reading_once(
    store: Store, batches: list[list[int]]
) -> None:
    async with store.transaction() as tx:
        tracker = await tx.get_tracker("P") or await tx.create_tracker(
            serial="P", secret="x", organisation_id=None, model=None, now=NOW
        )
        held = {r.seq for r in await tx.readings_between(tracker.id, NOW, NOW + timedelta(days=1))}
    catalogue = {r.seq: r for r in readings(60)}
    for seqs in batches:
        async with store.transaction() as tx:
            new = await tx.insert_readings(tracker.id, [catalogue[s] for s in seqs], received_at=NOW)
        assert set(new) == set(seqs) - held
        held |= set(seqs)
    async with store.transaction() as tx:
        stored = await tx.readings_between(tracker.id, NOW, NOW + timedelta(days=1))
    assert stored == [catalogue[s] for s in sorted(held)]


async def test_the_audit_trail_is_a_hash_chain_in_order(store: Store) -> None:
    async with store.transaction() as tx:
        for n in range(3):
            await tx.append_audit(actor="admin", action="create", subject=f"tracker:{n}", detail="{}", now=NOW)
    async with store.transaction() as tx:
        entries = await tx.audit_entries()
    assert [e.id for e in entries] == [1, 2, 3]
    assert entries[1].prev_hash == entries[0].hash
    assert first_broken_entry(entries) is None


async def test_audit_entries_of_concurrent_transactions_are_chained_in_commit_order_without_gaps(
    store: Store,
) -> None:
    """Entries are chained when their transaction commits: transactions auditing at once, some rolled back
    after auditing, leave one gap-free chain the verifier accepts, with each committed transaction's entries
    together and in the order it appended them, and nothing of the rolled-back ones."""
    committed: list[int] = []

    async def one(number: int) -> None:
        with contextlib.suppress(RuntimeError):
            async with store.transaction() as tx:
                for step in range(3):
                    detail = f'{{"step": {step}}}'
                    await tx.append_audit(actor="admin", action="create", subject=f"x:{number}", detail=detail, now=NOW)
                    await asyncio.sleep(0)  # let the others interleave their appends
                if number % 4 == 3:
                    raise RuntimeError("rolled back after auditing")
            committed.append(number)

    await asyncio.gather(*(one(number) for number in range(12)))
    async with store.transaction() as tx:
        entries = await tx.audit_entries()
        head = await tx.audit_head()
    assert first_broken_entry(entries) is None
    assert [entry.id for entry in entries] == list(range(1, 3 * len(committed) + 1))
    # In the order the transactions committed, which is not always the order their callers resumed in.
    order = [entry.subject for entry in entries[::3]]
    assert sorted(order) == sorted(f"x:{number}" for number in committed)
    assert [(entry.subject, entry.detail) for entry in entries] == [
        (subject, f'{{"step": {step}}}') for subject in order for step in range(3)
    ]
    assert head == (entries[-1].id, entries[-1].hash)


async def test_a_transaction_reads_its_own_audit_entries_before_it_commits(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.append_audit(actor="admin", action="create", subject="x", detail="{}", now=NOW)
        head = await tx.audit_head()
        await tx.append_audit(actor="admin", action="create", subject="y", detail="{}", now=NOW)
        entries = await tx.audit_entries()
    assert head is not None and head[0] == 1
    assert [(entry.id, entry.subject) for entry in entries] == [(1, "x"), (2, "y")]
    assert first_broken_entry(entries) is None


async def test_the_audit_trail_refuses_changes(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.append_audit(actor="admin", action="create", subject="x", detail="{}", now=NOW)
    conn_store = store
    with pytest.raises(Exception, match="append-only"):
        async with conn_store.transaction() as tx:
            await tx._conn.execute("UPDATE audit_log SET actor = 'mallory'")  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="append-only"):
        async with conn_store.transaction() as tx:
            await tx._conn.execute("DELETE FROM audit_log")  # type: ignore[attr-defined]


async def test_a_transaction_cancelled_at_any_point_leaves_the_store_usable(store: Store) -> None:
    """A request cancelled mid-transaction (a browser leaving an event stream) must not leave the connection
    inside its transaction: every later transaction still begins, and nothing of the cancelled one is kept."""

    async def hold() -> None:
        async with store.transaction() as tx:
            await tx.create_organisation(
                name=f"Cancelled {asyncio.current_task()}", kind="shipper", now=datetime.now(UTC)
            )
            await asyncio.sleep(3600)

    for steps in range(12):
        task = asyncio.create_task(hold())
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        async with store.transaction() as tx:
            assert await tx.list_organisations() == []


async def test_notices_published_together_are_stored_in_order_with_a_delivery_per_subscribed_webhook(
    store: Store,
) -> None:
    """One publication of many notices: a notification per notice and recipient (a recipient named twice gets
    one), in notice order then recipient order, in commit order by position; each subscribed live webhook of a
    recipient gets one pending delivery of each, and nobody else's."""
    async with store.transaction() as tx:
        first = await tx.create_organisation(name="First", kind="shipper", now=NOW)
        second = await tx.create_organisation(name="Second", kind="carrier", now=NOW)
        hook = await tx.create_webhook(
            organisation_id=second.id, url="https://example.org/a", kinds=["alarm.raised"], secret="s", now=NOW
        )
        other_kind = await tx.create_webhook(
            organisation_id=second.id, url="https://example.org/b", kinds=["eta.at_risk"], secret="s", now=NOW
        )
        notices = [
            Notice(organisation_ids=(second.id, first.id, second.id), subject=f"alarm:{n}", payload={"n": n})
            for n in range(3)
        ]
        ids = await tx.publish_all("alarm.raised", notices, now=NOW)
        assert await tx.publish_all("alarm.raised", [], now=NOW) == []
    async with store.transaction() as tx:
        told_first = await tx.notifications_after_position(first.id, after=0)
        told_second = await tx.notifications_after_position(second.id, after=0)
        delivered = await tx.deliveries(hook.id)
        not_delivered = await tx.deliveries(other_kind.id)
    assert ids == sorted(ids) and len(ids) == 6
    by_id = {n.id: n for n in told_first + told_second}
    assert [(by_id[i].subject, by_id[i].organisation_id) for i in ids] == [
        (f"alarm:{n}", organisation) for n in range(3) for organisation in sorted((first.id, second.id))
    ]
    assert [n.payload for n in told_second] == [{"n": 0}, {"n": 1}, {"n": 2}]
    positions = [by_id[i].position or 0 for i in ids]
    assert 0 not in positions and positions == sorted(positions)
    assert sorted(d.notification_id for d in delivered) == [n.id for n in told_second]
    assert {d.status for d in delivered} == {"pending"}
    assert not_delivered == []


async def test_the_sync_state_comes_with_the_span_the_trackers_assignments_cover(store: Store) -> None:
    shipper = await make_org(store)
    tracker = await make_tracker(store, shipper.id)
    first, second = await make_shipment(store, owner=shipper.id), await make_shipment(store, owner=shipper.id)
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)

    async def watched() -> Watched | None:
        async with store.transaction() as tx:
            state, span = await tx.sync_state_watched(tracker.id)
            assert state == await tx.sync_state(tracker.id)
            return span

    assert await watched() is None, "never assigned"
    await assign(store, second.id, tracker.id, start + timedelta(days=3), start + timedelta(days=5))
    await assign(store, first.id, tracker.id, start, start + timedelta(days=1))
    assert await watched() == Watched(starts_at=start, ends_at=start + timedelta(days=5))
    await assign(store, first.id, tracker.id, start + timedelta(days=9))
    assert await watched() == Watched(starts_at=start, ends_at=None), "an open assignment"


async def test_the_sync_state_says_whether_a_shipment_of_the_tracker_has_a_decision_a_batch_could_change(
    store: Store,
) -> None:
    shipper = await make_org(store)
    tracker = await make_tracker(store, shipper.id)
    decided, other = await make_shipment(store, owner=shipper.id), await make_shipment(store, owner=shipper.id)
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    await assign(store, decided.id, tracker.id, start, start + timedelta(days=1))

    async def flag() -> bool:
        async with store.transaction() as tx:
            _, span = await tx.sync_state_watched(tracker.id)
            assert span is not None
            return span.decided

    async def sign(shipment_id: int, seq: int) -> int:
        async with store.transaction() as tx:
            return await tx.insert_decision(
                shipment_id=shipment_id, seq=seq, organisation_id=shipper.id, outcome="release", reason=None,
                comment=None, recommendation="release", snapshot_sha256="a" * 64, snapshot="{}",
                record_sha256="b" * 64, requires_approval=False, created_at=start + timedelta(days=2),
            )  # fmt: skip

    assert not await flag(), "no decision yet"
    await sign(other.id, 1)
    assert not await flag(), "a decision of a shipment the tracker never watched"
    decision_id = await sign(decided.id, 1)
    assert await flag()
    async with store.transaction() as tx:
        await tx.mark_decision_changed(decision_id, at=start + timedelta(days=3), sha256="c" * 64)
    assert not await flag(), "its evaluation changed since: a batch has nothing left to mark"
    await sign(decided.id, 2)
    assert await flag(), "a new decision on the changed evaluation"


def test_a_span_meets_what_touches_it_and_nothing_past_its_end() -> None:
    start = datetime(2026, 3, 1, 8, tzinfo=UTC)
    span = Watched(starts_at=start, ends_at=start + timedelta(hours=1))
    assert span.meets(start - timedelta(hours=1), start)
    assert span.meets(start + timedelta(minutes=59), start + timedelta(hours=3))
    assert not span.meets(start + timedelta(hours=1), start + timedelta(hours=2)), "the end is not covered"
    assert not span.meets(start - timedelta(hours=2), start - timedelta(microseconds=1))
    assert Watched(starts_at=start, ends_at=None).meets(start + timedelta(days=900), start + timedelta(days=901))
