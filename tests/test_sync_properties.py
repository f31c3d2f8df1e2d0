"""The whole sync protocol, the real tracker against the real service: whatever happens on the way, the service
ends with exactly the tracker's log.

The tracker is tracker_sim's own logbook and SyncClient; the service is the app from ``create_app`` on a real
database, reached through Litestar's test client. Between them sits :class:`Link`, a transport that delivers
every request and loses the answers a schedule names, after the service committed. Besides the tracker's own
syncs, a schedule replays hand-built signed batches of the logged readings in any grouping and order (duplicated,
reordered, split, merged), and restarts the tracker (logbook closed and reopened) or the service (a new app on
the same database). Every answer is checked against a model of what the service was given; at the end the
store must hold every logged reading exactly once, with its values.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import random
import tempfile
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
from coldchain.settings import load_settings
from coldchain.storage import Store
from tracker_sim import Logbook, Measurement, SyncClient, SyncSettings, TrackerCredentials, register_tracker
from tracker_sim.logbook import LoggedReading
from tracker_sim.sync import sign
from tracker_sim.wire import BatchOut, ReadingOut, WireFormat, encode_batch

ADMIN_TOKEN = "admin-token-for-tests"
SERIAL = "TRK-PROP"
START = datetime(2025, 5, 1, 6, 0, tzinfo=UTC)
ZONES = (timezone(timedelta(hours=-5)), UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=5, minutes=30)))
PROBE_FAULT_C = -127.0
"""What a disconnected DS18B20 probe reads: the service quarantines it (and acknowledges it)."""


# --- The schedule -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Log:
    """The tracker logs readings, one every 5 minutes in one time zone; every ``fault_every``-th reads a probe fault."""

    temperatures: tuple[float, ...]
    zone: int
    fault_every: int | None = None


@dataclass(frozen=True)
class Sync:
    """The tracker's own SyncClient pushes what is pending; the answers ``losses`` names are lost."""

    batch_size: int
    wire_format: WireFormat
    gzip: bool
    losses: tuple[bool, ...]
    max_batches: int | None


@dataclass(frozen=True)
class Replay:
    """Hand-built signed batches of logged readings, in random groupings and orders, some sent twice."""

    seed: int
    batches: int
    wire_format: WireFormat
    gzip: bool
    twice: bool
    losses: tuple[bool, ...]


@dataclass(frozen=True)
class RestartTracker:
    """The tracker reboots: its logbook is closed and opened again, its sync client made anew."""


@dataclass(frozen=True)
class RestartService:
    """The service restarts: the test client is closed and a new app opens the same database."""


Step = Log | Sync | Replay | RestartTracker | RestartService

formats: st.SearchStrategy[WireFormat] = st.sampled_from(["json", "msgpack"])
losses = st.lists(st.booleans(), max_size=5).map(tuple)
logs = st.builds(
    Log,
    st.lists(st.floats(min_value=-30.0, max_value=45.0, allow_nan=False), min_size=1, max_size=40).map(tuple),
    st.integers(0, len(ZONES) - 1),
    st.none() | st.integers(2, 12),
)
steps: st.SearchStrategy[Step] = st.one_of(
    logs,
    st.builds(Sync, st.integers(1, 25), formats, st.booleans(), losses, st.none() | st.integers(1, 3)),
    st.builds(Replay, st.integers(0, 2**32), st.integers(1, 4), formats, st.booleans(), st.booleans(), losses),
    st.just(RestartTracker()),
    st.just(RestartService()),
)
# The tracker logs first (a schedule without readings proves little); at most 5 Log steps keep it under 200.
schedules = (
    st.tuples(logs, st.lists(steps, min_size=3, max_size=11))
    .map(lambda plan: [plan[0], *plan[1]])
    .filter(lambda plan: sum(isinstance(step, Log) for step in plan) <= 5)
)


# --- The service, the link and the model --------------------------------------------------------------------


class Service:
    """The real app on one database; :meth:`restart` replaces it by a new app on the same database."""

    def __init__(self, database_url: str) -> None:
        self._settings = load_settings({}, database_url=database_url, admin_token=ADMIN_TOKEN)
        self._stack = AsyncExitStack()
        self.client: AsyncTestClient[Litestar] | None = None
        self.restarts = 0

    async def start(self) -> AsyncTestClient[Litestar]:
        self.client = await self._stack.enter_async_context(AsyncTestClient(create_app(self._settings)))
        return self.client

    async def stop(self) -> None:
        await self._stack.aclose()
        self.client = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
        self.restarts += 1

    @property
    def running(self) -> AsyncTestClient[Litestar]:
        assert self.client is not None
        return self.client

    def held(self) -> tuple[list[Reading], list[tuple[Reading, str]], int]:
        """The tracker's readings, its quarantined readings and the count of readings, straight from the store."""
        result: tuple[list[Reading], list[tuple[Reading, str]], int] = self.running.blocking_portal.call(
            _held, self.running.app.state.store
        )
        return result


async def _held(store: Store) -> tuple[list[Reading], list[tuple[Reading, str]], int]:
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(SERIAL)
        assert tracker is not None
        readings = await tx.readings_between(tracker.id, datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC))
        return readings, await tx.quarantined_readings(tracker.id), await tx.count_readings(tracker.id)


class _SeqIn(msgspec.Struct):
    seq: int


class _BatchSeqsIn(msgspec.Struct):
    readings: list[_SeqIn]
    sent_at: datetime | None = None


@dataclass
class Model:
    """What the service was given (batches it answered 200), and what it must therefore answer."""

    faulty: set[int] = field(default_factory=set)
    delivered: set[int] = field(default_factory=set)
    batches: int = 0
    """Batches that count as the tracker's contact: sent later than any before, or bringing something new."""
    last_sent_at: datetime | None = None

    def check(self, sent: list[int], sent_at: datetime | None, answer: dict[str, object]) -> None:
        """The answer to a batch of ``sent`` seqs, by brute force: what is held now, what was new in it."""
        fresh = set(sent) - self.delivered
        self.delivered |= fresh
        if sent_at is not None and (self.last_sent_at is None or sent_at > self.last_sent_at):
            self.batches += 1
            self.last_sent_at = sent_at
        elif fresh:
            self.batches += 1
        acked = 0
        while acked + 1 in self.delivered:
            acked += 1
        gaps = sorted(set(range(acked + 1, max(self.delivered, default=0) + 1)) - self.delivered)
        missing: list[list[int]] = []
        for seq in gaps:
            if missing and missing[-1][1] == seq - 1:
                missing[-1][1] = seq
            else:
                missing.append([seq, seq])
        assert answer["acked_through"] == acked
        assert answer["missing"] == missing
        assert answer["new"] == len(fresh - self.faulty)
        assert answer["quarantined"] == len(fresh & self.faulty)
        assert answer["duplicates"] == len(sent) - len(fresh)
        assert answer["conflicts"] == 0


class Link(httpx.AsyncBaseTransport):
    """Delivers every request to the running app; loses the answers ``losses`` names once the app has answered.

    Every answer to a batch is checked against the model before it travels back (or is lost).
    """

    def __init__(self, service: Service, model: Model, losses: Sequence[bool] = ()) -> None:
        self._service = service
        self._model = model
        self._losses = list(losses)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._service.running.send(request)
        assert response.status_code == 200, response.text
        self._model.check(*_seqs_of(request), response.json())
        if self._losses and self._losses.pop(0):
            raise httpx.ReadTimeout("the answer was lost after the service committed", request=request)
        return httpx.Response(response.status_code, headers=response.headers, content=response.content)


def _seqs_of(request: httpx.Request) -> tuple[list[int], datetime | None]:
    body = request.content
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    if request.headers["content-type"] == "application/json":
        batch = msgspec.json.decode(body, type=_BatchSeqsIn)
    else:
        batch = msgspec.msgpack.decode(body, type=_BatchSeqsIn)
    return [reading.seq for reading in batch.readings], batch.sent_at


# --- Playing a schedule ---------------------------------------------------------------------------------------


async def _no_sleep(seconds: float) -> None:
    return None


class Tracker:
    """The tracker: its logbook file, its credentials, and every reading it has logged (the truth)."""

    def __init__(self, path: Path, credentials: TrackerCredentials) -> None:
        self.path = path
        self.credentials = credentials
        self.logged: dict[int, LoggedReading] = {}
        self.logbook: Logbook | None = None

    async def open(self) -> Logbook:
        self.logbook = await Logbook.open(self.path)
        return self.logbook

    async def close(self) -> None:
        if self.logbook is not None:
            await self.logbook.close()
            self.logbook = None

    @property
    def book(self) -> Logbook:
        assert self.logbook is not None
        return self.logbook

    async def log(self, step: Log, model: Model) -> None:
        first = len(self.logged)
        measurements = [
            Measurement(
                device_time=(START + timedelta(minutes=5 * (first + i))).astimezone(ZONES[step.zone]),
                temperature_c=PROBE_FAULT_C if step.fault_every and (i + 1) % step.fault_every == 0 else temperature,
                humidity_pct=None if i % 4 == 0 else 40.0 + i,
                latitude=None if i % 3 else -1.2921 + i / 1000,
                longitude=None if i % 3 else 36.8219,
                battery_pct=100.0 - (first + i) / 10,
            )
            for i, temperature in enumerate(step.temperatures)
        ]
        seqs = await self.book.log_many(measurements)
        for reading in await self.book.retained(seqs.start):
            self.logged[reading.seq] = reading
            if reading.temperature_c == PROBE_FAULT_C:
                model.faulty.add(reading.seq)

    async def sync(self, link: Link, sync_settings: SyncSettings, *, max_batches: int | None = None) -> None:
        async with httpx.AsyncClient(transport=link, base_url="http://testserver.local") as http:
            client = SyncClient(
                self.book,
                self.credentials,
                http=http,
                device_clock=lambda: datetime.now(UTC),
                settings=sync_settings,
                sleep=_no_sleep,
                rng=random.Random(0),
            )
            # Each lost answer is one failure in a row at most: the call never gives up because of them.
            await client.sync(max_failures=None, max_batches=max_batches)

    async def replay(self, step: Replay, link: Link) -> None:
        """Batches a tracker never sent in this shape: any readings it logged, grouped and ordered at random."""
        if not self.logged:
            return
        rng = random.Random(step.seed)
        seqs = sorted(self.logged)
        async with httpx.AsyncClient(transport=link, base_url="http://testserver.local") as http:
            for _ in range(step.batches):
                chosen = rng.sample(seqs, rng.randint(1, min(len(seqs), 60)))
                chosen += rng.choices(chosen, k=rng.randint(0, 3))  # repeats inside one batch
                rng.shuffle(chosen)
                body = encode_batch(
                    BatchOut(
                        sent_at=datetime.now(UTC).isoformat(),
                        readings=[_wire(self.logged[seq]) for seq in chosen],
                    ),
                    step.wire_format,
                )
                headers = {"Content-Type": f"application/{step.wire_format}"}
                if step.gzip:
                    body = gzip.compress(body)
                    headers["Content-Encoding"] = "gzip"
                headers["X-Signature"] = sign(body, self.credentials.secret)
                for _ in range(2 if step.twice else 1):
                    # An answer lost after the commit: the service holds the batch all the same.
                    with contextlib.suppress(httpx.ReadTimeout):
                        await http.post(f"/v1/trackers/{SERIAL}/sync", content=body, headers=headers)


def _wire(reading: LoggedReading) -> ReadingOut:
    return ReadingOut(**msgspec.structs.asdict(reading))


def expected_reading(logged: LoggedReading) -> Reading:
    """The reading the service must hold for a logged one: device time in UTC plus the device's own offset."""
    device_time = datetime.fromisoformat(logged.device_time)
    offset = device_time.utcoffset()
    assert offset is not None
    values = msgspec.structs.asdict(logged)
    del values["device_time"]
    return Reading(device_time=device_time.astimezone(UTC), utc_offset_min=int(offset.total_seconds()) // 60, **values)


async def play(database_url: str, directory: Path, plan: Sequence[Step]) -> None:
    """Play ``plan``, let the tracker finish its sync undisturbed, and check the service holds exactly its log."""
    service = Service(database_url)
    model = Model()
    client = await service.start()
    credentials = await register_tracker(client, admin_token=ADMIN_TOKEN, serial=SERIAL)
    tracker = Tracker(directory / "logbook.db", credentials)
    await tracker.open()
    try:
        for step in plan:
            if isinstance(step, Log):
                await tracker.log(step, model)
            elif isinstance(step, Sync):
                sync_settings = SyncSettings(batch_size=step.batch_size, wire_format=step.wire_format, gzip=step.gzip)
                await tracker.sync(Link(service, model, step.losses), sync_settings, max_batches=step.max_batches)
            elif isinstance(step, Replay):
                await tracker.replay(step, Link(service, model, step.losses))
            elif isinstance(step, RestartTracker):
                await tracker.close()
                await tracker.open()
            else:
                await service.restart()

        await tracker.sync(Link(service, model), SyncSettings(batch_size=50))

        last_seq = len(tracker.logged)
        status = await tracker.book.status()
        assert (status.last_seq, status.acked_through, status.pending) == (last_seq, last_seq, 0)
        await assert_the_service_holds_exactly(service, tracker.logged, model)
    finally:
        await tracker.close()
        await service.stop()


async def assert_the_service_holds_exactly(service: Service, logged: dict[int, LoggedReading], model: Model) -> None:
    readings, quarantined, count = service.held()
    last_seq = len(logged)

    assert sorted(logged) == list(range(1, last_seq + 1))
    assert count == len(readings) == last_seq - len(model.faulty)
    assert [r.seq for r in readings] == sorted(set(logged) - model.faulty)
    assert [r.seq for r, _ in quarantined] == sorted(model.faulty)
    for reading in readings:
        assert reading == expected_reading(logged[reading.seq])
    for reading, reason in quarantined:
        assert reading == expected_reading(logged[reading.seq])
        assert reason == f"temperature_c {PROBE_FAULT_C} is outside the physical range -100.0 to 100.0"

    response = await service.running.get(f"/v1/trackers/{SERIAL}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    sync = response.json()["sync"]
    assert (sync["acked_through"], sync["max_seq"]) == (last_seq, last_seq)
    # Each reading was new exactly once, however often it arrived.
    assert sync["readings_new"] + sync["readings_quarantined"] == last_seq
    assert sync["batches"] == model.batches


# --- The properties ---------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(plan=schedules)
def test_whatever_the_faults_the_service_ends_with_exactly_the_trackers_log(plan: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(play(f"sqlite:///{directory}/service.db", Path(directory), plan))


NO_LOSS: tuple[bool, ...] = ()
ADVERSARIAL: list[Step] = [
    Log(temperatures=(4.0, 4.5, 5.0, 5.25, 6.0) * 6, zone=2, fault_every=5),
    # Lose the first answers of the tracker's own sync: the readings are committed, the tracker does not know.
    Sync(batch_size=7, wire_format="json", gzip=False, losses=(True, True, False, True), max_batches=2),
    Replay(seed=1, batches=3, wire_format="msgpack", gzip=True, twice=True, losses=(False, True, True)),
    RestartService(),
    Log(temperatures=(-18.5, -19.0, -17.75) * 10, zone=3),
    RestartTracker(),
    Replay(seed=2, batches=4, wire_format="json", gzip=False, twice=True, losses=NO_LOSS),
    Sync(batch_size=11, wire_format="msgpack", gzip=True, losses=(True, False, True, True), max_batches=None),
    Log(temperatures=(8.0, 7.5, 8.5), zone=0, fault_every=2),
    RestartService(),
    RestartTracker(),
    Replay(seed=3, batches=2, wire_format="msgpack", gzip=False, twice=False, losses=(True,)),
]


async def test_a_fixed_adversarial_schedule_ends_with_exactly_the_trackers_log(
    database_url: str, tmp_path: Path
) -> None:
    await play(database_url, tmp_path, ADVERSARIAL)
