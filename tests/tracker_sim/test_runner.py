from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests.tracker_sim.fake_service import FakeService
from tracker_sim.clock import AcceleratedClock
from tracker_sim.logbook import open_logbook
from tracker_sim.network import Connectivity, NetworkConditions
from tracker_sim.route import Waypoint
from tracker_sim.runner import run_tracker
from tracker_sim.scenarios import BUILTIN_SCENARIOS, Scenario
from tracker_sim.sync import SyncSettings, TrackerCredentials
from tracker_sim.trip import Trip
from tracker_sim.wire import rfc3339

TRACKER = TrackerCredentials(tracker_id="TRK-RUN", secret="run-secret")


def service() -> FakeService:
    return FakeService(secrets_by_tracker={TRACKER.tracker_id: TRACKER.secret})


class PowerCut(Exception):
    """The tracker stops dead in the middle of its trip."""


def quiet(message: str) -> None:
    return None


async def test_after_two_days_offline_the_tracker_catches_up_and_the_service_holds_every_reading(
    tmp_path: Path,
) -> None:
    fake = service()
    scenario = BUILTIN_SCENARIOS["multi-day-offline"]
    report = await run_tracker(
        scenario,
        TRACKER,
        logbook_path=tmp_path / "log.db",
        url="http://service.test",
        transport=fake.transport(),
        speed=None,
        seed=3,
        settings=SyncSettings(batch_size=100),
        progress=quiet,
    )
    assert report.complete, report.error
    trip = Trip(scenario, seed=3)
    expected = [sample.measurement for sample in trip.samples()]
    held = fake.held(TRACKER.tracker_id)
    assert report.readings_logged == report.acked_through == len(expected) == len(held)
    for seq, measurement in enumerate(expected, start=1):
        assert held[seq].device_time == rfc3339(measurement.device_time)
        assert held[seq].temperature_c == measurement.temperature_c
        assert held[seq].latitude == measurement.latitude
    ((offline_from, back_at),) = Connectivity(scenario.network, start=trip.start, seed=3).offline_windows
    during_outage = [
        b.sent_at
        for b in fake.batches
        if offline_from + timedelta(minutes=1) < b.sent_at < back_at - timedelta(minutes=1)
    ]
    assert during_outage == []
    catch_up = [b for b in fake.batches if b.sent_at >= back_at - timedelta(minutes=1)]
    assert sum(len(b.seqs) for b in catch_up) > 500  # two days of five-minute readings, in 100-reading batches
    assert report.clock_offset_s is not None


async def test_nothing_is_sent_while_the_aircraft_is_airborne(tmp_path: Path) -> None:
    fake = service()
    scenario = BUILTIN_SCENARIOS["air-freight"]
    report = await run_tracker(
        scenario,
        TRACKER,
        logbook_path=tmp_path / "log.db",
        transport=fake.transport(),
        url="http://service.test",
        speed=None,
        seed=1,
        progress=quiet,
    )
    assert report.complete, report.error
    ((take_off, landing),) = Trip(scenario, seed=1).airborne_windows()
    assert fake.batches
    assert not [b for b in fake.batches if take_off + timedelta(seconds=5) < b.sent_at < landing]


async def test_a_run_stopped_midway_resumes_from_its_logbook_without_losing_or_repeating_readings(
    tmp_path: Path,
) -> None:
    fake = service()
    scenario = BUILTIN_SCENARIOS["reefer-road"]
    messages: list[str] = []

    def crash_after_three(message: str) -> None:
        messages.append(message)
        if len(messages) == 3:
            raise PowerCut

    with pytest.raises(PowerCut):
        await run_tracker(
            scenario,
            TRACKER,
            logbook_path=tmp_path / "log.db",
            transport=fake.transport(),
            url="http://service.test",
            speed=None,
            seed=2,
            progress=crash_after_three,
        )
    async with open_logbook(tmp_path / "log.db") as logbook:
        stopped_at = await logbook.status()
    assert 0 < stopped_at.last_seq < Trip(scenario, seed=2).sample_count

    report = await run_tracker(
        scenario,
        TRACKER,
        logbook_path=tmp_path / "log.db",
        transport=fake.transport(),
        url="http://service.test",
        speed=None,
        seed=2,
        progress=quiet,
    )
    assert report.complete
    expected = [rfc3339(s.measurement.device_time) for s in Trip(scenario, seed=2).samples()]
    held = fake.held(TRACKER.tracker_id)
    assert [held[seq].device_time for seq in sorted(held)] == expected
    assert fake.stored_new == len(expected)


async def test_a_logbook_of_another_trip_is_not_resumed(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    async with open_logbook(path) as logbook:
        await logbook.set_meta("trip", "someone else's trip")
    report = await run_tracker(
        BUILTIN_SCENARIOS["freeze"], TRACKER, logbook_path=path, transport=service().transport(), speed=None
    )
    assert report.error is not None
    assert "another trip" in report.error
    assert not report.complete


async def test_a_tracker_the_service_refuses_stops_with_the_reason_and_keeps_its_readings(
    tmp_path: Path,
) -> None:
    fake = FakeService(secrets_by_tracker={TRACKER.tracker_id: "not the tracker's secret"})
    report = await run_tracker(
        BUILTIN_SCENARIOS["compressor-failure"],
        TRACKER,
        logbook_path=tmp_path / "log.db",
        transport=fake.transport(),
        url="http://service.test",
        speed=None,
        progress=quiet,
    )
    assert report.error is not None
    assert "401" in report.error
    assert report.readings_logged > 0
    assert report.pending == report.readings_logged
    assert fake.held(TRACKER.tracker_id) == {}


@pytest.mark.parametrize(("retention", "retained_expected"), [(timedelta(0), False), (timedelta(days=7), True)])
async def test_acknowledged_readings_are_pruned_after_the_retention_period(
    tmp_path: Path, retention: timedelta, retained_expected: bool
) -> None:
    report = await run_tracker(
        BUILTIN_SCENARIOS["compressor-failure"],
        TRACKER,
        logbook_path=tmp_path / "log.db",
        transport=service().transport(),
        url="http://service.test",
        speed=None,
        retention=retention,
        progress=quiet,
    )
    assert report.complete
    async with open_logbook(tmp_path / "log.db") as logbook:
        status = await logbook.status()
    if retained_expected:
        assert status.retained == report.readings_logged
    else:
        # Only what was acknowledged in the very last sync can still be there.
        assert status.retained < report.readings_logged / 4


async def test_accelerated_time_runs_an_hour_of_trip_in_a_tenth_of_a_second(tmp_path: Path) -> None:
    short = Scenario(
        name="across-town",
        route=(
            Waypoint(latitude=52.5200, longitude=13.4050),
            Waypoint(latitude=52.4500, longitude=13.3000),
        ),
        interval_min=1.0,
        duration_h=1.0,
        network=NetworkConditions(latency_ms=50, latency_jitter_ms=0),
    )
    fake = service()
    started = time.perf_counter()
    report = await run_tracker(
        short,
        TRACKER,
        logbook_path=tmp_path / "log.db",
        transport=fake.transport(),
        url="http://service.test",
        speed=36_000.0,
        sync_interval_min=10,
        progress=quiet,
    )
    elapsed = time.perf_counter() - started
    assert report.complete
    assert report.readings_logged == 61 == len(fake.held(TRACKER.tracker_id))
    assert elapsed >= 3600 / 36_000 * 0.9
    assert report.simulated_until is not None
    assert report.simulated_until - short.start >= timedelta(hours=1)


async def test_a_tracker_can_talk_through_an_existing_client_such_as_an_apps_test_client(
    tmp_path: Path,
) -> None:
    fake = service()
    async with fake.client() as app_client:
        report = await run_tracker(
            BUILTIN_SCENARIOS["compressor-failure"],
            TRACKER,
            logbook_path=tmp_path / "log.db",
            http=app_client,
            speed=None,
            progress=quiet,
        )
        assert not app_client.is_closed
    assert report.complete
    assert len(fake.held(TRACKER.tracker_id)) == report.readings_logged > 0


class Unreachable(httpx.AsyncBaseTransport):
    """A service nobody answers for: every request fails to connect; counts the tries and when they came."""

    def __init__(self) -> None:
        self.tries: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.tries.append(time.monotonic())
        raise httpx.ConnectError("connection refused", request=request)


async def test_a_trip_in_virtual_time_paces_its_retries_of_an_unreachable_service_in_real_time(
    tmp_path: Path,
) -> None:
    unreachable = Unreachable()
    run = asyncio.create_task(
        run_tracker(
            BUILTIN_SCENARIOS["compressor-failure"],
            TRACKER,
            logbook_path=tmp_path / "log.db",
            url="http://service.test",
            transport=unreachable,
            speed=None,
            settings=SyncSettings(backoff_base_s=0.5, backoff_cap_s=30.0),
            progress=quiet,
        )
    )
    await asyncio.sleep(3.0)
    assert not run.done()
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    # Unpaced, virtual time let the tracker retry hundreds of times a second; paced, a few calls of three tries.
    assert 3 <= len(unreachable.tries) <= 30


async def test_a_trip_on_a_world_clock_logs_its_past_at_once_and_syncs_only_from_the_worlds_now(
    tmp_path: Path,
) -> None:
    fake = service()
    scenario = BUILTIN_SCENARIOS["compressor-failure"]
    world = AcceleratedClock(scenario.start + timedelta(hours=3), speed=3600.0)
    report = await run_tracker(
        scenario,
        TRACKER,
        logbook_path=tmp_path / "log.db",
        url="http://service.test",
        transport=fake.transport(),
        speed=3600.0,
        world=world.now,
        sync_interval_min=30,
        settings=SyncSettings(batch_size=1000),
        progress=quiet,
    )
    assert report.complete, report.error
    first, *later = fake.batches
    # Nothing went out for the three hours before the world's now; the first batch carries all of them.
    assert first.sent_at >= scenario.start + timedelta(hours=3) - timedelta(seconds=60)
    assert len(first.seqs) >= 3 * 12
    assert later, "the rest of the trip synced as it was logged"
