from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from tracker_sim.logbook import AcknowledgementAheadError, Logbook, Measurement, open_logbook

CET = timezone(timedelta(hours=1))
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=CET)
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def measurement(i: int) -> Measurement:
    return Measurement(
        device_time=T0 + timedelta(minutes=5 * i),
        temperature_c=4.0 + i / 10,
        humidity_pct=50.0,
        pressure_kpa=101.2,
        latitude=52.5 + i / 1000,
        longitude=13.4,
        battery_pct=99.5,
    )


async def test_sequence_numbers_start_at_one_and_increase_by_one(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        seqs = [await logbook.log(measurement(i)) for i in range(3)]
        more = await logbook.log_many(measurement(i) for i in range(3, 6))
    assert seqs == [1, 2, 3]
    assert list(more) == [4, 5, 6]


async def test_a_reading_keeps_its_values_and_its_device_time_with_offset(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log(measurement(1))
        await logbook.log(Measurement(device_time=T0))
        first, bare = await logbook.retained()
    assert first.device_time == "2026-03-01T10:05:00.000+01:00"
    assert (first.temperature_c, first.latitude, first.battery_pct) == (4.1, 52.501, 99.5)
    assert bare.temperature_c is None
    assert bare.latitude is None


async def test_a_naive_device_time_is_refused(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        with pytest.raises(ValueError, match="naive"):
            await logbook.log(Measurement(device_time=datetime(2026, 3, 1, 10, 0)))  # noqa: DTZ001
        assert (await logbook.status()).last_seq == 0


async def test_pending_is_oldest_first_and_capped(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log_many(measurement(i) for i in range(10))
        batch = await logbook.pending(4)
    assert [r.seq for r in batch] == [1, 2, 3, 4]


async def test_acknowledgement_removes_readings_from_pending(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log_many(measurement(i) for i in range(10))
        await logbook.acknowledge(acked_through=4, delivered=range(1, 5), now=NOW)
        assert [r.seq for r in await logbook.pending(100)] == [5, 6, 7, 8, 9, 10]
        status = await logbook.status()
    assert (status.acked_through, status.pending, status.retained) == (4, 6, 10)


async def test_readings_the_service_holds_above_a_gap_wait_while_the_missing_ones_are_resent(
    tmp_path: Path,
) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log_many(measurement(i) for i in range(10))
        await logbook.acknowledge(acked_through=2, missing=[(3, 4)], delivered=range(1, 9), now=NOW)
        assert [r.seq for r in await logbook.pending(100)] == [3, 4, 9, 10]
        await logbook.acknowledge(acked_through=8, delivered=[3, 4], now=NOW)
        assert [r.seq for r in await logbook.pending(100)] == [9, 10]


async def test_a_reading_reported_missing_later_is_sent_again(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log_many(measurement(i) for i in range(6))
        await logbook.acknowledge(acked_through=1, missing=[(2, 2)], delivered=[1, 3, 4, 5], now=NOW)
        assert [r.seq for r in await logbook.pending(10)] == [2, 6]
        # The service lost 4 and 5 since (say it was restored from a backup): it reports them missing.
        await logbook.acknowledge(acked_through=3, missing=[(4, 5)], delivered=[2], now=NOW)
        assert [r.seq for r in await logbook.pending(10)] == [4, 5, 6]


async def test_an_acknowledgement_that_goes_back_queues_the_retained_readings_again(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log_many(measurement(i) for i in range(6))
        await logbook.acknowledge(acked_through=6, delivered=range(1, 7), now=NOW)
        await logbook.acknowledge(acked_through=3, now=NOW)
        assert [r.seq for r in await logbook.pending(10)] == [4, 5, 6]
        assert (await logbook.status()).acked_through == 3


async def test_an_acknowledgement_beyond_the_last_logged_reading_is_an_error(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log_many(measurement(i) for i in range(3))
        with pytest.raises(AcknowledgementAheadError, match="only 3"):
            await logbook.acknowledge(acked_through=500, now=NOW)
        assert (await logbook.status()).acked_through == 0


async def test_pruning_waits_for_the_retention_period(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log_many(measurement(i) for i in range(10))
        await logbook.acknowledge(acked_through=6, delivered=range(1, 7), now=NOW)
        retention = timedelta(days=7)
        assert await logbook.prune(now=NOW + timedelta(days=6, hours=23), retention=retention) == 0
        assert await logbook.prune(now=NOW + timedelta(days=7), retention=retention) == 6
        remaining = [r.seq for r in await logbook.retained()]
    assert remaining == [7, 8, 9, 10]


async def test_pruning_never_deletes_an_unacknowledged_reading(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        await logbook.log_many(measurement(i) for i in range(5))
        # Held above a gap, but not acknowledged: must stay until the contiguous ack passes it.
        await logbook.acknowledge(acked_through=0, missing=[(1, 1)], delivered=range(1, 6), now=NOW)
        assert await logbook.prune(now=NOW + timedelta(days=365), retention=timedelta(0)) == 0
        assert len(await logbook.retained()) == 5


async def test_sequence_numbers_are_never_reused_after_pruning_everything(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with open_logbook(path) as logbook:
        await logbook.log_many(measurement(i) for i in range(5))
        await logbook.acknowledge(acked_through=5, delivered=range(1, 6), now=NOW)
        assert await logbook.prune(now=NOW, retention=timedelta(0)) == 5
        assert await logbook.retained() == []
        assert await logbook.log(measurement(5)) == 6
    async with open_logbook(path) as logbook:
        assert await logbook.log(measurement(6)) == 7


async def test_a_reopened_logbook_resumes_sequence_acknowledgement_and_queue(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with open_logbook(path) as logbook:
        await logbook.log_many(measurement(i) for i in range(8))
        await logbook.acknowledge(acked_through=3, missing=[(4, 4)], delivered=range(1, 7), now=NOW)
        await logbook.set_meta("trip", "T-1 reefer-road seed=0")
    logbook = await Logbook.open(path)
    try:
        status = await logbook.status()
        assert (status.last_seq, status.acked_through) == (8, 3)
        assert [r.seq for r in await logbook.pending(10)] == [4, 7, 8]
        assert await logbook.get_meta("trip") == "T-1 reefer-road seed=0"
        assert await logbook.get_meta("nothing") is None
        assert await logbook.log(measurement(8)) == 9
    finally:
        await logbook.close()


async def test_the_logbook_runs_in_wal_mode_with_full_synchronous_commits(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with open_logbook(path) as logbook:
        await logbook.log(measurement(0))
        async with logbook._db.execute("PRAGMA journal_mode") as cursor:
            journal = await cursor.fetchone()
        async with logbook._db.execute("PRAGMA synchronous") as cursor:
            synchronous = await cursor.fetchone()
    assert journal is not None
    assert journal[0] == "wal"
    assert synchronous is not None
    assert synchronous[0] == 2


async def test_pending_refuses_a_limit_below_one(tmp_path: Path) -> None:
    async with open_logbook(tmp_path / "log.db") as logbook:
        with pytest.raises(ValueError, match="limit"):
            await logbook.pending(0)
