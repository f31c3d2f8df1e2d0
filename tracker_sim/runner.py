"""One tracker on its trip: log readings as simulated time passes, sync whenever there is coverage.

The runner is a single task. Its sleep logs every reading that falls due while it waits, so readings are
logged on time also while the sync client backs off or waits out a Retry-After (the sync client is handed
that same sleep). Coverage comes from the scenario's network model plus every flight (no cellular network at
altitude); lost answers, latency and narrow links come from
:class:`~tracker_sim.network.SimulatedNetworkTransport`.

A run can be stopped at any moment (even ``kill -9``) and started again with the same logbook: it resumes
after the last reading logged, and the sync protocol sorts out whatever was in flight.

Simulated time cannot pace a real service: when the service itself fails (no connection, 5xx, 429) while
the trip runs in virtual time, the runner waits the client's backoff in real seconds before trying again, so
an unreachable service never meets a tight loop of retries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import msgspec

from tracker_sim.clock import SimulatedClock
from tracker_sim.logbook import Logbook, LogbookError, open_logbook
from tracker_sim.network import Connectivity, SimulatedNetworkTransport
from tracker_sim.scenarios import Scenario
from tracker_sim.sync import SyncClient, SyncError, SyncReport, SyncSettings, TrackerCredentials
from tracker_sim.trip import Trip

__all__ = ["RunReport", "run_tracker"]

logger = logging.getLogger(__name__)


class _ThroughClient(httpx.AsyncBaseTransport):
    """A transport that sends through an existing client, with whatever transport that client has."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._client.send(request, stream=True)

    async def aclose(self) -> None:
        """The client belongs to the caller, who closes it."""


class RunReport(msgspec.Struct, kw_only=True):
    """How one tracker's run ended."""

    tracker_id: str
    scenario: str
    readings_logged: int = 0
    acked_through: int = 0
    pending: int = 0
    batches: int = 0
    new: int = 0
    duplicates: int = 0
    quarantined: int = 0
    failures: int = 0
    throttled: int = 0
    lost_responses: int = 0
    latencies_s: list[float] = msgspec.field(default_factory=list)
    clock_offset_s: float | None = None
    simulated_until: datetime | None = None
    error: str | None = None
    """Why the run stopped early (the service refused a batch, the logbook does not match the service...)."""

    @property
    def complete(self) -> bool:
        return self.error is None and self.pending == 0


async def run_tracker(
    scenario: Scenario,
    credentials: TrackerCredentials,
    *,
    logbook_path: str | Path,
    url: str = "",
    transport: httpx.AsyncBaseTransport | None = None,
    http: httpx.AsyncClient | None = None,
    speed: float | None = 3600.0,
    world: Callable[[], datetime] | None = None,
    settings: SyncSettings | None = None,
    seed: int = 0,
    start: datetime | None = None,
    sync_interval_min: float = 15.0,
    retention: timedelta = timedelta(days=7),
    give_up_after: timedelta = timedelta(days=7),
    progress: Callable[[str], None] | None = None,
) -> RunReport:
    """Play ``scenario`` as tracker ``credentials`` against the service at ``url``.

    Requests finally go through ``transport``, or through the client ``http`` (an app's test client, say;
    ``url`` may then stay "" to use its base URL), or over real HTTP; the simulated network sits in front.
    ``speed`` is simulated seconds per real second, None for as fast as possible. With a ``world`` clock
    (running at ``speed``) the part of the trip before the world's now is logged at once without syncing
    (it happened before anyone watched), and the rest unfolds on the world clock. The run ends when the trip
    is over and the service holds every reading, when the service refuses the tracker for good, or
    ``give_up_after`` past the end of the trip.
    """
    trip = Trip(scenario, seed=seed, start=start)
    report = RunReport(tracker_id=credentials.tracker_id, scenario=scenario.name)
    say = progress or (lambda message: logger.info("%s", message))

    async with open_logbook(logbook_path) as logbook:
        identity = f"{credentials.tracker_id} {scenario.name} seed={seed} start={trip.start.isoformat()}"
        recorded = await logbook.get_meta("trip")
        if recorded is None:
            await logbook.set_meta("trip", identity)
        elif recorded != identity:
            report.error = f"logbook {logbook_path} belongs to another trip ({recorded})"
            return report
        device = _Device(trip, logbook, logged=(await logbook.status()).last_seq, speed=speed, world=world)
        connectivity = Connectivity(
            scenario.network, start=trip.start, seed=seed, extra_offline=trip.airborne_windows()
        )
        inner = transport or (_ThroughClient(http) if http is not None else httpx.AsyncHTTPTransport())
        network = SimulatedNetworkTransport(inner, connectivity, clock=device.clock.now, sleep=device.sleep)
        base_url = http.base_url if http is not None and not url else ""
        async with httpx.AsyncClient(transport=network, base_url=base_url) as device_http:
            client = SyncClient(
                logbook,
                credentials,
                http=device_http,
                url=url,
                settings=settings,
                device_clock=device.device_time,
                sleep=device.sleep,
                rng=trip.rng("backoff"),
            )
            deadline = trip.end + give_up_after
            while True:
                await device.log_due()
                now = device.clock.now()
                status = await logbook.status()
                if device.trip_over and status.pending == 0:
                    break
                if now >= deadline:
                    report.error = f"gave up {give_up_after} after the end of the trip with readings pending"
                    break
                if connectivity.is_online(now) and status.pending and (world is None or device.clock.caught_up):
                    real_failures = network.real_failures
                    try:
                        result = await client.sync(max_failures=3)
                    except (SyncError, LogbookError) as exc:
                        report.error = str(exc)
                        say(f"{credentials.tracker_id}: stopped: {exc}")
                        break
                    _add(report, result)
                    if result.gave_up and network.real_failures > real_failures and not device.clock.caught_up:
                        await asyncio.sleep(client.backoff_s(client.consecutive_failures))
                    if result.batches:
                        await logbook.prune(now=device.device_time(), retention=retention)
                        say(
                            f"{credentials.tracker_id} @ {device.clock.now().isoformat(timespec='minutes')}: "
                            f"acked through {result.acked_through}, {result.batches} batches"
                            + (f", last error: {result.last_error}" if result.last_error else "")
                        )
                now = device.clock.now()
                wake = (
                    now + timedelta(minutes=sync_interval_min)
                    if connectivity.is_online(now)
                    else min(connectivity.online_again_at(now), deadline)
                )
                await device.sleep((wake - now).total_seconds())
        report.lost_responses = network.lost_responses
        final = await logbook.status()
    report.readings_logged = final.last_seq
    report.acked_through = final.acked_through
    report.pending = final.pending
    report.simulated_until = device.clock.now()
    return report


def _add(report: RunReport, result: SyncReport) -> None:
    report.batches += result.batches
    report.new += result.new
    report.duplicates += result.duplicates
    report.quarantined += result.quarantined
    report.failures += result.failures
    report.throttled += result.throttled
    report.latencies_s.extend(result.latencies_s)
    if result.clock_offset_s is not None:
        report.clock_offset_s = result.clock_offset_s


class _Device:
    """The tracker's own side: its clock, and logging each reading of the trip when it falls due."""

    def __init__(
        self,
        trip: Trip,
        logbook: Logbook,
        *,
        logged: int,
        speed: float | None,
        world: Callable[[], datetime] | None = None,
    ) -> None:
        self._trip = trip
        self._logbook = logbook
        self._samples = list(trip.samples())
        # Resume after the last reading logged (the device was off in between, so its clock resumes there).
        self._next = logged
        resume_at = self._samples[min(logged, len(self._samples)) - 1].true_time if logged else trip.start
        self.clock = SimulatedClock(resume_at, speed=speed, world=world)

    @property
    def trip_over(self) -> bool:
        return self._next >= len(self._samples)

    def device_time(self) -> datetime:
        return self._trip.device_clock.read(self.clock.now())

    async def log_due(self) -> None:
        now = self.clock.now()
        due = []
        while self._next < len(self._samples) and self._samples[self._next].true_time <= now:
            due.append(self._samples[self._next].measurement)
            self._next += 1
        if due:
            await self._logbook.log_many(due)

    async def sleep(self, seconds: float) -> None:
        """Let simulated time pass, logging each reading when it falls due."""
        until = self.clock.now() + timedelta(seconds=seconds)
        while True:
            await self.log_due()
            upcoming = None if self.trip_over else self._samples[self._next].true_time
            if upcoming is None or upcoming >= until:
                await self.clock.sleep_until(until)
                await self.log_due()
                return
            await self.clock.sleep_until(upcoming)
