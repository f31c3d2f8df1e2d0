from __future__ import annotations

import gzip
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.tracker_sim.fake_service import FakeService
from tracker_sim.logbook import Logbook, Measurement
from tracker_sim.sync import (
    BatchRejected,
    SyncClient,
    SyncSettings,
    SyncStalled,
    TrackerCredentials,
    sign,
)

TRACKER = TrackerCredentials(tracker_id="TRK-1", secret="correct horse battery staple")
DEVICE_NOW = datetime(2026, 3, 2, 12, 0, tzinfo=timezone(timedelta(hours=1)))
T0 = datetime(2026, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=1)))


def reading(i: int) -> Measurement:
    return Measurement(
        device_time=T0 + timedelta(minutes=5 * i),
        temperature_c=round(4.0 + (i % 30) / 10, 1),
        humidity_pct=55.5,
        pressure_kpa=100.9,
        latitude=None if i % 7 == 0 else 52.5 + i / 1e4,
        longitude=None if i % 7 == 0 else 13.4,
        battery_pct=99.0,
    )


@dataclass
class Sleeps:
    seconds: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@dataclass
class Rig:
    logbook: Logbook
    service: FakeService
    http: httpx.AsyncClient
    sleeps: Sleeps

    def client(self, http: httpx.AsyncClient | None = None, **settings: object) -> SyncClient:
        return SyncClient(
            self.logbook,
            TRACKER,
            http=http or self.http,
            url="http://service.test",
            settings=msgspec.convert(settings, SyncSettings),
            device_clock=lambda: DEVICE_NOW,
            sleep=self.sleeps,
            rng=random.Random(42),
        )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    service = FakeService(secrets_by_tracker={TRACKER.tracker_id: TRACKER.secret})
    logbook = await Logbook.open(tmp_path / "log.db")
    async with httpx.AsyncClient(transport=service.transport()) as http:
        try:
            yield Rig(logbook=logbook, service=service, http=http, sleeps=Sleeps())
        finally:
            await logbook.close()


async def logged(rig: Rig, n: int) -> None:
    await rig.logbook.log_many(reading(i) for i in range(n))


async def test_batches_go_oldest_first_and_never_exceed_the_batch_size(rig: Rig) -> None:
    await logged(rig, 25)
    report = await rig.client(batch_size=10).sync()
    assert [b.seqs for b in rig.service.batches] == [
        list(range(1, 11)),
        list(range(11, 21)),
        list(range(21, 26)),
    ]
    assert report.complete
    assert report.acked_through == 25
    assert report.batches == 3
    assert report.new == 25
    assert await rig.logbook.pending(100) == []


async def test_the_service_receives_exactly_the_logged_values(rig: Rig) -> None:
    await logged(rig, 40)
    await rig.client().sync()
    held = rig.service.held(TRACKER.tracker_id)
    for logged_reading in await rig.logbook.retained():
        assert msgspec.structs.asdict(held[logged_reading.seq]) == msgspec.structs.asdict(logged_reading)


@pytest.mark.parametrize(
    ("wire_format", "content_type"), [("json", "application/json"), ("msgpack", "application/msgpack")]
)
@pytest.mark.parametrize("compressed", [False, True])
async def test_every_format_and_compression_is_signed_over_the_bytes_as_sent(
    rig: Rig, wire_format: str, content_type: str, compressed: bool
) -> None:
    await logged(rig, 12)
    sent: list[httpx.Request] = []
    rig.http.event_hooks["request"] = [lambda request: _remember(sent, request)]
    report = await rig.client(wire_format=wire_format, gzip=compressed).sync()
    assert report.complete
    (request,) = sent
    assert request.headers["Content-Type"] == content_type
    assert request.headers["X-Signature"] == sign(request.content, TRACKER.secret)
    assert request.headers.get("Content-Encoding") == ("gzip" if compressed else None)
    assert request.content.startswith(b"\x1f\x8b") == compressed
    assert rig.service.batches[0].content_type == content_type


async def _remember(sent: list[httpx.Request], request: httpx.Request) -> None:
    sent.append(request)


async def test_messagepack_carries_device_times_as_rfc3339_strings_with_their_offset(rig: Rig) -> None:
    await logged(rig, 3)
    body = rig.client(wire_format="msgpack").encode(await rig.logbook.pending(3), DEVICE_NOW)
    decoded = msgspec.msgpack.decode(body)
    assert decoded["sent_at"] == "2026-03-02T12:00:00.000+01:00"
    assert [r["device_time"] for r in decoded["readings"]] == [
        "2026-03-01T10:00:00.000+01:00",
        "2026-03-01T10:05:00.000+01:00",
        "2026-03-01T10:10:00.000+01:00",
    ]
    assert "latitude" not in decoded["readings"][0]  # no fix: the field is left out


async def test_a_body_is_gzip_of_the_plain_encoding(rig: Rig) -> None:
    await logged(rig, 5)
    batch = await rig.logbook.pending(5)
    plain = rig.client().encode(batch, DEVICE_NOW)
    assert gzip.decompress(rig.client(gzip=True).encode(batch, DEVICE_NOW)) == plain


async def test_a_429_is_waited_out_for_at_least_its_retry_after(rig: Rig) -> None:
    await logged(rig, 5)
    rig.service.faults.extend(["429", "429"])
    report = await rig.client(backoff_base_s=1.0).sync()
    assert report.complete
    assert report.throttled == 2
    assert len(rig.sleeps.seconds) == 2
    assert all(7.0 <= s < 8.0 for s in rig.sleeps.seconds)


async def test_retry_after_as_an_http_date_is_honoured(rig: Rig) -> None:
    await logged(rig, 2)
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "Mon, 02 Mar 2026 11:01:00 GMT"}),
            None,
        ]
    )

    def handle(request: httpx.Request) -> httpx.Response:
        return next(answers) or rig.service.handle(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        report = await rig.client(http, backoff_base_s=0.5).sync()
    assert report.complete
    (slept,) = rig.sleeps.seconds
    assert 60.0 <= slept < 60.5  # the device clock says 11:00:00 UTC


async def test_server_errors_back_off_exponentially_with_full_jitter(rig: Rig) -> None:
    await logged(rig, 5)
    rig.service.faults.extend(["503"] * 6)
    report = await rig.client(backoff_base_s=2.0, backoff_cap_s=20.0).sync(max_failures=None)
    assert report.complete
    assert report.failures == 6
    ceilings = [2.0, 4.0, 8.0, 16.0, 20.0, 20.0]
    assert all(0 <= s <= c for s, c in zip(rig.sleeps.seconds, ceilings, strict=True))
    expected = random.Random(42)
    assert rig.sleeps.seconds == [expected.uniform(0, c) for c in ceilings]


async def test_the_backoff_stays_bounded_by_the_cap_after_ten_thousand_failures_in_a_row(rig: Rig) -> None:
    client = rig.client(backoff_base_s=1.0, backoff_cap_s=300.0)
    delays = [client.backoff_s(failures) for failures in range(1, 10_001)]
    assert all(0.0 <= d <= 300.0 for d in delays)
    assert max(delays[-1000:]) > 150.0  # still spread over the whole capped range, not collapsed to zero


async def test_a_service_out_of_reach_for_thousands_of_calls_keeps_the_client_waiting_the_cap(rig: Rig) -> None:
    await logged(rig, 3)
    rig.service.faults.extend(["503"] * 10_000)
    client = rig.client(backoff_base_s=1.0, backoff_cap_s=60.0)
    for _ in range(5_000):
        report = await client.sync(max_failures=2)
        assert report.gave_up
    assert client.consecutive_failures == 10_000
    assert all(0.0 <= s <= 60.0 for s in rig.sleeps.seconds)
    assert len(rig.sleeps.seconds) == 5_000  # one backoff wait between the two attempts of every call


async def test_the_client_gives_up_for_now_after_max_failures_and_keeps_everything(rig: Rig) -> None:
    await logged(rig, 5)
    rig.service.faults.extend(["503"] * 5)
    report = await rig.client().sync(max_failures=3)
    assert report.gave_up
    assert not report.complete
    assert report.failures == 3
    assert len(rig.sleeps.seconds) == 2
    assert report.last_error == "HTTP 503"
    assert len(await rig.logbook.pending(100)) == 5


async def test_a_lost_answer_is_resent_and_the_service_ends_with_one_copy(rig: Rig) -> None:
    await logged(rig, 8)
    rig.service.faults.append("lost")
    report = await rig.client(batch_size=8).sync()
    assert report.complete
    assert report.failures == 1
    assert [b.seqs for b in rig.service.batches] == [list(range(1, 9))] * 2
    assert report.duplicates == 8
    assert sorted(rig.service.held(TRACKER.tracker_id)) == list(range(1, 9))


async def test_a_batch_too_large_is_halved_until_the_service_takes_it(rig: Rig) -> None:
    await logged(rig, 20)
    rig.service.max_batch = 3
    client = rig.client(batch_size=10)
    report = await client.sync()
    assert report.complete
    assert client.batch_size == 2
    assert sorted(rig.service.held(TRACKER.tracker_id)) == list(range(1, 21))
    assert rig.sleeps.seconds == []


@pytest.mark.parametrize(("fault", "status"), [("reject", 422), ("wrong-secret", 401)])
async def test_a_refused_batch_is_a_permanent_error_and_nothing_is_deleted(rig: Rig, fault: str, status: int) -> None:
    await logged(rig, 6)
    if fault == "wrong-secret":
        rig.service.secrets[TRACKER.tracker_id] = "another secret"
    else:
        rig.service.faults.append(fault)
    with pytest.raises(BatchRejected) as refused:
        await rig.client(batch_size=4).sync()
    assert refused.value.status_code == status
    assert (refused.value.first_seq, refused.value.last_seq) == (1, 4)
    status_after = await rig.logbook.status()
    assert (status_after.pending, status_after.retained, status_after.acked_through) == (6, 6, 0)
    assert rig.sleeps.seconds == []


async def test_readings_the_service_reports_missing_are_sent_again(rig: Rig) -> None:
    await logged(rig, 10)
    rig.service.lose_on_store = {3, 4}
    report = await rig.client(batch_size=10).sync()
    assert report.complete
    assert [b.seqs for b in rig.service.batches] == [list(range(1, 11)), [3, 4]]
    assert sorted(rig.service.held(TRACKER.tracker_id)) == list(range(1, 11))
    assert (await rig.logbook.status()).acked_through == 10


async def test_latency_of_every_stored_batch_is_recorded(rig: Rig) -> None:
    await logged(rig, 9)
    ticks = iter(float(i) for i in range(100))
    client = SyncClient(
        rig.logbook,
        TRACKER,
        http=rig.http,
        url="http://service.test",
        settings=SyncSettings(batch_size=3),
        device_clock=lambda: DEVICE_NOW,
        sleep=rig.sleeps,
        monotonic=lambda: next(ticks),
    )
    report = await client.sync()
    assert report.latencies_s == [1.0, 1.0, 1.0]


async def test_the_clock_offset_to_the_service_is_measured(rig: Rig) -> None:
    await logged(rig, 2)
    client = SyncClient(
        rig.logbook,
        TRACKER,
        http=rig.http,
        url="http://service.test",
        device_clock=lambda: datetime.now(UTC) + timedelta(seconds=90),
        sleep=rig.sleeps,
    )
    report = await client.sync()
    assert report.clock_offset_s == pytest.approx(90, abs=2)


async def test_a_service_that_never_holds_what_it_gets_stalls_the_client_instead_of_looping(rig: Rig) -> None:
    await logged(rig, 3)

    def forgetful(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"acked_through": 0, "missing": [[1, 3]], "server_time": None})

    async with httpx.AsyncClient(transport=httpx.MockTransport(forgetful)) as http:
        with pytest.raises(SyncStalled):
            await rig.client(http).sync()
    assert (await rig.logbook.status()).pending == 3


async def test_fields_the_service_adds_to_its_answer_are_ignored(rig: Rig) -> None:
    await logged(rig, 2)

    def newer_service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={
                "acked_through": 2,
                "missing": [],
                "new": 2,
                "duplicates": 0,
                "quarantined": 0,
                "server_time": "2026-03-02T11:00:00Z",
                "rejected": 0,
            },
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(newer_service)) as http:
        report = await rig.client(http).sync()
    assert report.complete
    assert report.acked_through == 2


async def test_conflicts_in_the_answer_are_counted_and_the_readings_they_concern_are_acknowledged(rig: Rig) -> None:
    await logged(rig, 3)

    def conflicting_service(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            json={"acked_through": 3, "missing": [], "new": 1, "duplicates": 0, "quarantined": 0, "conflicts": 2},
        )

    async with httpx.AsyncClient(transport=httpx.MockTransport(conflicting_service)) as http:
        report = await rig.client(http).sync()
    assert report.complete
    assert (report.conflicts, report.new, report.acked_through) == (2, 1, 3)
    assert (await rig.logbook.status()).pending == 0


async def test_nothing_pending_means_nothing_sent(rig: Rig) -> None:
    report = await rig.client().sync()
    assert report.complete
    assert report.batches == 0
    assert rig.service.batches == []


async def test_retry_after_as_an_http_date_is_measured_against_the_services_date_not_the_device_clock(
    rig: Rig,
) -> None:
    await logged(rig, 2)
    answers = iter(
        [
            httpx.Response(
                429,
                headers={
                    "Retry-After": "Fri, 20 Nov 2026 10:00:30 GMT",
                    "Date": "Fri, 20 Nov 2026 10:00:00 GMT",
                },
            ),
            None,
        ]
    )

    def handle(request: httpx.Request) -> httpx.Response:
        return next(answers) or rig.service.handle(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        report = await rig.client(http, backoff_base_s=0.5).sync()  # the device clock says March
    assert report.complete
    (slept,) = rig.sleeps.seconds
    assert 30.0 <= slept < 30.5


async def test_max_failures_counts_only_failures_in_a_row(rig: Rig) -> None:
    await logged(rig, 6)
    rig.service.faults.extend(["503", "503", None, "503", "503", None, "503", "503"])
    report = await rig.client(batch_size=1).sync(max_failures=3)
    assert report.complete
    assert report.failures == 6
