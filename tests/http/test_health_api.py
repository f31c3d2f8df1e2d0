"""Liveness, readiness and draining through the app on each engine, and the signals that start draining.

``/health/live`` asks nothing of the database; ``/health/ready`` asks whether the database answers, whether every
migration of this version is applied, and whether the process is draining for a stop. While draining, new sync
batches are refused 503 with Retry-After and nothing of them is stored.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import FrameType

import asyncpg
import pytest

from coldchain.http.lifecycle import Lifecycle
from tests.http.test_sync_api import (
    ClientFactory,
    as_json,
    assert_error,
    assert_nothing_stored,
    batch,
    post_batch,
    reading,
    register,
)

READY = {"status": "ready", "database": "reachable", "migrations": "applied", "draining": False, "version": "0.1.0"}


async def test_a_fresh_service_is_live_and_ready(make_client: ClientFactory) -> None:
    client = await make_client()

    live = await client.get("/health/live")
    ready = await client.get("/health/ready")

    assert (live.status_code, live.json()) == (200, {"status": "ok", "version": "0.1.0"})
    assert (ready.status_code, ready.json()) == (200, READY)


async def test_without_its_database_the_process_is_live_but_not_ready(make_client: ClientFactory) -> None:
    client = await make_client()
    client.blocking_portal.call(client.app.state.store.close)

    live = await client.get("/health/live")
    ready = await client.get("/health/ready")

    assert live.status_code == 200
    assert ready.status_code == 503
    assert ready.json() | {"version": "-"} == {
        "status": "unavailable",
        "database": "unreachable",
        "migrations": "unknown",
        "draining": False,
        "version": "-",
    }


async def _record_a_newer_migration(database_url: str) -> None:
    """What a newer version of the service leaves when it migrates the shared database first."""
    row = (9999, "from_a_newer_version", "0" * 64)
    if database_url.startswith("sqlite"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as lite:
            lite.execute("INSERT INTO schema_migrations VALUES (?, ?, ?, ?)", (*row, datetime.now(UTC).isoformat()))
        return
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2, $3, $4)", *row, datetime.now(UTC))
    finally:
        await conn.close()


async def test_a_database_migrated_by_a_newer_version_makes_this_process_not_ready(
    make_client: ClientFactory, database_url: str
) -> None:
    client = await make_client()
    await _record_a_newer_migration(database_url)

    ready = await client.get("/health/ready")

    assert ready.status_code == 503
    assert (ready.json()["status"], ready.json()["migrations"]) == ("unavailable", "mismatched")
    assert (await client.get("/health")).status_code == 200  # the database itself answers


async def test_a_draining_process_is_not_ready_and_refuses_new_batches_with_retry_after(
    make_client: ClientFactory,
) -> None:
    client = await make_client(retry_after_s=3)
    secret = await register(client)
    lifecycle: Lifecycle = client.app.state.lifecycle

    lifecycle.draining = True
    ready = await client.get("/health/ready")
    refused = await post_batch(client, secret, as_json(batch(reading(1), reading(2))))

    assert (ready.status_code, ready.json()["status"], ready.json()["draining"]) == (503, "draining", True)
    assert_error(refused, 503, "unavailable", "stopping", "Retry-After")
    assert refused.headers["Retry-After"] == "3"
    assert refused.headers["Connection"] == "close"
    await assert_nothing_stored(client)
    assert (await client.get("/health/live")).status_code == 200


# --- Signals --------------------------------------------------------------------------------------------------


@pytest.fixture
def server_handlers() -> Iterator[list[int]]:
    """Stand-ins for the ASGI server's signal handlers, recording what was handed to them."""
    handed: list[int] = []

    def server(sig: int, frame: FrameType | None) -> None:
        handed.append(sig)

    before = {sig: signal.signal(sig, server) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield handed
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


async def _until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (signal handlers set plain flags, not events)
            await asyncio.sleep(0.01)


async def test_sigterm_drains_first_and_hands_over_to_the_server_after_the_drain_time(
    server_handlers: list[int],
) -> None:
    lifecycle = Lifecycle()
    async with lifecycle.draining_on_signals(0.3):
        os.kill(os.getpid(), signal.SIGTERM)
        await _until(lambda: lifecycle.draining)
        assert server_handlers == []  # still listening, draining
        os.kill(os.getpid(), signal.SIGTERM)  # a process manager signalling the whole group: changes nothing
        await _until(lambda: server_handlers, timeout_s=5.0)
        await asyncio.sleep(0.1)
    assert server_handlers == [signal.SIGTERM]
    assert lifecycle.draining


async def test_a_second_sigint_hands_over_at_once(server_handlers: list[int]) -> None:
    lifecycle = Lifecycle()
    async with lifecycle.draining_on_signals(60.0):
        os.kill(os.getpid(), signal.SIGINT)
        await _until(lambda: lifecycle.draining)
        os.kill(os.getpid(), signal.SIGINT)
        await _until(lambda: server_handlers)
    assert server_handlers == [signal.SIGINT]


async def test_the_handlers_before_come_back_when_the_app_stops(server_handlers: list[int]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    async with Lifecycle().draining_on_signals(0.0):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before
