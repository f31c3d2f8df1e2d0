"""Whatever the network and the tracker go through, the service ends with exactly the logbook's readings."""

from __future__ import annotations

import asyncio
import random
import tempfile
from collections import deque
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

import httpx
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.tracker_sim.fake_service import FakeService
from tracker_sim.logbook import Logbook, LoggedReading, Measurement
from tracker_sim.sync import SyncClient, SyncSettings, TrackerCredentials

TRACKER = TrackerCredentials(tracker_id="TRK-P", secret="s3cr3t")
DEVICE_NOW = datetime(2026, 3, 5, 12, 0, tzinfo=timezone(timedelta(hours=-5)))
T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
Fault = Literal["lost", "duplicate", "429", "503"]


class Log(msgspec.Struct, frozen=True):
    count: int


class Sync(msgspec.Struct, frozen=True):
    faults: tuple[Fault | None, ...]
    batch_size: int
    wire_format: Literal["json", "msgpack"]
    gzip: bool


class Restart(msgspec.Struct, frozen=True):
    """The tracker reboots: logbook closed and reopened, a new sync client."""


class Prune(msgspec.Struct, frozen=True):
    """Acknowledged readings are deleted at once (retention zero)."""


Step = Log | Sync | Restart | Prune

faults = st.sampled_from(["lost", "duplicate", "429", "503", None])
steps = st.lists(
    st.one_of(
        st.builds(Log, st.integers(1, 15)),
        st.builds(
            Sync,
            st.lists(faults, max_size=6).map(tuple),
            st.integers(1, 12),
            st.sampled_from(["json", "msgpack"]),
            st.booleans(),
        ),
        st.just(Restart()),
        st.just(Prune()),
    ),
    min_size=1,
    max_size=14,
)
values = st.floats(min_value=-30, max_value=40, allow_nan=False, width=32)


async def _noop_sleep(seconds: float) -> None:
    return None


async def _play(
    path: Path, plan: list[Step], temperatures: list[float]
) -> tuple[FakeService, dict[int, LoggedReading]]:
    service = FakeService(secrets_by_tracker={TRACKER.tracker_id: TRACKER.secret})
    logged: dict[int, LoggedReading] = {}
    rng = random.Random(0)
    logbook = await Logbook.open(path)
    try:
        async with httpx.AsyncClient(transport=service.transport(), base_url="http://service.test") as http:

            def client(sync_settings: SyncSettings) -> SyncClient:
                return SyncClient(
                    logbook,
                    TRACKER,
                    http=http,
                    device_clock=lambda: DEVICE_NOW,
                    sleep=_noop_sleep,
                    rng=rng,
                    settings=sync_settings,
                )

            for step in plan:
                if isinstance(step, Log):
                    first = len(logged)
                    seqs = await logbook.log_many(
                        Measurement(
                            device_time=T0 + timedelta(minutes=i),
                            temperature_c=temperatures[i % len(temperatures)],
                            latitude=None if i % 3 else 45.0 + i / 1000,
                            longitude=None if i % 3 else 7.5,
                        )
                        for i in range(first, first + step.count)
                    )
                    for reading in await logbook.retained(seqs.start):
                        logged[reading.seq] = reading
                elif isinstance(step, Sync):
                    service.faults = deque(step.faults)
                    await client(
                        SyncSettings(batch_size=step.batch_size, wire_format=step.wire_format, gzip=step.gzip)
                    ).sync(max_failures=2)
                elif isinstance(step, Restart):
                    await logbook.close()
                    logbook = await Logbook.open(path)
                else:
                    await logbook.prune(now=DEVICE_NOW, retention=timedelta(0))
            service.faults.clear()
            final = await client(SyncSettings(batch_size=7)).sync()
            assert final.complete
            status = await logbook.status()
            assert (status.acked_through, status.pending) == (len(logged), 0)
    finally:
        await logbook.close()
    return service, logged


@settings(max_examples=60, deadline=None)
@given(plan=steps, temperatures=st.lists(values, min_size=1, max_size=5))
def test_the_service_ends_with_every_logged_reading_once_and_unchanged(
    plan: list[Step], temperatures: list[float]
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        service, logged = asyncio.run(_play(Path(directory) / "log.db", plan, temperatures))
    held = service.held(TRACKER.tracker_id)
    assert sorted(held) == sorted(logged) == list(range(1, len(logged) + 1))
    assert service.stored_new == len(logged)  # each reading stored once; repeats only counted as duplicates
    for seq, reading in logged.items():
        assert msgspec.structs.asdict(held[seq]) == msgspec.structs.asdict(reading)
