"""A served coldchain stopped with SIGTERM while trackers push batches: it drains, finishes the batches in flight,
refuses new ones with 503 and Retry-After, and exits 0 within its stop timeout; every batch answered 200 is
stored, and no batch is stored in part.

A real ``python -m coldchain serve`` on a free 127.0.0.1 port and a real PostgreSQL database; the trackers are
plain HTTP clients sending signed batches of 2,000 readings back to back, each on a connection of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from coldchain.storage import open_store
from tests.http.test_sync_api import sign
from tests.served import ServedColdchain

pytestmark = pytest.mark.slow

ADMIN_TOKEN = "graceful-shutdown-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
TRACKERS = 6
BATCH = 2_000
DRAIN_S = 1.5
STOP_TIMEOUT_S = 10.0
START = datetime(2026, 3, 1, tzinfo=UTC)
EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(2200, 1, 1, tzinfo=UTC)


@dataclass
class Sent:
    first_seq: int
    last_seq: int
    started: float
    ended: float = 0.0
    status: int | None = None
    """None: no answer (the connection was refused or dropped)."""
    retry_after: str | None = None

    @property
    def seqs(self) -> set[int]:
        return set(range(self.first_seq, self.last_seq + 1))


@dataclass
class Tracker:
    serial: str
    secret: str
    sent: list[Sent] = field(default_factory=list)


def _body(first_seq: int) -> bytes:
    readings = [
        {
            "seq": seq,
            "device_time": (START + timedelta(minutes=seq)).isoformat(),
            "temperature_c": 4.0 + seq % 30 / 10,
        }
        for seq in range(first_seq, first_seq + BATCH)
    ]
    return json.dumps({"readings": readings}).encode()


async def _push(url: str, tracker: Tracker) -> None:
    """Send batch after batch until the service answers anything but 200, or nothing."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        while True:
            first = 1 + BATCH * len(tracker.sent)
            body = _body(first)
            sent = Sent(first_seq=first, last_seq=first + BATCH - 1, started=time.monotonic())
            tracker.sent.append(sent)
            try:
                response = await http.post(
                    f"/v1/trackers/{tracker.serial}/sync",
                    content=body,
                    headers={"Content-Type": "application/json", "X-Signature": sign(body, tracker.secret)},
                )
            except httpx.TransportError:
                sent.ended = time.monotonic()
                return
            sent.ended = time.monotonic()
            sent.status, sent.retry_after = response.status_code, response.headers.get("retry-after")
            if response.status_code != 200:
                return


async def _watch_readiness(url: str, seen: list[tuple[float, int | None, str | None]]) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        while True:
            try:
                response = await http.get("/health/ready")
                seen.append((time.monotonic(), response.status_code, response.json()["status"]))
            except httpx.TransportError:
                seen.append((time.monotonic(), None, None))
                return
            await asyncio.sleep(0.05)


async def test_sigterm_drains_finishes_the_batches_in_flight_stores_none_in_part_and_exits_0(
    postgres_database: str, tmp_path: Path
) -> None:
    settings = {"DRAIN_S": str(DRAIN_S), "STOP_TIMEOUT_S": str(STOP_TIMEOUT_S), "RETRY_AFTER_S": "2"}
    with ServedColdchain(postgres_database, tmp_path, admin_token=ADMIN_TOKEN, settings=settings) as service:
        service.start()
        async with httpx.AsyncClient(timeout=10) as http:
            await service.wait_healthy(http)
            trackers = []
            for n in range(TRACKERS):
                registered = await http.post(f"{service.url}/v1/trackers", json={"serial": f"STOP-{n}"}, headers=ADMIN)
                assert registered.status_code == 201, registered.text
                trackers.append(Tracker(serial=f"STOP-{n}", secret=registered.json()["secret"]))
        readiness: list[tuple[float, int | None, str | None]] = []
        watching = asyncio.create_task(_watch_readiness(service.url, readiness))
        pushing = [asyncio.create_task(_push(service.url, tracker)) for tracker in trackers]
        async with asyncio.timeout(60):
            while sum(s.status == 200 for t in trackers for s in t.sent) < 2 * TRACKERS:  # noqa: ASYNC110
                await asyncio.sleep(0.02)

        assert service.process is not None
        signalled = time.monotonic()
        os.killpg(service.process.pid, signal.SIGTERM)  # as a service manager stops a unit: the whole group
        returncode = await asyncio.to_thread(service.process.wait, STOP_TIMEOUT_S + 10)
        stopped_after_s = time.monotonic() - signalled
        async with asyncio.timeout(30):
            await asyncio.gather(*pushing, watching)
        output = service.output()

    assert returncode == 0, output
    assert stopped_after_s < STOP_TIMEOUT_S, output
    assert stopped_after_s >= DRAIN_S
    assert "Traceback" not in output, output

    sent = [s for t in trackers for s in t.sent]
    in_flight = [s for s in sent if s.started < signalled < s.ended]
    assert any(s.status == 200 for s in in_flight), "a batch in flight at SIGTERM was finished and answered 200"
    draining = [s for s in sent if s.status == 503]
    assert draining, "batches sent while draining were refused"
    # (a batch sent just before the signal whose handling had not begun is refused too: nothing of it is stored)
    assert all(s.retry_after == "2" and s.ended > signalled for s in draining)
    assert {s.status for s in sent} <= {200, 503, None}
    before = [status for at, status, _ in readiness if at < signalled]
    after = [(status, state) for at, status, state in readiness if at > signalled + 0.2]
    assert before and set(before) == {200}
    assert (503, "draining") in after, "readiness said draining while the process still listened"

    store = await open_store(postgres_database, pool_size=1, migrate=False)
    try:
        for tracker in trackers:
            async with store.transaction() as tx:
                held_tracker = await tx.get_tracker(tracker.serial)
                assert held_tracker is not None
                held = {r.seq for r in await tx.readings_between(held_tracker.id, EPOCH, END_OF_TIME)}
            for batch in tracker.sent:
                stored = held & batch.seqs
                assert stored in (set(), batch.seqs), f"{tracker.serial}: batch {batch.first_seq} stored in part"
                if batch.status == 200:
                    assert stored == batch.seqs, f"{tracker.serial}: batch {batch.first_seq} answered 200, not held"
                if batch.status == 503:
                    assert stored == set(), f"{tracker.serial}: batch {batch.first_seq} refused, yet held"
            assert held <= set().union(*(b.seqs for b in tracker.sent))
    finally:
        await store.close()
