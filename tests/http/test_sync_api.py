"""The sync API and the admin API through the real app, on each storage engine.

A batch is stored whole or refused whole; what is stored is checked through the store itself, not only through
the answer. The app runs on the test client's own event loop, so the store is read there (``blocking_portal``).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import json
import math
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import msgspec
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from coldchain.domain.readings import Reading
from coldchain.http.app import create_app
from coldchain.http.auth import UNAUTHENTICATED_BATCH
from coldchain.settings import load_settings
from coldchain.storage import Store

ADMIN_TOKEN = "admin-token-for-tests"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
SERIAL = "TRK-0001"
JSON = "application/json"
MSGPACK = "application/msgpack"
EPOCH = datetime(1900, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(2200, 1, 1, tzinfo=UTC)

Client = AsyncTestClient[Litestar]
ClientFactory = Callable[..., Awaitable[Client]]


class Held(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the service holds of one tracker, read straight from the store."""

    readings: list[Reading]
    quarantined: list[tuple[Reading, str]]
    count: int


async def _read_held(store: Store, serial: str) -> Held:
    async with store.transaction() as tx:
        tracker = await tx.get_tracker(serial)
        assert tracker is not None
        return Held(
            readings=await tx.readings_between(tracker.id, EPOCH, END_OF_TIME),
            quarantined=await tx.quarantined_readings(tracker.id),
            count=await tx.count_readings(tracker.id),
        )


def held(client: Client, serial: str = SERIAL) -> Held:
    result: Held = client.blocking_portal.call(_read_held, client.app.state.store, serial)
    return result


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def reading(seq: int, *, minutes: int | None = None, offset: str = "+02:00", **values: object) -> dict[str, object]:
    """A reading as a tracker puts it on the wire: device time in RFC 3339 with the device's own offset."""
    wall_clock = datetime(2026, 3, 2, 8, 0, tzinfo=UTC) + timedelta(minutes=5 * seq if minutes is None else minutes)
    device_time = wall_clock.strftime("%Y-%m-%dT%H:%M:%S") + offset
    return {"seq": seq, "device_time": device_time, "temperature_c": 4.0 + seq / 10, **values}


def batch(*readings: dict[str, object], sent_at: datetime | None = None) -> dict[str, object]:
    body: dict[str, object] = {"readings": list(readings)}
    if sent_at is not None:
        body["sent_at"] = sent_at.isoformat()
    return body


def as_json(body: object) -> bytes:
    return json.dumps(body).encode()


def as_msgpack(body: object) -> bytes:
    return msgspec.msgpack.encode(body)


ENCODINGS: list[tuple[str, Callable[[object], bytes]]] = [(JSON, as_json), (MSGPACK, as_msgpack)]


async def post_batch(
    client: Client,
    secret: str,
    body: bytes,
    *,
    content_type: str = JSON,
    encoding: str | None = None,
    serial: str = SERIAL,
    signature: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": content_type, "X-Signature": signature or sign(body, secret)}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return await client.post(f"/v1/trackers/{serial}/sync", content=body, headers=headers)


async def register(client: Client, serial: str = SERIAL) -> str:
    response = await client.post("/v1/trackers", json={"serial": serial, "model": "test"}, headers=ADMIN)
    assert response.status_code == 201, response.text
    secret: str = response.json()["secret"]
    return secret


async def tracker_of(client: Client, serial: str = SERIAL) -> dict[str, Any]:
    response = await client.get(f"/v1/trackers/{serial}", headers=ADMIN)
    assert response.status_code == 200, response.text
    tracker: dict[str, Any] = response.json()
    return tracker


async def status_of(client: Client, serial: str = SERIAL) -> dict[str, Any]:
    response = await client.get(f"/v1/trackers/{serial}", headers=ADMIN)
    assert response.status_code == 200, response.text
    sync: dict[str, Any] = response.json()["sync"]
    return sync


def assert_error(response: httpx.Response, status_code: int, error: str, *in_detail: str) -> None:
    assert response.status_code == status_code, response.text
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == error
    for fragment in in_detail:
        assert fragment in body["detail"]


@pytest.fixture
async def make_client(database_url: str) -> AsyncIterator[ClientFactory]:
    """Start the app on the test's database with settings of the test's choosing."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Client:
            overrides.setdefault("admin_token", ADMIN_TOKEN)
            app = create_app(load_settings({}, database_url=database_url, **overrides))
            client: Client = await stack.enter_async_context(AsyncTestClient(app))
            return client

        yield make


@pytest.fixture
async def client(make_client: ClientFactory) -> Client:
    return await make_client()


@pytest.fixture
async def secret(client: Client) -> str:
    return await register(client)


# --- Accepted batches ----------------------------------------------------------------------------------------


async def test_a_signed_json_batch_is_stored_and_acknowledged_after_commit(client: Client, secret: str) -> None:
    before = datetime.now(UTC)

    response = await post_batch(client, secret, as_json(batch(reading(1), reading(2), reading(3))))

    assert response.status_code == 200, response.text
    ack = response.json()
    assert {k: v for k, v in ack.items() if k != "server_time"} == {
        "acked_through": 3,
        "missing": [],
        "new": 3,
        "duplicates": 0,
        "quarantined": 0,
        "conflicts": 0,
    }
    assert before <= datetime.fromisoformat(ack["server_time"]) <= datetime.now(UTC)
    stored = held(client)
    assert stored.count == 3
    assert [r.seq for r in stored.readings] == [1, 2, 3]
    assert [r.temperature_c for r in stored.readings] == [4.1, 4.2, 4.3]
    assert stored.readings[0].device_time == datetime(2026, 3, 2, 6, 5, tzinfo=UTC)


async def test_a_messagepack_batch_is_stored_exactly_like_the_same_batch_in_json(client: Client) -> None:
    readings = [reading(1, humidity_pct=55.5, latitude=52.52, longitude=13.405), reading(2, battery_pct=99.0)]
    stored = []
    for content_type, encode in ENCODINGS:
        serial = f"TRK-{content_type.rpartition('/')[2]}"
        secret = await register(client, serial)

        response = await post_batch(client, secret, encode(batch(*readings)), content_type=content_type, serial=serial)

        assert response.status_code == 200, response.text
        assert response.json()["new"] == 2
        stored.append(held(client, serial).readings)
    assert stored[0] == stored[1]
    assert stored[1][0].latitude == 52.52 and stored[1][0].humidity_pct == 55.5


async def test_a_gzipped_batch_signed_over_the_compressed_bytes_is_stored(client: Client, secret: str) -> None:
    json_body = gzip.compress(as_json(batch(*(reading(seq) for seq in range(1, 41)))))
    msgpack_body = gzip.compress(as_msgpack(batch(*(reading(seq) for seq in range(41, 81)))))

    as_json_gz = await post_batch(client, secret, json_body, encoding="gzip")
    as_msgpack_gz = await post_batch(client, secret, msgpack_body, content_type=MSGPACK, encoding="gzip")

    assert as_json_gz.status_code == as_msgpack_gz.status_code == 200, (as_json_gz.text, as_msgpack_gz.text)
    assert (as_json_gz.json()["acked_through"], as_msgpack_gz.json()["acked_through"]) == (40, 80)
    stored = held(client)
    assert stored.count == 80
    assert [r.temperature_c for r in stored.readings] == [4.0 + seq / 10 for seq in range(1, 81)]


async def test_each_reading_keeps_the_utc_offset_its_device_reported(client: Client, secret: str) -> None:
    body = batch(
        reading(1, minutes=0, offset="+05:30"),
        reading(2, minutes=0, offset="-08:00"),
        reading(3, minutes=0, offset="Z"),
    )

    response = await post_batch(client, secret, as_json(body))

    assert response.status_code == 200, response.text
    by_seq = {r.seq: r for r in held(client).readings}
    assert by_seq[1].utc_offset_min == 330
    assert by_seq[1].device_time == datetime(2026, 3, 2, 2, 30, tzinfo=UTC)
    assert by_seq[2].utc_offset_min == -480
    assert by_seq[2].device_time == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)
    assert by_seq[3].utc_offset_min == 0
    assert by_seq[3].device_time == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


# --- Refused batches: nothing of them is stored -------------------------------------------------------------


async def assert_nothing_stored(client: Client, serial: str = SERIAL) -> None:
    stored = held(client, serial)
    assert stored.count == 0
    assert stored.quarantined == []
    status = await status_of(client, serial)
    assert (status["acked_through"], status["batches"], status["readings_new"]) == (0, 0, 0)


VALID = as_json(batch(reading(1), reading(2)))


class Refusal(msgspec.Struct, frozen=True, kw_only=True):
    """One way to send a batch the service must refuse whole."""

    case: str
    body: bytes = VALID
    content_type: str = JSON
    encoding: str | None = None
    signature: str | None = "valid"
    """"valid": signed correctly with the tracker's secret; None: no X-Signature header."""
    in_detail: str


async def assert_refused(client: Client, secret: str, refusals: list[Refusal], status_code: int, error: str) -> None:
    for refusal in refusals:
        headers = {"Content-Type": refusal.content_type}
        if refusal.signature is not None:
            headers["X-Signature"] = sign(refusal.body, secret) if refusal.signature == "valid" else refusal.signature
        if refusal.encoding is not None:
            headers["Content-Encoding"] = refusal.encoding

        response = await client.post(f"/v1/trackers/{SERIAL}/sync", content=refusal.body, headers=headers)

        answer = response.json()
        assert (response.status_code, set(answer), answer["error"]) == (status_code, {"error", "detail"}, error), (
            refusal.case,
            response.text,
        )
        assert refusal.in_detail in answer["detail"], (refusal.case, answer["detail"])
        await assert_nothing_stored(client)


async def test_a_batch_without_a_valid_signature_over_the_exact_body_is_refused_401_and_nothing_is_stored(
    client: Client, secret: str
) -> None:
    no_match = UNAUTHENTICATED_BATCH
    refusals = [
        Refusal(case="no header", signature=None, in_detail="missing X-Signature header (sha256=<hex HMAC"),
        Refusal(case="empty header", signature="", in_detail="missing X-Signature header"),
        Refusal(case="sha1", signature="sha1=" + hashlib.sha1(VALID).hexdigest(), in_detail="must be 'sha256=<hex"),
        Refusal(case="no digest", signature="sha256=", in_detail="must be 'sha256=<hex"),
        Refusal(case="zeros", signature="sha256=" + "0" * 64, in_detail=no_match),
        Refusal(case="another key", signature=sign(VALID, "not-the-secret"), in_detail=no_match),
        Refusal(case="another body", signature=sign(as_json(batch(reading(1))), secret), in_detail=no_match),
        Refusal(
            case="signed before compressing",
            body=gzip.compress(VALID),
            encoding="gzip",
            signature=sign(VALID, secret),
            in_detail=no_match,
        ),
    ]

    await assert_refused(client, secret, refusals, 401, "unauthenticated")


async def test_a_signature_made_with_another_trackers_secret_is_refused_401(client: Client, secret: str) -> None:
    other_secret = await register(client, "TRK-OTHER")

    response = await post_batch(client, other_secret, VALID)

    assert response.status_code == 401
    assert response.json() == {"error": "unauthenticated", "detail": UNAUTHENTICATED_BATCH}
    await assert_nothing_stored(client)
    await assert_nothing_stored(client, "TRK-OTHER")


async def test_an_unknown_tracker_gets_the_same_401_as_a_bad_signature_so_serials_cannot_be_probed(
    client: Client, secret: str
) -> None:
    unknown = await post_batch(client, "whatever", VALID, serial="TRK-NOBODY")
    bad_signature = await post_batch(client, "not-the-secret", VALID)

    assert unknown.status_code == bad_signature.status_code == 401
    assert unknown.json() == bad_signature.json() == {"error": "unauthenticated", "detail": UNAUTHENTICATED_BATCH}
    assert "TRK-NOBODY" not in unknown.text
    assert client.blocking_portal.call(_count_all, client.app.state.store) == 0
    # Registering it is enough: an unknown serial is not remembered as unknown.
    secret = await register(client, "TRK-NOBODY")
    accepted = await post_batch(client, secret, VALID, serial="TRK-NOBODY")
    assert accepted.status_code == 200, accepted.text


async def test_an_osmand_trackers_serial_cannot_sync_signed_batches(client: Client) -> None:
    created = await client.post("/v1/trackers", json={"serial": "PHONE-1", "protocol": "osmand"}, headers=ADMIN)
    assert created.status_code == 201, created.text

    response = await post_batch(client, "any key at all", VALID, serial="PHONE-1")

    assert response.status_code == 401
    assert response.json() == {"error": "unauthenticated", "detail": UNAUTHENTICATED_BATCH}
    await assert_nothing_stored(client, "PHONE-1")


async def _count_all(store: Store) -> int:
    async with store.transaction() as tx:
        return await tx.count_readings()


async def test_a_body_that_cannot_be_decoded_is_refused_400_and_nothing_is_stored(client: Client, secret: str) -> None:
    refusals = [
        Refusal(case="json cut short", body=b'{"readings": [{"seq": 1,', in_detail="not valid application/json"),
        Refusal(
            case="json with NaN",
            body=b'{"readings": [{"seq": 1, "device_time": "2026-03-02T08:00:00Z", "temperature_c": NaN}]}',
            in_detail="not valid application/json",
        ),
        Refusal(case="msgpack garbage", body=b"\xc1", content_type=MSGPACK, in_detail="not valid application/msgpack"),
        Refusal(
            case="not gzip", body=b"plain", encoding="gzip", in_detail="Content-Encoding is gzip but the body is not"
        ),
        Refusal(
            case="gzip cut short", body=gzip.compress(VALID)[:-12], encoding="gzip", in_detail="gzip body is truncated"
        ),
    ]

    await assert_refused(client, secret, refusals, 400, "bad_request")


WRONG_FIELDS: list[tuple[str, object, str, str]] = [
    ("seq a string", batch(reading(1), {**reading(2), "seq": "two"}), "$.readings[1].seq", "Expected `int`, got `str`"),
    ("seq zero", batch(reading(1), reading(0)), "$.readings[1].seq", "Expected `int` >= 1"),
    ("seq negative", batch(reading(1), reading(-3)), "$.readings[1].seq", "Expected `int` >= 1"),
    ("no offset", batch(reading(1), reading(2, offset="")), "$.readings[1].device_time", "with a timezone component"),
    ("unknown field", batch(reading(1), reading(2, colour="blue")), "$.readings[1]", "unknown field `colour`"),
    (
        "temperature a string",
        batch(reading(1), reading(2, temperature_c="4.2")),
        "$.readings[1].temperature_c",
        "Expected `float",
    ),
    (
        "no seq",
        batch(reading(1), {"device_time": "2026-03-02T08:00:00Z"}),
        "$.readings[1]",
        "missing required field `seq`",
    ),
    (
        "naive sent_at",
        {"readings": [reading(1)], "sent_at": "2026-03-02T08:00:00"},
        "$.sent_at",
        "with a timezone component",
    ),
    ("unknown top-level field", {"readings": [reading(1)], "extra": True}, "$", "unknown field `extra`"),
    ("no readings", {"records": [reading(1)]}, "$", "unknown field `records`"),
    ("not an object", [reading(1)], "$", "Expected `object`, got `array`"),
]


async def test_a_batch_with_a_wrong_field_is_refused_whole_with_422_naming_the_json_path(
    client: Client, secret: str
) -> None:
    refusals = [
        Refusal(case=f"{case} ({content_type})", body=encode(body), content_type=content_type, in_detail=complaint)
        for case, body, _, complaint in WRONG_FIELDS
        for content_type, encode in ENCODINGS
    ]

    await assert_refused(client, secret, refusals, 422, "invalid")

    for case, body, path, _ in WRONG_FIELDS:
        response = await post_batch(client, secret, as_json(body))
        detail = response.json()["detail"]
        assert detail.startswith("the batch was refused whole: "), case
        assert path == "$" or detail.endswith(f"at `{path}`"), (case, detail)


async def test_an_unsupported_content_type_or_encoding_is_refused_415(client: Client, secret: str) -> None:
    either = "send the batch as application/json or application/msgpack"
    refusals = [
        Refusal(case="text", content_type="text/plain", in_detail=either),
        Refusal(case="no content type", content_type="", in_detail=either),
        Refusal(case="form", content_type="application/x-www-form-urlencoded", in_detail=either),
        Refusal(case="brotli", encoding="br", in_detail="Content-Encoding 'br': use gzip or none"),
    ]

    await assert_refused(client, secret, refusals, 415, "unsupported_media_type")


async def test_content_type_parameters_and_case_do_not_matter(client: Client, secret: str) -> None:
    response = await post_batch(client, secret, VALID, content_type="Application/JSON; charset=utf-8")

    assert response.status_code == 200, response.text
    assert held(client).count == 2


# --- Limits ---------------------------------------------------------------------------------------------------


async def test_a_batch_of_more_readings_than_allowed_is_refused_413_and_one_at_the_limit_is_stored(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_batch_readings=5)
    secret = await register(client)

    too_many = await post_batch(client, secret, as_json(batch(*(reading(seq) for seq in range(1, 7)))))

    assert_error(too_many, 413, "payload_too_large", "6 readings in one batch; the limit is 5")
    await assert_nothing_stored(client)
    at_limit = await post_batch(client, secret, as_json(batch(*(reading(seq) for seq in range(1, 6)))))
    assert at_limit.status_code == 200, at_limit.text
    assert held(client).count == 5


async def test_a_body_larger_than_allowed_as_sent_or_once_inflated_is_refused_413(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_body_bytes=4096)
    secret = await register(client)
    large = as_json(batch(*(reading(seq) for seq in range(1, 80))))
    bomb = gzip.compress(as_json(batch(reading(1), reading(2))).replace(b"{", b"{" + b" " * 6000, 1))
    assert len(bomb) < 4096 < len(large)

    as_sent = await post_batch(client, secret, large)
    inflated = await post_batch(client, secret, bomb, encoding="gzip")

    assert_error(as_sent, 413, "payload_too_large")
    assert_error(inflated, 413, "payload_too_large", "the body inflates to more than 4096 bytes")
    await assert_nothing_stored(client)


async def test_a_service_busy_with_as_many_batches_as_allowed_answers_429_with_retry_after(
    make_client: ClientFactory,
) -> None:
    client = await make_client(max_inflight_batches=1, retry_after_s=7)
    secret = await register(client)
    slow_body = as_json(batch(reading(1)))
    portal = client.blocking_portal
    release = portal.call(anyio.Event)
    reading_body = threading.Event()
    answer: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        # The handler reads the body inside the ingest gate: until the body arrives, the batch is in progress.
        reading_body.set()
        await release.wait()
        return {"type": "http.request", "body": slow_body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        answer.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/v1/trackers/{SERIAL}/sync",
        "raw_path": f"/v1/trackers/{SERIAL}/sync".encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", JSON.encode()), (b"x-signature", sign(slow_body, secret).encode())],
        "client": ("127.0.0.1", 40000),
        "server": ("testserver.local", 80),
    }
    slow = portal.start_task_soon(client.app, scope, receive, send)
    assert await asyncio.to_thread(reading_body.wait, 10)

    busy = await post_batch(client, secret, as_json(batch(reading(2))))

    assert_error(busy, 429, "too_many_requests", "Retry-After")
    assert busy.headers["Retry-After"] == "7"
    portal.call(release.set)
    await asyncio.wrap_future(slow)
    assert answer[0]["status"] == 200
    assert [r.seq for r in held(client).readings] == [1]
    after = await post_batch(client, secret, as_json(batch(reading(2))))
    assert after.status_code == 200, after.text


# --- What is held: quarantine, duplicates, gaps, replays ------------------------------------------------------


async def test_invalid_readings_are_quarantined_and_acknowledged_and_the_valid_rest_is_stored(
    client: Client, secret: str
) -> None:
    far_future = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    body = batch(
        reading(1),
        reading(2, temperature_c=math.nan),
        reading(3),
        reading(4, temperature_c=500.0),
        reading(5, latitude=95.0, longitude=10.0),
        {"seq": 6, "device_time": far_future, "temperature_c": 5.0},
        reading(7),
    )

    response = await post_batch(client, secret, as_msgpack(body), content_type=MSGPACK)

    assert response.status_code == 200, response.text
    ack = response.json()
    assert (ack["acked_through"], ack["missing"]) == (7, [])
    assert (ack["new"], ack["quarantined"], ack["duplicates"]) == (3, 4, 0)
    stored = held(client)
    assert [r.seq for r in stored.readings] == [1, 3, 7]
    reasons = {r.seq: reason for r, reason in stored.quarantined}
    assert reasons[2] == "temperature_c is nan"
    assert reasons[4].startswith("temperature_c 500.0 is outside the physical range")
    assert reasons[5].startswith("latitude 95.0 is outside the physical range")
    assert "ahead of the service's clock" in reasons[6]
    assert (await status_of(client))["readings_quarantined"] == 4


async def test_a_quarantined_reading_sent_again_is_a_duplicate(client: Client, secret: str) -> None:
    body = as_json(batch(reading(1, temperature_c=-127.0)))
    await post_batch(client, secret, body)

    again = await post_batch(client, secret, body)

    assert again.status_code == 200, again.text
    assert (again.json()["quarantined"], again.json()["duplicates"], again.json()["acked_through"]) == (0, 1, 1)
    assert len(held(client).quarantined) == 1


async def test_readings_already_held_are_counted_as_duplicates_and_stored_once(client: Client, secret: str) -> None:
    await post_batch(client, secret, as_json(batch(reading(1), reading(2), reading(3))))

    overlapping = await post_batch(client, secret, as_json(batch(reading(2), reading(3), reading(4), reading(5))))

    assert overlapping.status_code == 200, overlapping.text
    ack = overlapping.json()
    assert (ack["new"], ack["duplicates"], ack["acked_through"]) == (2, 2, 5)
    assert held(client).count == 5
    status = await status_of(client)
    assert (status["readings_new"], status["readings_duplicate"], status["batches"]) == (5, 2, 2)


async def test_a_seq_repeated_within_one_batch_with_other_values_is_stored_once_and_the_second_is_a_conflict(
    client: Client, secret: str
) -> None:
    body = batch(reading(1, temperature_c=3.0), reading(1, temperature_c=9.0), reading(2))

    response = await post_batch(client, secret, as_json(body))

    assert (response.json()["new"], response.json()["duplicates"], response.json()["conflicts"]) == (2, 0, 1)
    assert [(r.seq, r.temperature_c) for r in held(client).readings] == [(1, 3.0), (2, 4.2)]
    [conflict] = (await tracker_of(client))["conflicts"]
    assert (conflict["seq"], conflict["held"]["temperature_c"], conflict["sent"]["temperature_c"]) == (1, 3.0, 9.0)


async def test_the_ranges_still_missing_are_reported_until_they_are_filled(client: Client, secret: str) -> None:
    first = await post_batch(client, secret, as_json(batch(*(reading(seq) for seq in (1, 2, 5, 6, 9)))))
    assert (first.json()["acked_through"], first.json()["missing"]) == (2, [[3, 4], [7, 8]])

    second = await post_batch(client, secret, as_json(batch(reading(4), reading(3))))
    assert (second.json()["acked_through"], second.json()["missing"]) == (6, [[7, 8]])

    third = await post_batch(client, secret, as_json(batch(reading(8), reading(7))))
    assert (third.json()["acked_through"], third.json()["missing"]) == (9, [])
    status = await status_of(client)
    assert (status["acked_through"], status["max_seq"]) == (9, 9)


async def test_a_batch_of_only_later_readings_reports_everything_before_them_missing(
    client: Client, secret: str
) -> None:
    response = await post_batch(client, secret, as_json(batch(reading(10), reading(11))))

    assert (response.json()["acked_through"], response.json()["missing"]) == (0, [[1, 9]])


async def test_replaying_a_batch_changes_nothing_that_is_held(client: Client, secret: str) -> None:
    body = as_msgpack(batch(reading(1), reading(2, temperature_c=math.inf), reading(4)))
    first = await post_batch(client, secret, body, content_type=MSGPACK)
    assert first.status_code == 200, first.text
    before = held(client)
    status_before = await status_of(client)

    replay = await post_batch(client, secret, body, content_type=MSGPACK)

    assert replay.status_code == 200, replay.text
    assert (replay.json()["new"], replay.json()["quarantined"], replay.json()["duplicates"]) == (0, 0, 3)
    assert replay.json()["conflicts"] == 0
    assert replay.json()["acked_through"] == first.json()["acked_through"] == 2
    assert replay.json()["missing"] == first.json()["missing"] == [[3, 3]]
    assert held(client) == before
    assert await status_of(client) == status_before


async def test_a_replayed_signed_batch_changes_no_counter_nor_last_sync_nor_clock_offset(
    client: Client, secret: str
) -> None:
    captured = as_json(batch(reading(1), reading(2), sent_at=datetime.now(UTC) - timedelta(minutes=10)))
    await post_batch(client, secret, captured)
    await post_batch(client, secret, as_json(batch(reading(3), sent_at=datetime.now(UTC))))
    status_before = await status_of(client)

    replay = await post_batch(client, secret, captured)

    assert replay.status_code == 200, replay.text
    assert (replay.json()["duplicates"], replay.json()["acked_through"]) == (2, 3)
    status = await status_of(client)
    assert status == status_before
    assert status["clock_offset_s"] == pytest.approx(0, abs=15)


async def test_a_later_copy_of_a_held_seq_with_other_values_is_kept_as_a_conflict_and_the_held_reading_stays(
    client: Client, secret: str
) -> None:
    # Identity is (tracker, seq): the first copy held stays; a copy that disagrees is kept beside it, not dropped.
    await post_batch(client, secret, as_json(batch(reading(1, temperature_c=5.0), reading(2, temperature_c=-127.0))))
    before = held(client)

    response = await post_batch(
        client, secret, as_json(batch(reading(1, temperature_c=-127.0), reading(2, temperature_c=5.0)))
    )
    again = await post_batch(
        client, secret, as_json(batch(reading(1, temperature_c=-127.0), reading(2, temperature_c=5.0)))
    )

    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["new"], answer["quarantined"], answer["duplicates"], answer["conflicts"]) == (0, 0, 0, 2)
    assert (again.json()["conflicts"], again.json()["duplicates"]) == (0, 2)  # the same copies, recorded once
    assert held(client) == before
    tracker = await tracker_of(client)
    assert tracker["sync"]["readings_conflicting"] == 2
    conflicts = {c["seq"]: c for c in tracker["conflicts"]}
    assert (conflicts[1]["held_as"], conflicts[1]["held"]["temperature_c"]) == ("reading", 5.0)
    assert (conflicts[1]["sent"]["temperature_c"], conflicts[1]["sent_reason"]) == (
        -127.0,
        "temperature_c -127.0 is outside the physical range -100.0 to 100.0",
    )
    assert (conflicts[2]["held_as"], conflicts[2]["held"]["temperature_c"]) == ("quarantined", -127.0)
    assert (conflicts[2]["sent"]["temperature_c"], conflicts[2]["sent_reason"]) == (5.0, None)
    trail = client.blocking_portal.call(_audit_actions, client.app.state.store)
    assert trail.count("reading.conflict") == 2


async def _audit_actions(store: Store) -> list[str]:
    async with store.transaction() as tx:
        return [entry.action for entry in await tx.audit_entries()]


async def test_an_empty_batch_answers_the_ranges_the_service_still_lacks(client: Client, secret: str) -> None:
    await post_batch(client, secret, as_json(batch(*(reading(seq) for seq in (1, 2, 5, 9)))))

    probe = await post_batch(client, secret, as_json(batch()))

    assert probe.status_code == 200, probe.text
    assert (probe.json()["acked_through"], probe.json()["missing"]) == (2, [[3, 4], [6, 8]])
    assert (probe.json()["new"], probe.json()["duplicates"]) == (0, 0)


async def test_a_reading_far_past_the_log_is_quarantined_and_leaves_no_unfillable_range_missing(
    make_client: ClientFactory,
) -> None:
    client = await make_client(sync_max_seq_jump=1000)
    secret = await register(client)
    await post_batch(client, secret, as_json(batch(*(reading(seq) for seq in range(1, 61)))))

    jump = await post_batch(
        client, secret, as_json(batch(reading(61), reading(2**62 - 1, minutes=0), reading(1061), reading(1062)))
    )
    above = await post_batch(client, secret, as_json(batch(reading(2**62 + 1, minutes=0))))
    after = await post_batch(client, secret, as_json(batch(reading(62))))

    assert jump.status_code == above.status_code == 200, (jump.text, above.text)
    assert (jump.json()["new"], jump.json()["quarantined"], jump.json()["missing"]) == (1, 3, [])
    assert (above.json()["quarantined"], above.json()["missing"]) == (1, [])
    assert (after.json()["acked_through"], after.json()["missing"]) == (62, [])
    reasons = {r.seq: reason for r, reason in held(client).quarantined}
    assert reasons[2**62 - 1] == "seq 4611686018427387903 is more than 1000 past the highest sequence number held (60)"
    assert reasons[1062] == "seq 1062 is more than 1000 past the highest sequence number held (60)"
    assert reasons[2**62 + 1] == "seq 4611686018427387905 is above the ceiling 4611686018427387904"
    assert (await status_of(client))["max_seq"] == 62


async def test_a_number_once_too_far_out_is_held_when_the_log_reaches_it(make_client: ClientFactory) -> None:
    client = await make_client(sync_max_seq_jump=5)
    secret = await register(client)
    await post_batch(client, secret, as_json(batch(reading(1), reading(9))))  # 9 is more than 5 past 0

    await post_batch(client, secret, as_json(batch(*(reading(seq) for seq in range(2, 7)))))
    filled = await post_batch(client, secret, as_json(batch(reading(7), reading(8))))
    replay = await post_batch(client, secret, as_json(batch(reading(9))))
    later = await post_batch(client, secret, as_json(batch(reading(10))))

    assert (filled.json()["acked_through"], filled.json()["missing"]) == (8, [])
    # 9 is held (in quarantine): now within reach, the same reading sent valid is a conflict beside it.
    assert (replay.json()["conflicts"], replay.json()["new"]) == (1, 0)
    assert (later.json()["acked_through"], later.json()["missing"]) == (10, [])
    assert [r.seq for r, _ in held(client).quarantined] == [9]


async def test_a_messagepack_timestamp_as_device_time_is_refused_422_because_it_has_no_offset(
    client: Client, secret: str
) -> None:
    body = as_msgpack({"readings": [reading(1), {"seq": 2, "device_time": datetime(2026, 3, 2, 8, 0, tzinfo=UTC)}]})

    response = await post_batch(client, secret, body, content_type=MSGPACK)

    assert_error(response, 422, "invalid", "$.readings[1].device_time is a MessagePack timestamp", "RFC 3339")
    await assert_nothing_stored(client)


async def test_a_gzip_body_with_data_after_its_first_member_is_refused_400(client: Client, secret: str) -> None:
    body = gzip.compress(VALID) + gzip.compress(as_json(batch(reading(7))))

    response = await post_batch(client, secret, body, encoding="gzip")
    trailing_bytes = await post_batch(client, secret, gzip.compress(VALID) + b"junk", encoding="gzip")

    assert_error(response, 400, "bad_request", "data after the end of its gzip stream")
    assert_error(trailing_bytes, 400, "bad_request", "data after the end of its gzip stream")
    await assert_nothing_stored(client)


# --- Clock drift -------------------------------------------------------------------------------------------------


async def test_a_tracker_clock_off_by_more_than_the_drift_limit_is_flagged_in_its_status(
    make_client: ClientFactory,
) -> None:
    client = await make_client(clock_drift_limit_s=60)
    cases = {"TRK-AHEAD": (600, True), "TRK-BEHIND": (-600, True), "TRK-FAST": (20, False), "TRK-SLOW": (-20, False)}
    for serial, (ahead_s, _) in cases.items():
        secret = await register(client, serial)
        sent_at = datetime.now(UTC) + timedelta(seconds=ahead_s)
        response = await post_batch(client, secret, as_json(batch(reading(1), sent_at=sent_at)), serial=serial)
        assert response.status_code == 200, response.text

    for serial, (ahead_s, flagged) in cases.items():
        status = await status_of(client, serial)
        assert status["clock_flagged"] is flagged, serial
        assert status["clock_offset_s"] == pytest.approx(ahead_s, abs=15), serial


async def test_a_flagged_clock_is_cleared_by_a_batch_sent_on_time_and_a_batch_without_sent_at_keeps_the_flag(
    make_client: ClientFactory,
) -> None:
    client = await make_client(clock_drift_limit_s=60)
    secret = await register(client)
    await post_batch(client, secret, as_json(batch(reading(1), sent_at=datetime.now(UTC) - timedelta(hours=2))))
    assert (await status_of(client))["clock_flagged"] is True

    await post_batch(client, secret, as_json(batch(reading(2))))
    assert (await status_of(client))["clock_flagged"] is True
    await post_batch(client, secret, as_json(batch(reading(3), sent_at=datetime.now(UTC))))

    status = await status_of(client)
    assert status["clock_flagged"] is False
    assert status["clock_offset_s"] == pytest.approx(0, abs=15)


async def test_a_batch_without_sent_at_measures_no_clock_offset(client: Client, secret: str) -> None:
    await post_batch(client, secret, VALID)

    status = await status_of(client)

    assert (status["clock_offset_s"], status["clock_flagged"]) == (None, False)
    assert status["last_sync_at"] is not None


# --- Admin API ------------------------------------------------------------------------------------------------


async def test_the_admin_api_refuses_a_missing_or_wrong_token_with_401(client: Client) -> None:
    bearer = "send an API token as 'Authorization: Bearer <token>'"
    wrong = "the API token is not valid"
    cases = [
        ({}, bearer),
        ({"Authorization": "Bearer"}, bearer),
        ({"Authorization": f"Basic {ADMIN_TOKEN}"}, bearer),
        ({"Authorization": "Bearer not-the-token"}, wrong),
        ({"Authorization": f"Bearer {ADMIN_TOKEN}x"}, wrong),
        ({"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}, wrong),
    ]
    for headers, in_detail in cases:
        for response in [
            await client.post("/v1/trackers", json={"serial": "X"}, headers=headers),
            await client.get("/v1/trackers", headers=headers),
            await client.get("/v1/trackers/X", headers=headers),
        ]:
            assert_error(response, 401, "unauthenticated", in_detail)

    assert (await client.get("/v1/trackers", headers=ADMIN)).json() == []


async def test_without_an_operator_token_configured_no_bearer_is_the_operator(make_client: ClientFactory) -> None:
    client = await make_client(admin_token=None)

    for response in [
        await client.post("/v1/trackers", json={"serial": "X"}, headers=ADMIN),
        await client.get("/v1/trackers", headers=ADMIN),
        await client.get("/v1/trackers", headers={"Authorization": "Bearer None"}),
    ]:
        assert_error(response, 401, "unauthenticated", "not valid")


async def test_registering_returns_the_tracker_id_and_a_secret_that_signs_its_batches(client: Client) -> None:
    response = await client.post("/v1/trackers", json={"serial": "TRK-NEW"}, headers=ADMIN)

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"tracker_id", "protocol", "secret"}
    assert created["protocol"] == "hmac"
    assert created["tracker_id"] == "TRK-NEW"
    assert len(created["secret"]) >= 32
    accepted = await post_batch(client, created["secret"], VALID, serial="TRK-NEW")
    assert accepted.status_code == 200, accepted.text
    assert await register(client, "TRK-NEXT") != created["secret"]


async def test_registering_a_serial_twice_is_a_409_conflict_and_keeps_the_first_secret(client: Client) -> None:
    secret = await register(client, "TRK-TWICE")

    response = await client.post("/v1/trackers", json={"serial": "TRK-TWICE"}, headers=ADMIN)

    assert_error(response, 409, "conflict", "'TRK-TWICE' already exists")
    accepted = await post_batch(client, secret, VALID, serial="TRK-TWICE")
    assert accepted.status_code == 200, accepted.text


async def test_a_registration_with_a_bad_serial_or_field_is_refused_with_422_and_registers_nothing(
    client: Client,
) -> None:
    pattern = "serial: Expected `str` matching regex"
    cases: list[tuple[dict[str, object], str]] = [
        ({"serial": "has space"}, pattern),
        ({"serial": "-leading-dash"}, pattern),
        ({"serial": "a/b"}, pattern),
        ({"serial": ""}, "serial: Expected `str` of length >= 1"),
        ({"serial": "x" * 65}, "serial: Expected `str` of length <= 64"),
        ({"serial": 42}, "serial: Expected `str`, got `int`"),
        ({}, "missing required field `serial`"),
        ({"serial": "OK-1", "colour": "blue"}, "unknown field `colour`"),
    ]
    for body, in_detail in cases:
        response = await client.post("/v1/trackers", json=body, headers=ADMIN)

        assert_error(response, 422, "invalid", in_detail)

    assert (await client.get("/v1/trackers", headers=ADMIN)).json() == []


async def test_a_registration_body_that_is_not_json_is_refused_with_400(client: Client) -> None:
    response = await client.post(
        "/v1/trackers", content=b'{"serial": ', headers={**ADMIN, "Content-Type": "application/json"}
    )

    assert_error(response, 400, "bad_request")
    assert (await client.get("/v1/trackers", headers=ADMIN)).json() == []


async def test_an_unknown_organisation_is_refused_with_422(client: Client) -> None:
    response = await client.post("/v1/trackers", json={"serial": "TRK-ORG", "organisation_id": 999}, headers=ADMIN)

    assert_error(response, 422, "invalid", "no organisation with id 999")
    assert (await client.get("/v1/trackers", headers=ADMIN)).json() == []


async def test_the_secret_never_appears_in_a_get_response(client: Client, secret: str) -> None:
    await post_batch(client, secret, VALID)

    listing = await client.get("/v1/trackers", headers=ADMIN)
    one = await client.get(f"/v1/trackers/{SERIAL}", headers=ADMIN)

    assert listing.status_code == one.status_code == 200
    assert [t["tracker_id"] for t in listing.json()] == [SERIAL]
    assert one.json()["tracker_id"] == SERIAL
    for response in (listing, one):
        assert secret not in response.text
        assert "secret" not in response.text


async def test_the_status_of_an_unknown_tracker_is_404(client: Client) -> None:
    response = await client.get("/v1/trackers/TRK-NOBODY", headers=ADMIN)

    assert_error(response, 404, "not_found", "'TRK-NOBODY'")


async def test_the_overview_lists_every_tracker_by_serial_with_its_sync_state(client: Client) -> None:
    secret_b = await register(client, "TRK-B")
    await register(client, "TRK-A")
    await post_batch(client, secret_b, as_json(batch(reading(1), reading(3))), serial="TRK-B")

    listing = (await client.get("/v1/trackers", headers=ADMIN)).json()

    assert [t["tracker_id"] for t in listing] == ["TRK-A", "TRK-B"]
    assert listing[0]["sync"]["acked_through"] == 0
    assert (listing[1]["sync"]["acked_through"], listing[1]["sync"]["max_seq"]) == (1, 3)
    assert listing[1]["sync"]["readings_new"] == 2
