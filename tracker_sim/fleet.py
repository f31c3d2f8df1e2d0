"""A fleet of trackers against one service: register them, fill their logbooks, push everything, measure.

The same code drives the demo (a handful of trackers with believable trips) and the load benchmark (many
trackers, big batches). It is built so the service, not the simulator, is the bottleneck: readings are
generated before the clock starts and written to each logbook in one transaction; during the push all
trackers share one ``httpx.AsyncClient`` (keep-alive connection pool sized to the concurrency) and encode
with msgspec.

Latency percentiles use the nearest-rank method over every stored batch.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec

from tracker_sim.logbook import Logbook, LogbookError, Measurement, open_logbook
from tracker_sim.scenarios import BUILTIN_SCENARIOS, Scenario
from tracker_sim.sync import SyncClient, SyncError, SyncSettings, TrackerCredentials
from tracker_sim.trip import Trip
from tracker_sim.wire import ErrorIn, TrackerCreatedIn, TrackerOut, WireFormat

__all__ = ["FleetResult", "RegistrationError", "percentile", "register_tracker", "run_fleet"]

_created_decoder = msgspec.json.Decoder(TrackerCreatedIn)
_GENERATION_AHEAD = 4


class RegistrationError(Exception):
    """The service did not register a tracker (409: the serial exists; 401/403: wrong admin token)."""

    def __init__(self, serial: str, status_code: int, error: str, detail: str) -> None:
        super().__init__(f"registering {serial!r} failed with HTTP {status_code} {error}: {detail}")
        self.serial = serial
        self.status_code = status_code
        self.error = error


class FleetResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a fleet run achieved. Rates and latencies are in real (wall-clock) time."""

    trackers: int
    readings_logged: int
    readings_acked: int
    batches: int
    generate_s: float
    push_s: float
    readings_per_s: float
    """Readings newly acknowledged by the service per second of the push phase."""
    latency_p50_ms: float
    latency_p95_ms: float
    latency_p99_ms: float
    failures: int
    throttled: int
    errors: tuple[str, ...]
    credentials: tuple[TrackerCredentials, ...]

    def summary(self) -> str:
        lines = [
            f"trackers: {self.trackers}, readings logged: {self.readings_logged}, "
            f"acknowledged: {self.readings_acked} in {self.batches} batches",
            f"generated in {self.generate_s:.2f} s, pushed in {self.push_s:.2f} s: "
            f"{self.readings_per_s:,.0f} readings/s acknowledged",
            f"batch latency p50 {self.latency_p50_ms:.1f} ms, p95 {self.latency_p95_ms:.1f} ms, "
            f"p99 {self.latency_p99_ms:.1f} ms",
            f"transient failures: {self.failures}, throttled (429): {self.throttled}, errors: {len(self.errors)}",
        ]
        lines.extend(f"  error: {error}" for error in self.errors)
        return "\n".join(lines)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (0 < q <= 100) of ``values``; 0.0 for no values."""
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


async def register_tracker(
    http: httpx.AsyncClient, *, url: str = "", admin_token: str, serial: str, model: str | None = None
) -> TrackerCredentials:
    """Register a tracker through the admin API and return its id and secret (the secret is shown once)."""
    response = await http.post(
        f"{url.rstrip('/')}/v1/trackers",
        content=msgspec.json.encode(TrackerOut(serial=serial, model=model)),
        headers={"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"},
    )
    if response.status_code != 201:
        try:
            body = msgspec.json.decode(response.content, type=ErrorIn)
            error, detail = body.error, body.detail
        except msgspec.DecodeError:
            error, detail = f"http_{response.status_code}", response.text[:200]
        raise RegistrationError(serial, response.status_code, error, detail)
    created = _created_decoder.decode(response.content)
    return TrackerCredentials(tracker_id=created.tracker_id, secret=created.secret)


def _file_name(tracker_id: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", tracker_id)
    if safe != tracker_id:  # keep "a/b" and "a_b" apart
        safe += "-" + hashlib.sha256(tracker_id.encode()).hexdigest()[:8]
    return safe + ".db"


def _generate(trip: Trip, count: int | None) -> list[Measurement]:
    return [sample.measurement for sample in trip.samples(count)]


async def _fill(path: Path, measurements: list[Measurement]) -> int:
    async with open_logbook(path) as logbook:
        logged = await logbook.log_many(measurements)
    return len(logged)


class _Totals(msgspec.Struct, kw_only=True):
    acked: int = 0
    batches: int = 0
    failures: int = 0
    throttled: int = 0
    latencies_s: list[float] = msgspec.field(default_factory=list)
    errors: list[str] = msgspec.field(default_factory=list)


async def run_fleet(
    url: str = "",
    *,
    admin_token: str | None = None,
    count: int = 10,
    trackers: Sequence[TrackerCredentials] | None = None,
    scenarios: Sequence[Scenario] | None = None,
    readings_per_tracker: int | None = None,
    batch_size: int = 1000,
    concurrency: int = 32,
    wire_format: WireFormat = "json",
    gzip: bool = False,
    logbook_dir: str | Path | None = None,
    seed: int = 0,
    start: datetime | None = None,
    serial_prefix: str | None = None,
    model: str | None = "tracker_sim",
    http: httpx.AsyncClient | None = None,
    max_failures: int = 8,
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FleetResult:
    """Register ``count`` trackers (or use ``trackers``), log their readings, push them all, measure.

    Tracker ``i`` plays ``scenarios[i % len(scenarios)]`` (default: reefer-road) with seed ``seed + i``:
    ``readings_per_tracker`` readings (default: the whole trip). ``http`` may be any ``httpx.AsyncClient``
    (an app's test client, say; then ``url`` may stay ""). Logbooks go to ``logbook_dir``, or to a temporary
    directory removed afterwards. ``clock`` is the trackers' clock when sending (default: the machine's);
    ``sleep`` waits out backoff and Retry-After.
    """
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    plays = list(scenarios or [BUILTIN_SCENARIOS["reefer-road"]])
    gate = asyncio.Semaphore(concurrency)
    async with AsyncExitStack() as stack:
        if http is None:
            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            http = await stack.enter_async_context(httpx.AsyncClient(limits=limits, timeout=60.0))
        if logbook_dir is None:
            logbook_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="tracker_sim-"))
        directory = Path(logbook_dir)
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)

        if trackers is None:
            if admin_token is None:
                raise ValueError("registering trackers needs admin_token (or pass trackers)")
            prefix = serial_prefix or f"sim-{secrets.token_hex(4)}"
            serials = [f"{prefix}-{i:05d}" for i in range(count)]
            trackers = await _register_all(http, url, admin_token, serials, model, gate)
        credentials = tuple(trackers)

        started = time.perf_counter()
        logged = await _fill_all(directory, credentials, plays, readings_per_tracker, seed, start)
        generate_s = time.perf_counter() - started

        settings = SyncSettings(wire_format=wire_format, gzip=gzip, batch_size=batch_size)
        totals = _Totals()
        client = http

        async def push(tracker: TrackerCredentials) -> None:
            def client_for(logbook: Logbook) -> SyncClient:
                return SyncClient(
                    logbook,
                    tracker,
                    http=client,
                    url=url,
                    settings=settings,
                    device_clock=clock or _now,
                    sleep=sleep,
                )

            async with gate:
                await _push(directory / _file_name(tracker.tracker_id), tracker, client_for, totals, max_failures)

        started = time.perf_counter()
        await asyncio.gather(*(push(tracker) for tracker in credentials))
        push_s = time.perf_counter() - started

    return FleetResult(
        trackers=len(credentials),
        readings_logged=logged,
        readings_acked=totals.acked,
        batches=totals.batches,
        generate_s=generate_s,
        push_s=push_s,
        readings_per_s=totals.acked / push_s if push_s > 0 else 0.0,
        latency_p50_ms=percentile(totals.latencies_s, 50) * 1000,
        latency_p95_ms=percentile(totals.latencies_s, 95) * 1000,
        latency_p99_ms=percentile(totals.latencies_s, 99) * 1000,
        failures=totals.failures,
        throttled=totals.throttled,
        errors=tuple(totals.errors),
        credentials=credentials,
    )


async def _register_all(
    http: httpx.AsyncClient,
    url: str,
    admin_token: str,
    serials: list[str],
    model: str | None,
    gate: asyncio.Semaphore,
) -> list[TrackerCredentials]:
    async def register(serial: str) -> TrackerCredentials:
        async with gate:
            return await register_tracker(http, url=url, admin_token=admin_token, serial=serial, model=model)

    return await asyncio.gather(*(register(serial) for serial in serials))


async def _fill_all(
    directory: Path,
    credentials: Sequence[TrackerCredentials],
    plays: Sequence[Scenario],
    readings_per_tracker: int | None,
    seed: int,
    start: datetime | None,
) -> int:
    """Generate every tracker's readings and log them; return how many."""
    # Generate in a worker thread while earlier trackers' rows are written (aiosqlite has its own
    # threads): SQLite releases the GIL while it works, so writing overlaps generating.
    writes: list[asyncio.Task[int]] = []
    logged = 0
    try:
        for i, tracker in enumerate(credentials):
            trip = Trip(plays[i % len(plays)], seed=seed + i, start=start)
            measurements = await asyncio.to_thread(_generate, trip, readings_per_tracker)
            writes.append(asyncio.create_task(_fill(directory / _file_name(tracker.tracker_id), measurements)))
            if len(writes) >= _GENERATION_AHEAD:
                logged += await writes.pop(0)
        for write in writes:
            logged += await write
    finally:
        for write in writes:
            write.cancel()
        await asyncio.gather(*writes, return_exceptions=True)
    return logged


async def _push(
    path: Path,
    tracker: TrackerCredentials,
    client_for: Callable[[Logbook], SyncClient],
    totals: _Totals,
    max_failures: int,
) -> None:
    """Push one tracker's logbook until the service holds it all (or refuses, or is out of reach)."""
    logbook = await Logbook.open(path)
    try:
        before = (await logbook.status()).acked_through
        report = await client_for(logbook).sync(max_failures=max_failures)
        totals.acked += report.acked_through - before
        totals.batches += report.batches
        totals.failures += report.failures
        totals.throttled += report.throttled
        totals.latencies_s.extend(report.latencies_s)
        if report.gave_up:
            totals.errors.append(f"{tracker.tracker_id}: gave up: {report.last_error}")
    except (SyncError, LogbookError) as exc:
        totals.errors.append(f"{tracker.tracker_id}: {exc}")
    finally:
        await logbook.close()


def _now() -> datetime:
    # The fleet pushes readings generated beforehand: its trackers' clocks are the machine's clock.
    return datetime.now(UTC).astimezone()
