"""The readings' months on each engine: made ahead, removed whole, the seals retention keeps, and the migration
that partitions a populated readings table (PostgreSQL; SQLite's readings stay one table and behave the same)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from coldchain.domain.readings import Reading
from coldchain.domain.retention import ReadingsSeal, RetentionShipment
from coldchain.domain.sync import SyncConflict
from coldchain.storage import Engine, Store, open_store
from coldchain.storage.migrations import discover_migrations
from coldchain.storage.postgres import PostgresStore
from tests.factories import assign, make_org, make_shipment, make_tracker

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
JANUARY, FEBRUARY, MARCH = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)
EVER = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


def at(day: date, *, minutes: float = 0) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(minutes=minutes)


def log(first_seq: int, start: datetime, count: int, *, step: timedelta = timedelta(hours=6)) -> list[Reading]:
    return [
        Reading(seq=first_seq + n, device_time=start + n * step, utc_offset_min=60, temperature_c=4.0 + n % 5 / 10)
        for n in range(count)
    ]


async def append(store: Store, tracker_id: int, readings: Sequence[Reading]) -> None:
    async with store.transaction() as tx:
        await tx.append_readings(tracker_id, readings, received_at=NOW)


async def held(store: Store, tracker_id: int) -> list[Reading]:
    async with store.transaction() as tx:
        return await tx.readings_between(tracker_id, *EVER)


async def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    """Raw SQL on the store's own connection, as someone with database access could run it."""
    async with store.transaction() as tx:
        conn: Any = tx._conn  # type: ignore[attr-defined]
        if store.engine == "postgresql":
            return [tuple(row) for row in await conn.fetch(sql)]
        async with conn.execute(sql) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]


async def partitions(store: Store) -> dict[str, int]:
    """PostgreSQL: each partition of readings with the rows it holds."""
    assert isinstance(store, PostgresStore)
    async with store.pool.acquire() as conn:
        names = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'readings'::regclass"
        )
        return {row["relname"]: await conn.fetchval(f"SELECT count(*) FROM {row['relname']}") for row in names}


# --- months made ahead ---------------------------------------------------------------------------------------------


async def test_months_are_made_once_and_asking_again_makes_none(store: Store) -> None:
    async with store.transaction() as tx:
        first = await tx.prepare_reading_months([MARCH, JANUARY, FEBRUARY, JANUARY])
    async with store.transaction() as tx:
        again = await tx.prepare_reading_months([JANUARY, FEBRUARY, MARCH])
    assert again == []
    if store.engine == "postgresql":
        assert first == [JANUARY, FEBRUARY, MARCH]
        assert {"readings_2026_01", "readings_2026_02", "readings_2026_03"} <= set(await partitions(store))
    else:
        assert first == []  # one table: every month is ready


async def test_readings_of_a_month_that_waited_in_the_default_partition_move_into_it_when_it_is_made(
    store: Store,
) -> None:
    tracker = await make_tracker(store, None)
    waiting = log(1, at(JANUARY, minutes=30), 8)
    await append(store, tracker.id, waiting)
    if store.engine == "postgresql":
        assert (await partitions(store))["readings_default"] == 8

    async with store.transaction() as tx:
        await tx.prepare_reading_months([JANUARY])

    assert await held(store, tracker.id) == waiting
    if store.engine == "postgresql":
        placed = await partitions(store)
        assert (placed["readings_default"], placed["readings_2026_01"]) == (0, 8)


async def test_two_processes_making_the_same_months_at_once_make_each_month_once(database_url: str) -> None:
    stores = [await open_store(database_url, pool_size=2) for _ in range(2)]
    months = [date(2031, month, 1) for month in range(1, 13)]

    async def make(store: Store) -> list[date]:
        async with store.transaction() as tx:
            return await tx.prepare_reading_months(months)

    try:
        made = await asyncio.gather(*(make(store) for store in stores))
    finally:
        for store in stores:
            await store.close()
    if database_url.startswith("postgresql"):
        assert sorted(made[0] + made[1]) == months
    else:
        assert made == [[], []]


# --- months removed --------------------------------------------------------------------------------------------------


async def test_removing_a_month_removes_exactly_its_readings_and_says_how_many(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.prepare_reading_months([JANUARY, FEBRUARY, MARCH])
    tracker = await make_tracker(store, None)
    edge = at(FEBRUARY) - timedelta(microseconds=1)
    january = [*log(1, at(JANUARY), 5), Reading(seq=6, device_time=edge, temperature_c=5.0)]
    rest = [Reading(seq=7, device_time=at(FEBRUARY), temperature_c=5.0), *log(8, at(FEBRUARY, minutes=1), 5)]
    await append(store, tracker.id, january + rest)

    async with store.transaction() as tx:
        ending_by_march = await tx.reading_months(ending_by=at(MARCH))
        ending_by_february = await tx.reading_months(ending_by=at(FEBRUARY) + timedelta(days=27))
        removed = await tx.remove_reading_month(JANUARY)
        again = await tx.remove_reading_month(JANUARY)
        left = await tx.reading_months(ending_by=at(MARCH))

    assert (ending_by_march, ending_by_february) == ([JANUARY, FEBRUARY], [JANUARY])
    assert (removed, again, left) == (6, 0, [FEBRUARY])
    assert await held(store, tracker.id) == rest


async def test_a_month_removed_in_a_transaction_that_fails_is_still_there(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.prepare_reading_months([JANUARY])
    tracker = await make_tracker(store, None)
    await append(store, tracker.id, log(1, at(JANUARY), 4))
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            assert await tx.remove_reading_month(JANUARY) == 4
            raise RuntimeError("the retention run failed after the removal")
    assert len(await held(store, tracker.id)) == 4


async def test_the_shipments_of_a_month_are_those_whose_trackers_logged_in_it_while_assigned(store: Store) -> None:
    owner = await make_org(store)
    first, second, idle = [await make_shipment(store, owner=owner.id) for _ in range(3)]
    trackers = [await make_tracker(store, owner.id) for _ in range(3)]
    await assign(store, first.id, trackers[0].id, at(JANUARY), at(FEBRUARY, minutes=60))
    await assign(store, second.id, trackers[1].id, at(FEBRUARY))
    await assign(store, idle.id, trackers[2].id, at(JANUARY))  # assigned, but logged nothing in January
    await append(store, trackers[0].id, log(1, at(JANUARY, minutes=10), 3))
    await append(store, trackers[1].id, log(1, at(JANUARY, minutes=10), 3))  # before its assignment began
    await append(store, trackers[1].id, log(4, at(FEBRUARY, minutes=10), 3))
    async with store.transaction() as tx:
        seal = ReadingsSeal(
            shipment_id=first.id, readings=3, readings_sha256="0" * 64, first=None, last=None, sealed_at=NOW
        )
        await tx.save_readings_seal(seal)
        january = await tx.shipments_with_readings(at(JANUARY), at(FEBRUARY))
        february = await tx.shipments_with_readings(at(FEBRUARY), at(MARCH))

    assert january == [RetentionShipment(shipment_id=first.id, status="planned", open_assignments=0, sealed=True)]
    assert february == [RetentionShipment(shipment_id=second.id, status="planned", open_assignments=1, sealed=False)]


# --- seals -----------------------------------------------------------------------------------------------------------


async def test_a_seal_is_kept_once_and_the_database_refuses_to_change_it(store: Store) -> None:
    shipment = await make_shipment(store, owner=(await make_org(store)).id)
    first = Reading(seq=1, device_time=at(JANUARY), utc_offset_min=-300, temperature_c=-20.5)
    seal = ReadingsSeal(
        shipment_id=shipment.id, readings=2, readings_sha256="a" * 64, first=first, last=first, sealed_at=NOW
    )
    async with store.transaction() as tx:
        assert await tx.save_readings_seal(seal) is True
        assert await tx.save_readings_seal(ReadingsSeal(**{**_fields(seal), "readings_sha256": "b" * 64})) is False
        assert await tx.readings_seal(shipment.id) == seal
        assert await tx.readings_seal(shipment.id + 1) is None
    with pytest.raises((sqlite3.IntegrityError, asyncpg.RaiseError), match="append-only"):
        await rows(store, f"UPDATE readings_seals SET readings = 3 WHERE shipment_id = {shipment.id}")
    with pytest.raises((sqlite3.IntegrityError, asyncpg.RaiseError), match="append-only"):
        await rows(store, f"DELETE FROM readings_seals WHERE shipment_id = {shipment.id}")


def _fields(seal: ReadingsSeal) -> dict[str, Any]:
    return {name: getattr(seal, name) for name in seal.__struct_fields__}


# --- appending readings known new --------------------------------------------------------------------------------


async def test_appended_readings_come_back_as_they_were_across_months(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.prepare_reading_months([JANUARY, FEBRUARY])
    tracker = await make_tracker(store, None)
    readings = log(1, at(JANUARY, minutes=7), 300)  # 75 days: January, February and March (default partition)
    await append(store, tracker.id, readings)
    assert await held(store, tracker.id) == readings
    if store.engine == "postgresql":
        placed = await partitions(store)
        assert (placed["readings_2026_01"], placed["readings_2026_02"], placed["readings_default"]) == (124, 112, 64)


async def test_appending_a_reading_already_held_fails_the_transaction_where_the_keys_can_tell(store: Store) -> None:
    tracker = await make_tracker(store, None)
    reading = log(1, at(JANUARY), 1)
    await append(store, tracker.id, reading)
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await append(store, tracker.id, reading)
    assert await held(store, tracker.id) == reading


async def test_the_careful_insert_ignores_a_held_number_whatever_its_device_time(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.prepare_reading_months([JANUARY, FEBRUARY])
    tracker = await make_tracker(store, None)
    january = log(1, at(JANUARY), 3)
    moved = [Reading(seq=2, device_time=at(FEBRUARY), temperature_c=9.0)]
    twice = [Reading(seq=4, device_time=at(FEBRUARY), temperature_c=1.0), Reading(seq=4, device_time=at(JANUARY))]
    async with store.transaction() as tx:
        assert sorted(await tx.insert_readings(tracker.id, january, received_at=NOW)) == [1, 2, 3]
    async with store.transaction() as tx:
        assert await tx.insert_readings(tracker.id, moved + twice, received_at=NOW) == [4]
    assert await held(store, tracker.id) == [*january, twice[0]]


async def test_held_readings_are_found_by_number_in_one_look_whatever_their_months(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.prepare_reading_months([JANUARY, FEBRUARY])
    tracker = await make_tracker(store, None)
    readings = [*log(1, at(JANUARY), 3), *log(10, at(FEBRUARY), 3), *log(1_000_000, at(MARCH), 1)]
    await append(store, tracker.id, readings)
    refused = Reading(seq=500, device_time=at(JANUARY), temperature_c=float("nan"))
    async with store.transaction() as tx:
        await tx.quarantine_readings(tracker.id, [(refused, "temperature_c is nan")], received_at=NOW)
        found = await tx.held_readings(tracker.id, [3, 10, 11, 99, 500, 1_000_000, 3])
    assert sorted(found) == [3, 10, 11, 500, 1_000_000]
    assert found[10] == (readings[3], None)
    assert found[1_000_000] == (readings[-1], None)
    assert found[500][1] == "temperature_c is nan"


# --- the migration -------------------------------------------------------------------------------------------------


async def test_readings_held_before_partitioning_come_through_the_migration_every_one(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine: Engine = "sqlite" if empty_database_url.startswith("sqlite") else "postgresql"
    module = "sqlite" if engine == "sqlite" else "postgres"
    before = [migration for migration in discover_migrations(engine) if migration.version < 18]
    monkeypatch.setattr(f"coldchain.storage.{module}.discover_migrations", lambda _engine: before)
    now = datetime.now(UTC)
    this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    old = await open_store(empty_database_url, pool_size=2)
    try:
        owner = await make_org(old)
        shipment = await make_shipment(old, owner=owner.id)
        first, second = await make_tracker(old, owner.id), await make_tracker(old, owner.id)
        assignment = await assign(old, shipment.id, first.id, this_month - timedelta(days=90))
        readings = {
            first.id: log(1, this_month - timedelta(days=70), 400),  # three months, into this one
            second.id: [
                *log(1, datetime(1985, 6, 1, tzinfo=UTC), 2),  # a clock far off: the default partition
                *log(3, this_month - timedelta(days=10), 4),
            ],
        }
        for tracker_id, logged in readings.items():
            await append(old, tracker_id, logged)
        async with old.transaction() as tx:
            nan = Reading(seq=900, device_time=this_month, temperature_c=float("nan"))
            await tx.quarantine_readings(second.id, [(nan, "temperature_c is nan")], received_at=now)
            copy = Reading(seq=1, device_time=this_month, temperature_c=1.0)
            await tx.record_sync_conflict(
                first.id,
                SyncConflict(
                    seq=1, received_at=now, held_as="reading", held=readings[first.id][0], sent=copy, sent_reason=None
                ),
            )
        stamp = f"'{now.isoformat(timespec='microseconds')}'"
        key = f"{assignment.id}, {shipment.id}"
        evaluation = (
            "INSERT INTO evaluation_streams (assignment_id, shipment_id, tracker_id, profile_id, profile_version,"
            f" state, readings, updated_at) VALUES ({key}, {first.id}, '{shipment.profile_id}',"
            f" {shipment.profile_version}, {'x' if engine == 'sqlite' else ''}'00', 400, {stamp})",
            f"INSERT INTO budget_spent (assignment_id, shipment_id, rule, spent_min) VALUES ({key}, 'lifetime', 3.5)",
            "INSERT INTO excursions (assignment_id, shipment_id, event_key, rule, metric, direction, threshold,"
            " started_at, start_seq, duration_min, uncredited_min, peak, degree_min, detected_at, updated_at)"
            f" VALUES ({key}, 'heat:1', 'heat', 'temperature', 'above', 8.0, {stamp}, 1, 30, 0, 9.5, 20, {stamp},"
            f" {stamp})",
            "INSERT INTO alarms (assignment_id, shipment_id, event_key, rule, action, metric, direction, threshold,"
            " mode, scope, delay_min, began_at, began_seq, met_at, detected_at, late, updated_at)"
            f" VALUES ({key}, 'heat:1', 'heat', 'alarm', 'temperature', 'above', 8.0, 'instant', 'shipment', 0,"
            f" {stamp}, 1, {stamp}, {stamp}, {'0' if engine == 'sqlite' else 'false'}, {stamp})",
        )
        for statement in evaluation:
            await rows(old, statement)
        evaluation_before = await _evaluation_rows(old)
    finally:
        await old.close()
    monkeypatch.undo()

    migrated = await open_store(empty_database_url, pool_size=2, migrate=False)
    try:
        assert [label for label in await migrated.migrate() if label.startswith("0018")] == [
            "0018_partitioned_readings"
        ]
        for tracker_id, logged in readings.items():
            assert await held(migrated, tracker_id) == sorted(logged, key=lambda r: (r.device_time, r.seq))
        async with migrated.transaction() as tx:
            assert await tx.count_readings() == 406
            assert [r.seq for r, _ in await tx.quarantined_readings(second.id)] == [900]
            assert [c.sent for c in await tx.sync_conflicts(first.id)] == [copy]
        assert await _evaluation_rows(migrated) == evaluation_before
        if engine == "postgresql":
            placed = await partitions(migrated)
            assert placed["readings_default"] == 2
            assert sum(placed.values()) == 406
            months = {f"readings_{(this_month + timedelta(days=31 * n)).strftime('%Y_%m')}" for n in range(4)}
            assert months <= set(placed)  # this month and the three after it
    finally:
        await migrated.close()


async def _evaluation_rows(store: Store) -> list[list[tuple[Any, ...]]]:
    return [
        await rows(store, "SELECT assignment_id, shipment_id, readings FROM evaluation_streams"),
        await rows(store, "SELECT assignment_id, shipment_id, rule, spent_min FROM budget_spent"),
        await rows(store, "SELECT id, assignment_id, shipment_id, event_key, peak FROM excursions"),
        await rows(store, "SELECT id, assignment_id, shipment_id, event_key, rule FROM alarms"),
    ]


async def test_quarantine_keeps_the_first_copy_of_a_number_and_ignores_numbers_it_holds(store: Store) -> None:
    tracker = await make_tracker(store, None)
    faults = [
        (Reading(seq=n, device_time=at(JANUARY, minutes=n), temperature_c=-127.0), "temperature_c -127.0 is outside")
        for n in (5, 3, 9)
    ]
    again = (Reading(seq=3, device_time=at(FEBRUARY), temperature_c=float("nan")), "temperature_c is nan")
    async with store.transaction() as tx:
        first = await tx.quarantine_readings(tracker.id, [*faults, again], received_at=NOW)
        second = await tx.quarantine_readings(tracker.id, [again, faults[0]], received_at=NOW)
        kept = await tx.quarantined_readings(tracker.id)
    assert (sorted(first), second) == ([3, 5, 9], [])
    assert kept == sorted(faults, key=lambda fault: fault[0].seq)
