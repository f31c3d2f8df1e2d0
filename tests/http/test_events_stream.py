"""``GET /v1/events`` over a real socket, on each engine: ``coldchain serve`` in a child process streams the
notifications that another process (this test) publishes, resumes after ``Last-Event-ID``, keeps idle streams
alive and ends long ones, and ends them when the process stops. Also on PostgreSQL: positions follow commit order,
so a resuming reader misses nothing that committed late with a lower id."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from coldchain.domain.notifications import NotificationKind
from coldchain.storage import Store, open_store
from tests.factories import OPERATOR_HEADERS, OPERATOR_TOKEN, bearer, make_org, make_token
from tests.http.test_sync_api import assert_error
from tests.served import ServedColdchain, served

STREAM_MAX_S = 6.0


@dataclass
class Event:
    id: str | None
    event: str | None
    data: dict[str, Any]


@dataclass
class Stream:
    """What a client has read of one event stream so far."""

    events: list[Event] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    retry_ms: int | None = None
    ended: bool = False


async def read_stream(
    http: httpx.AsyncClient, url: str, headers: dict[str, str], into: Stream, *, until: int | None = None
) -> None:
    """Read ``url`` as server-sent events into ``into`` until ``until`` events arrived or the server ends it."""
    fields: dict[str, str] = {}
    async with http.stream("GET", url, headers=headers, timeout=30) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith(":"):
                into.comments.append(line[1:].strip())
            elif line.startswith("retry:"):
                into.retry_ms = int(line.removeprefix("retry:"))
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif "data" in fields:  # a blank line ends an event
                into.events.append(
                    Event(id=fields.get("id"), event=fields.get("event"), data=msgspec.json.decode(fields["data"]))
                )
                fields = {}
                if until is not None and len(into.events) >= until:
                    return
    into.ended = True


@dataclass
class Service:
    url: str
    store: Store
    org: int
    other: int
    reader: dict[str, str]
    """An auditor of ``org``: any role reads its organisation's events."""
    process: ServedColdchain


@pytest.fixture
async def service(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Service]:
    for name, value in {
        "JOBS_ENABLED": "false",
        "EVENTS_POLL_S": "0.05",
        "EVENTS_KEEPALIVE_S": "0.3",
        "EVENTS_STREAM_MAX_S": str(STREAM_MAX_S),
    }.items():
        monkeypatch.setenv(f"COLDCHAIN_{name}", value)
    store = await open_store(database_url, pool_size=2)
    try:
        org, other = await make_org(store, "Pharma"), await make_org(store, "Other")
        reader = bearer(await make_token(store, org.id, "auditor"))
        async with (
            httpx.AsyncClient() as http,
            served(database_url, tmp_path, http=http, admin_token=OPERATOR_TOKEN) as process,
        ):
            yield Service(url=process.url, store=store, org=org.id, other=other.id, reader=reader, process=process)
    finally:
        await store.close()


async def publish(store: Store, organisation_id: int, subject: str, kind: NotificationKind = "alarm.raised") -> int:
    async with store.transaction() as tx:
        [notification_id] = await tx.publish(
            kind, organisation_ids=[organisation_id], subject=subject, payload={"n": subject}, now=datetime.now(UTC)
        )
    return notification_id


async def wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 (a condition on what another task reads, not an event)
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), timeout_s)


async def test_a_connected_client_gets_its_organisations_new_events_in_order(service: Service) -> None:
    await publish(service.store, service.org, "before the client connected")
    stream = Stream()
    async with httpx.AsyncClient() as http:
        reading = asyncio.create_task(read_stream(http, f"{service.url}/v1/events", service.reader, stream, until=3))
        await wait_for(lambda: "keep-alive" in stream.comments)  # connected, and idle for a while
        ids = [await publish(service.store, service.org, "first")]
        await publish(service.store, service.other, "someone else's")
        ids.append(await publish(service.store, service.org, "second", "tracker.silent"))
        ids.append(await publish(service.store, service.org, "third", "custody.recorded"))
        await asyncio.wait_for(reading, 10)

    assert [e.data["subject"] for e in stream.events] == ["first", "second", "third"]
    assert [e.event for e in stream.events] == ["alarm.raised", "tracker.silent", "custody.recorded"]
    assert [e.data["notification_id"] for e in stream.events] == ids
    positions = [int(e.id or 0) for e in stream.events]
    assert positions == sorted(positions) and positions == [e.data["position"] for e in stream.events]
    assert {e.data["organisation_id"] for e in stream.events} == {service.org}
    assert stream.events[0].data["payload"] == {"n": "first"}
    assert stream.retry_ms == 1000


async def test_a_client_resumes_after_the_last_event_id_it_saw(service: Service) -> None:
    for n in range(5):
        await publish(service.store, service.org, f"event {n}")
    everything, resumed, both = Stream(), Stream(), Stream()
    async with httpx.AsyncClient() as http:
        await read_stream(http, f"{service.url}/v1/events?after=0", service.reader, everything, until=5)
        last_seen = everything.events[1].id
        assert last_seen is not None
        await read_stream(
            http, f"{service.url}/v1/events", service.reader | {"Last-Event-ID": last_seen}, resumed, until=3
        )
        # A reconnecting browser repeats the URL it first used: Last-Event-ID wins over ?after=.
        await read_stream(
            http, f"{service.url}/v1/events?after=0", service.reader | {"Last-Event-ID": last_seen}, both, until=3
        )
    assert [e.data["subject"] for e in everything.events] == [f"event {n}" for n in range(5)]
    assert [e.data["subject"] for e in resumed.events] == ["event 2", "event 3", "event 4"]
    assert [e.id for e in both.events] == [e.id for e in resumed.events]


async def test_the_operator_streams_an_organisation_it_names(service: Service) -> None:
    await publish(service.store, service.other, "for the other organisation")
    stream = Stream()
    async with httpx.AsyncClient() as http:
        await read_stream(
            http, f"{service.url}/v1/events?organisation_id={service.other}&after=0", OPERATOR_HEADERS, stream, until=1
        )
    assert [e.data["subject"] for e in stream.events] == ["for the other organisation"]


async def test_a_stream_ends_after_its_maximum_and_the_client_resumes(service: Service) -> None:
    stream = Stream()
    async with httpx.AsyncClient() as http:
        started = asyncio.get_running_loop().time()
        reading = asyncio.create_task(read_stream(http, f"{service.url}/v1/events", service.reader, stream))
        await wait_for(lambda: bool(stream.comments))
        await publish(service.store, service.org, "during")
        await asyncio.wait_for(reading, STREAM_MAX_S + 5)
        elapsed = asyncio.get_running_loop().time() - started
        await publish(service.store, service.org, "between")
        assert stream.events[-1].id is not None
        resumed = Stream()
        await read_stream(
            http, f"{service.url}/v1/events", service.reader | {"Last-Event-ID": stream.events[-1].id}, resumed, until=1
        )
    assert stream.ended and STREAM_MAX_S <= elapsed < STREAM_MAX_S + 5
    assert [e.data["subject"] for e in stream.events] == ["during"]
    assert [e.data["subject"] for e in resumed.events] == ["between"]


async def test_a_stream_ends_when_its_process_is_stopped_and_the_stop_does_not_wait_for_its_maximum(
    service: Service,
) -> None:
    stream = Stream()
    async with httpx.AsyncClient() as http:
        reading = asyncio.create_task(read_stream(http, f"{service.url}/v1/events", service.reader, stream))
        await wait_for(lambda: bool(stream.comments))
        started = asyncio.get_running_loop().time()
        returncode = await asyncio.to_thread(service.process.stop)
        stopped_after_s = asyncio.get_running_loop().time() - started
        await asyncio.wait_for(reading, 5)
    assert stream.ended and returncode == 0
    assert stopped_after_s < STREAM_MAX_S / 2, service.process.output()


async def test_a_stream_that_cannot_be_served_is_refused_before_it_starts(service: Service) -> None:
    async with httpx.AsyncClient(base_url=service.url) as http:
        assert_error(await http.get("/v1/events"), 401, "unauthenticated")
        assert_error(await http.get("/v1/events", headers=OPERATOR_HEADERS), 422, "invalid", "organisation_id")
        assert_error(await http.get("/v1/events?organisation_id=999", headers=OPERATOR_HEADERS), 404, "not_found")
        assert_error(
            await http.get(f"/v1/events?organisation_id={service.other}", headers=service.reader), 404, "not_found"
        )
        assert_error(await http.get("/v1/events?after=-1", headers=service.reader), 422, "invalid")
        for beyond_any_id in (2**63, 2**64):
            answer = await http.get(f"/v1/events?after={beyond_any_id}", headers=service.reader)
            assert_error(answer, 422, "invalid", "after")
        answer = await http.get("/v1/events", headers={**service.reader, "Last-Event-ID": str(2**64)})
        assert_error(answer, 422, "invalid", "last_event_id")
        assert_error(
            await http.get("/v1/events", headers=service.reader | {"Last-Event-ID": "yesterday"}), 422, "invalid"
        )


async def test_a_notification_committed_late_with_a_lower_id_comes_after_the_reader_position(
    postgres_database: str,
) -> None:
    """Two transactions publish; the one that inserted first commits last. A reader that resumed after the first
    commit's position still gets the late one: positions follow commit order, ids do not."""
    store = await open_store(postgres_database, pool_size=4)
    try:
        org = await make_org(store)
        early_inserted, late_inserted = asyncio.Event(), asyncio.Event()

        async def slow_writer() -> int:
            async with store.transaction() as tx:
                [notification_id] = await tx.publish(
                    "alarm.raised", organisation_ids=[org.id], subject="slow", payload={}, now=datetime.now(UTC)
                )
                early_inserted.set()
                await late_inserted.wait()
            return notification_id

        async def quick_writer() -> int:
            await early_inserted.wait()
            async with store.transaction() as tx:
                [notification_id] = await tx.publish(
                    "alarm.raised", organisation_ids=[org.id], subject="quick", payload={}, now=datetime.now(UTC)
                )
            return notification_id

        slow = asyncio.create_task(slow_writer())
        quick_id = await quick_writer()
        async with store.transaction() as tx:
            seen = await tx.notifications_after_position(org.id, after=0)
        late_inserted.set()
        slow_id = await slow
        async with store.transaction() as tx:
            after_seen = await tx.notifications_after_position(org.id, after=seen[-1].position or 0)
    finally:
        await store.close()
    assert slow_id < quick_id
    assert [n.subject for n in seen] == ["quick"]
    assert [(n.id, n.subject) for n in after_seen] == [(slow_id, "slow")]
