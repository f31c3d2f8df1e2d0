"""A served coldchain killed with SIGKILL in the middle of a sync, then restarted: nothing lost, nothing twice.

Real processes on both engines: ``python -m coldchain serve`` on a free 127.0.0.1 port, trackers pushing their
logbooks through the simulator's sync client over real HTTP. The service is killed once the admin API shows some
(not all) readings acknowledged, with every tracker still sending; the trackers keep logging during the outage
and retry with backoff; the service comes back on the same database and port. At the end the database holds
every reading of every logbook exactly once (as a reading, or in quarantine for a sensor fault) with the values
the tracker logged, and nothing else (DESIGN.md, "Sync protocol": at-least-once delivery plus idempotent writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
import pytest

from coldchain.domain.readings import Reading
from coldchain.storage import open_store
from tests.served import ServedColdchain
from tracker_sim import (
    BUILTIN_SCENARIOS,
    Logbook,
    Measurement,
    SyncClient,
    SyncSettings,
    Trip,
    register_tracker,
)
from tracker_sim.logbook import LoggedReading

ADMIN_TOKEN = "crash-test-admin-token"
SCENARIOS = ("reefer-road", "air-freight", "compressor-failure", "freeze")
READINGS_BEFORE_CRASH = 3000
"""Logged per tracker before the pushes start."""
READINGS_DURING_OUTAGE = 300
"""Logged per tracker while the service is down."""
BATCH_SIZE = 100
KILL_AT_FRACTION = 0.2
"""The service is killed once this share of the readings logged before the crash is acknowledged."""
STARTUP_S = 20.0
TEST_BUDGET_S = 50.0

# Quick retries so the test is short; the shape of the backoff (full jitter, doubling) is the real one.
SYNC_SETTINGS = SyncSettings(batch_size=BATCH_SIZE, backoff_base_s=0.05, backoff_cap_s=0.5, timeout_s=10.0)


class _SyncOut(msgspec.Struct, kw_only=True):
    acked_through: int
    readings_new: int
    readings_quarantined: int


class _TrackerOut(msgspec.Struct, kw_only=True):
    tracker_id: str
    sync: _SyncOut


_trackers_decoder = msgspec.json.Decoder(list[_TrackerOut])


class SimulatedTracker:
    """A tracker with its logbook and its sync client; it keeps sending until told it has logged everything."""

    def __init__(self, logbook: Logbook, client: SyncClient, measurements: list[Measurement]) -> None:
        self.logbook = logbook
        self.client = client
        self.measurements = measurements
        self.failures = 0
        self.done_logging = asyncio.Event()

    async def log(self, start: int, stop: int) -> None:
        await self.logbook.log_many(self.measurements[start:stop])

    async def deliver(self) -> None:
        while True:
            # Read before the sync: if everything was logged before this sync began and nothing is pending
            # after it, the service holds everything.
            finished_logging = self.done_logging.is_set()
            report = await self.client.sync(max_failures=None)
            self.failures += report.failures
            if finished_logging and (await self.logbook.status()).pending == 0:
                return
            await asyncio.sleep(0.02)


@asynccontextmanager
async def fleet(url: str, http: httpx.AsyncClient, workdir: Path) -> AsyncIterator[list[SimulatedTracker]]:
    trackers: list[SimulatedTracker] = []
    try:
        for i, name in enumerate(SCENARIOS):
            credentials = await register_tracker(
                http, url=url, admin_token=ADMIN_TOKEN, serial=f"CRASH-{i:02d}", model="crash-test"
            )
            trip = Trip(BUILTIN_SCENARIOS[name], seed=i)
            measurements = [s.measurement for s in trip.samples(READINGS_BEFORE_CRASH + READINGS_DURING_OUTAGE)]
            logbook = await Logbook.open(workdir / f"{credentials.tracker_id}.db")
            client = SyncClient(
                logbook,
                credentials,
                http=http,
                url=url,
                settings=SYNC_SETTINGS,
                device_clock=lambda: datetime.now(UTC),
            )
            trackers.append(SimulatedTracker(logbook, client, measurements))
        yield trackers
    finally:
        for tracker in trackers:
            await tracker.logbook.close()


async def _sync_overview(http: httpx.AsyncClient, url: str) -> dict[str, _SyncOut]:
    response = await http.get(f"{url}/v1/trackers", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=5)
    assert response.status_code == 200, response.text
    return {t.tracker_id: t.sync for t in _trackers_decoder.decode(response.content)}


async def _acknowledged_when_killed(service: ServedColdchain, http: httpx.AsyncClient, goal: int) -> int:
    """Poll the admin API until ``goal`` readings are acknowledged, then SIGKILL the service; return the count."""
    while True:
        acked = sum(s.acked_through for s in (await _sync_overview(http, service.url)).values())
        if acked >= goal:
            service.kill()
            return acked
        await asyncio.sleep(0.01)


def _same_reading(logged: LoggedReading, stored: Reading) -> bool:
    device_time = datetime.fromisoformat(logged.device_time)
    offset = device_time.utcoffset()
    assert offset is not None
    return (
        stored.seq == logged.seq
        and stored.device_time == device_time
        and stored.utc_offset_min == offset.total_seconds() // 60
        and stored.temperature_c == logged.temperature_c
        and stored.humidity_pct == logged.humidity_pct
        and stored.pressure_kpa == logged.pressure_kpa
        and stored.latitude == logged.latitude
        and stored.longitude == logged.longitude
        and stored.battery_pct == logged.battery_pct
    )


@pytest.mark.slow
async def test_a_service_killed_mid_sync_ends_with_every_logged_reading_stored_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    total_before = READINGS_BEFORE_CRASH * len(SCENARIOS)
    limits = httpx.Limits(max_connections=len(SCENARIOS) + 2)
    async with (
        asyncio.timeout(TEST_BUDGET_S),
        httpx.AsyncClient(limits=limits, timeout=10) as http,
    ):
        with ServedColdchain(database_url, tmp_path, admin_token=ADMIN_TOKEN, startup_s=STARTUP_S) as service:
            service.start()
            await service.wait_healthy(http)
            async with fleet(service.url, http, tmp_path) as trackers:
                for tracker in trackers:
                    await tracker.log(0, READINGS_BEFORE_CRASH)
                deliveries = [asyncio.create_task(tracker.deliver()) for tracker in trackers]
                try:
                    acked_at_kill = await _acknowledged_when_killed(service, http, int(total_before * KILL_AT_FRACTION))
                    assert 0 < acked_at_kill < total_before, f"{acked_at_kill} of {total_before} acknowledged"
                    assert not any(d.done() for d in deliveries), "a tracker stopped sending"
                    pending = [(await t.logbook.status()).pending for t in trackers]
                    assert all(pending), f"a tracker had everything acknowledged before the kill: {pending}"

                    # The trackers keep logging while the service is down, then it comes back.
                    for tracker in trackers:
                        await tracker.log(READINGS_BEFORE_CRASH, len(tracker.measurements))
                        tracker.done_logging.set()
                    service.start()
                    await service.wait_healthy(http)
                    await asyncio.gather(*deliveries)
                finally:
                    for delivery in deliveries:
                        delivery.cancel()
                    await asyncio.gather(*deliveries, return_exceptions=True)

                assert sum(t.failures for t in trackers) >= len(trackers), "the trackers did not notice the crash"
                logbooks = {t.client.logbook.path.stem: await t.logbook.retained() for t in trackers}
                overview = await _sync_overview(http, service.url)
            service.kill()
            output = service.output()
    assert "Traceback" not in output, output

    total = sum(len(logged) for logged in logbooks.values())
    assert total == (READINGS_BEFORE_CRASH + READINGS_DURING_OUTAGE) * len(SCENARIOS)
    store = await open_store(database_url, pool_size=1, migrate=False)
    try:
        async with store.transaction() as tx:
            valid_total = 0
            for serial, logged in logbooks.items():
                registered = await tx.get_tracker(serial)
                assert registered is not None
                valid = await tx.readings_between(
                    registered.id, datetime(1970, 1, 1, tzinfo=UTC), datetime(9999, 1, 1, tzinfo=UTC)
                )
                assert await tx.count_readings(registered.id) == len(valid)
                valid_total += len(valid)
                # A sensor fault (a disconnected probe reads -127 °C) is held in quarantine, not lost.
                quarantined = [reading for reading, _ in await tx.quarantined_readings(registered.id)]
                held = sorted(valid + quarantined, key=lambda reading: reading.seq)
                assert [r.seq for r in held] == [r.seq for r in logged] == list(range(1, len(logged) + 1))
                changed = [r.seq for r, h in zip(logged, held, strict=True) if not _same_reading(r, h)]
                assert changed == [], f"{serial}: readings held with other values than logged: {changed[:10]}"
                state = overview[serial]
                assert state.acked_through == len(logged)
                assert (state.readings_new, state.readings_quarantined) == (len(valid), len(quarantined))
            assert await tx.count_readings() == valid_total
    finally:
        await store.close()
