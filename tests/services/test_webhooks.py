"""Webhook delivery on each engine, to a real HTTP receiver on 127.0.0.1: signed bodies, retries with backoff after
the receiver fails, the delivery log, the subscription rules, and who may manage webhooks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
import random
import re
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st

from coldchain.domain.access import OPERATOR, Principal
from coldchain.domain.notifications import NotificationKind, Webhook, WebhookDelivery
from coldchain.metrics import REGISTRY
from coldchain.services import webhooks
from coldchain.services.errors import Conflict, Forbidden, Invalid, NotFound
from coldchain.services.targets import REFUSED_TARGET, Resolver, address_refusal, resolve
from coldchain.services.webhooks import DeliveryPolicy, deliver_due, retry_delay
from coldchain.storage import Store, open_store
from tests.factories import make_org

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = DeliveryPolicy(timeout_s=2.0, max_attempts=4, retry_s=10.0, retry_max_s=60.0, allow_private=True)
"""The receivers of these tests listen on 127.0.0.1: they are on-premise receivers, allowed explicitly."""
LATER = timedelta(minutes=5)
"""Longer than any retry delay of POLICY: every pending delivery is due again."""


class Received(msgspec.Struct, frozen=True, kw_only=True):
    headers: dict[str, str]
    body: bytes

    def event(self) -> dict[str, Any]:
        decoded: dict[str, Any] = msgspec.json.decode(self.body)
        return decoded


class Receiver:
    """A real HTTP server on 127.0.0.1 that records every request and answers with the next status of ``script``
    (then ``then``), after ``delay_s``."""

    def __init__(self, script: Iterable[int] = (), *, then: int = 204, delay_s: float = 0.0) -> None:
        self._script = list(script)
        self._then = then
        self.delay_s = delay_s
        self.received: list[Received] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}/hooks/coldchain"
        self._server = uvicorn.Server(
            uvicorn.Config(
                self._app,
                interface="asgi3",
                log_level="warning",
                lifespan="off",
                ws="none",
                timeout_graceful_shutdown=2,
            )
        )
        self._task: asyncio.Task[None] | None = None

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.received.append(Received(headers={k.decode().lower(): v.decode() for k, v in scope["headers"]}, body=body))
        status = self._script.pop(0) if self._script else self._then
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def __aenter__(self) -> Receiver:
        self._task = asyncio.create_task(self._server.serve(sockets=[self._sock]))
        while not self._server.started:  # noqa: ASYNC110 (uvicorn offers a flag, not an event)
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        assert self._task is not None
        await self._task
        self._sock.close()


def verifies(received: Received, secret: str) -> bool:
    """What a receiver does: recompute the HMAC of the exact body bytes and compare in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), received.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(received.headers["x-coldchain-signature"], expected)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def subscribe(
    store: Store, organisation_id: int, url: str, kinds: Iterable[NotificationKind] = ("alarm.raised",)
) -> tuple[Webhook, str]:
    return await webhooks.create_webhook(
        store, OPERATOR, organisation_id=organisation_id, url=url, kinds=list(kinds), now=T0, allow_private=True
    )


async def publish(
    store: Store, organisation_id: int, kind: NotificationKind = "alarm.raised", subject: str = "alarm:1"
) -> int:
    async with store.transaction() as tx:
        [notification_id] = await tx.publish(
            kind, organisation_ids=[organisation_id], subject=subject, payload={"temperature_c": 9.5}, now=T0
        )
    return notification_id


async def log_of(store: Store, webhook_id: int) -> list[WebhookDelivery]:
    return await webhooks.webhook_deliveries(store, OPERATOR, webhook_id)


async def deliver(
    store: Store, clock: Callable[[], datetime], policy: DeliveryPolicy = POLICY, resolver: Resolver = resolve
) -> webhooks.DeliveryRound:
    async with httpx.AsyncClient() as client:
        return await deliver_due(
            store, client, clock=clock, worker="test", policy=policy, rng=random.Random(7), resolver=resolver
        )


async def test_a_delivery_is_retried_with_backoff_until_the_receiver_accepts_it(store: Store) -> None:
    org = await make_org(store)
    async with Receiver([500, 503]) as receiver:
        webhook, secret = await subscribe(store, org.id, receiver.url)
        notification_id = await publish(store, org.id)
        clock = Clock(T0)

        first = await deliver(store, clock)
        early = await deliver(store, clock)  # the retry is not due yet
        [pending] = await log_of(store, webhook.id)
        clock.now = T0 + LATER
        second = await deliver(store, clock)
        clock.now = T0 + 2 * LATER
        third = await deliver(store, clock)
        done = await deliver(store, Clock(T0 + 10 * LATER))

    assert (first.attempted, first.retrying, early.attempted) == (1, 1, 0)
    assert (second.retrying, third.delivered, done.attempted) == (1, 1, 0)
    # The first retry waits between half and all of retry_s (equal jitter).
    assert pending.status == "pending" and pending.next_attempt_at is not None
    assert T0 + timedelta(seconds=5) <= pending.next_attempt_at <= T0 + timedelta(seconds=10)

    assert len(receiver.received) == 3
    for attempt, received in enumerate(receiver.received, start=1):
        assert verifies(received, secret)
        event = received.event()
        assert received.headers["x-coldchain-event"] == event["kind"] == "alarm.raised"
        assert received.headers["x-coldchain-delivery"] == str(event["delivery_id"])
        assert received.headers["x-coldchain-attempt"] == str(event["attempt"]) == str(attempt)
        assert received.headers["x-coldchain-timestamp"] == datetime.fromisoformat(event["sent_at"]).isoformat()
        assert received.headers["content-type"] == "application/json"
        assert (event["notification_id"], event["organisation_id"]) == (notification_id, org.id)
        assert (event["subject"], event["payload"]) == ("alarm:1", {"temperature_c": 9.5})
    assert len({r.headers["x-coldchain-delivery"] for r in receiver.received}) == 1

    [delivery] = await log_of(store, webhook.id)
    assert (delivery.status, delivery.attempts, delivery.notification_id) == ("delivered", 3, notification_id)
    assert (delivery.delivered_at, delivery.next_attempt_at) == (T0 + 2 * LATER, None)
    assert [(a.attempt, a.status_code, a.error) for a in delivery.log] == [
        (1, 500, "answered 500"),
        (2, 503, "answered 503"),
        (3, 204, None),
    ]
    assert all(a.duration_ms is not None and a.worker == "test" for a in delivery.log)
    assert [a.started_at for a in delivery.log] == [T0, T0 + LATER, T0 + 2 * LATER]


async def test_a_signature_made_with_another_secret_does_not_verify(store: Store) -> None:
    org = await make_org(store)
    async with Receiver() as receiver:
        _, secret = await subscribe(store, org.id, receiver.url)
        await publish(store, org.id)
        await deliver(store, Clock(T0))
    [received] = receiver.received
    assert verifies(received, secret)
    assert not verifies(received, secret + "x")
    tampered = msgspec.structs.replace(received, body=received.body.replace(b"9.5", b"5.9"))
    assert not verifies(tampered, secret)


async def test_a_delivery_the_receiver_keeps_refusing_fails_after_the_last_attempt(store: Store) -> None:
    org = await make_org(store)
    async with Receiver(then=500) as receiver:
        webhook, _ = await subscribe(store, org.id, receiver.url)
        await publish(store, org.id)
        rounds = [await deliver(store, Clock(T0 + n * LATER)) for n in range(POLICY.max_attempts + 2)]
    assert [r.attempted for r in rounds] == [1] * POLICY.max_attempts + [0, 0]
    assert rounds[POLICY.max_attempts - 1].failed == 1
    assert len(receiver.received) == POLICY.max_attempts
    [delivery] = await log_of(store, webhook.id)
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == ("failed", POLICY.max_attempts, None)
    assert (delivery.last_status_code, delivery.last_error) == (500, "answered 500")
    assert len(delivery.log) == POLICY.max_attempts


async def test_every_attempt_is_counted_in_the_metrics_by_what_became_of_it(store: Store) -> None:
    def attempts() -> dict[str, float]:
        return {
            outcome: REGISTRY.get_sample_value("coldchain_webhook_deliveries_total", {"outcome": outcome}) or 0.0
            for outcome in ("delivered", "retrying", "failed")
        }

    org = await make_org(store)
    before = attempts()
    async with Receiver(then=500) as refusing, Receiver() as accepting:
        await subscribe(store, org.id, refusing.url)
        await subscribe(store, org.id, accepting.url)
        await publish(store, org.id)
        for n in range(POLICY.max_attempts + 1):
            await deliver(store, Clock(T0 + n * LATER))
    after = attempts()

    assert {outcome: after[outcome] - before[outcome] for outcome in after} == {
        "delivered": 1,
        "retrying": POLICY.max_attempts - 1,
        "failed": 1,
    }


async def test_a_receiver_that_does_not_answer_in_time_is_retried(store: Store) -> None:
    org = await make_org(store)
    policy = msgspec.structs.replace(POLICY, timeout_s=0.2)
    async with Receiver(delay_s=1.0) as receiver:
        webhook, _ = await subscribe(store, org.id, receiver.url)
        await publish(store, org.id)
        outcome = await deliver(store, Clock(T0), policy)
    [delivery] = await log_of(store, webhook.id)
    assert outcome.retrying == 1
    assert (delivery.status, delivery.last_status_code, delivery.last_error) == (
        "pending",
        None,
        "no answer within 0.2 s",
    )


async def test_a_receiver_that_is_not_listening_is_retried_with_the_error_logged(store: Store) -> None:
    org = await make_org(store)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        webhook, _ = await subscribe(store, org.id, f"http://127.0.0.1:{sock.getsockname()[1]}/")
        await publish(store, org.id)
        outcome = await deliver(store, Clock(T0))
    [delivery] = await log_of(store, webhook.id)
    assert outcome.retrying == 1
    assert delivery.last_error is not None and delivery.last_error.startswith("ConnectError")


async def test_a_webhook_gets_only_its_organisations_notifications_of_its_kinds_published_after_it(
    store: Store,
) -> None:
    org, other = await make_org(store), await make_org(store)
    await publish(store, org.id, subject="before")
    async with Receiver() as receiver:
        webhook, _ = await subscribe(store, org.id, receiver.url, kinds=["alarm.raised", "tracker.silent"])
        await publish(store, org.id, "alarm.raised", subject="wanted-1")
        await publish(store, org.id, "custody.recorded", subject="other kind")
        await publish(store, other.id, "alarm.raised", subject="other organisation")
        await publish(store, org.id, "tracker.silent", subject="wanted-2")
        await deliver(store, Clock(T0))
    assert sorted(r.event()["subject"] for r in receiver.received) == ["wanted-1", "wanted-2"]
    assert len(await log_of(store, webhook.id)) == 2


async def test_a_deleted_webhook_is_sent_nothing_more_and_keeps_its_log(store: Store) -> None:
    org = await make_org(store)
    async with Receiver([500]) as receiver:
        webhook, _ = await subscribe(store, org.id, receiver.url)
        await publish(store, org.id)
        await deliver(store, Clock(T0))
        await webhooks.delete_webhook(store, OPERATOR, webhook.id, now=T0 + timedelta(seconds=1))
        await publish(store, org.id)
        after = await deliver(store, Clock(T0 + LATER))
    assert after.attempted == 0
    assert len(receiver.received) == 1
    async with store.transaction() as tx:
        [delivery] = await tx.deliveries(webhook.id)
    assert (delivery.status, delivery.last_error, len(delivery.log)) == ("failed", "the webhook was deleted", 1)
    with pytest.raises(NotFound):
        await log_of(store, webhook.id)


async def test_two_processes_delivering_at_once_make_each_attempt_once(database_url: str) -> None:
    stores = [await open_store(database_url, pool_size=3) for _ in range(3)]
    try:
        org = await make_org(stores[0])
        async with Receiver(delay_s=0.05) as receiver:
            webhook, _ = await subscribe(stores[0], org.id, receiver.url)
            for n in range(30):
                await publish(stores[0], org.id, subject=f"alarm:{n}")
            policy = msgspec.structs.replace(POLICY, concurrency=4)
            rounds = await asyncio.gather(*(deliver(store, Clock(T0), policy) for store in stores))
        log = await log_of(stores[0], webhook.id)
    finally:
        for store in stores:
            await store.close()
    assert sum(r.delivered for r in rounds) == 30
    assert sorted(r.event()["subject"] for r in receiver.received) == sorted(f"alarm:{n}" for n in range(30))
    assert {(d.status, d.attempts, len(d.log)) for d in log} == {("delivered", 1, 1)}


async def test_an_attempt_whose_taker_died_is_taken_again_after_its_lease(store: Store) -> None:
    org = await make_org(store)
    async with Receiver() as receiver:
        webhook, _ = await subscribe(store, org.id, receiver.url)
        await publish(store, org.id)
        async with store.transaction() as tx:  # taken, then its process is gone before it sends anything
            [taken] = await tx.take_due_deliveries(now=T0, lease_until=T0 + POLICY.lease, worker="gone", limit=10)
        during = await deliver(store, Clock(T0 + POLICY.lease - timedelta(seconds=1)))
        after = await deliver(store, Clock(T0 + POLICY.lease))
    assert (taken.attempt, during.attempted, after.delivered) == (1, 0, 1)
    [delivery] = await log_of(store, webhook.id)
    assert [(a.attempt, a.worker, a.duration_ms is None) for a in delivery.log] == [
        (1, "gone", True),
        (2, "test", False),
    ]
    assert receiver.received[0].headers["x-coldchain-attempt"] == "2"


@given(
    attempt=st.integers(min_value=1, max_value=5000),
    first_s=st.floats(min_value=0.01, max_value=600),
    cap=st.floats(min_value=1, max_value=100),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_the_retry_delay_doubles_within_its_cap_and_keeps_at_least_half(
    attempt: int, first_s: float, cap: float, seed: int
) -> None:
    max_s = first_s * cap
    ceiling = min(max_s, first_s * 2 ** min(attempt - 1, 100))
    delay = retry_delay(attempt, first_s=first_s, max_s=max_s, rng=random.Random(seed)).total_seconds()
    assert ceiling / 2 - 1e-6 <= delay <= ceiling + 1e-6


# --- who may manage webhooks -------------------------------------------------------------------------------------


def admin_of(organisation_id: int, role: Any = "admin") -> Principal:
    return Principal(organisation_id=organisation_id, role=role, token_id=1)


async def test_an_admin_manages_its_own_organisations_webhooks_only(store: Store) -> None:
    org, other = await make_org(store), await make_org(store)
    mine, secret = await webhooks.create_webhook(
        store, admin_of(org.id), organisation_id=None, url="https://example.org/hook", kinds=["alarm.raised"], now=T0
    )
    theirs, _ = await subscribe(store, other.id, "https://example.net/hook")

    assert secret.startswith(webhooks.SECRET_PREFIX) and len(secret) > 40
    assert [w.id for w in await webhooks.list_webhooks(store, admin_of(org.id), None)] == [mine.id]
    for attempt in (
        webhooks.list_webhooks(store, admin_of(org.id), other.id),
        webhooks.webhook_deliveries(store, admin_of(org.id), theirs.id),
        webhooks.delete_webhook(store, admin_of(org.id), theirs.id, now=T0),
    ):
        with pytest.raises(NotFound):
            await attempt
    with pytest.raises(Forbidden):
        await webhooks.list_webhooks(store, admin_of(org.id, "logistics"), None)
    with pytest.raises(Forbidden):
        await webhooks.delete_webhook(store, admin_of(org.id, "pharmacist"), mine.id, now=T0)
    assert [w.id for w in await webhooks.list_webhooks(store, OPERATOR, other.id)] == [theirs.id]


@pytest.mark.parametrize(
    ("url", "kinds", "message"),
    [
        ("ftp://example.org/x", ["alarm.raised"], "url: expected an http:// or https:// URL"),
        ("https:///path-only", ["alarm.raised"], "url: no host"),
        ("https://example.org:99999/", ["alarm.raised"], "url: bad port"),
        ("https://example.org/#frag", ["alarm.raised"], "url: a fragment"),
        ("https://example.org/", [], "kinds: name at least one"),
    ],
)
async def test_a_bad_subscription_is_refused_and_nothing_is_stored(
    store: Store, url: str, kinds: list[NotificationKind], message: str
) -> None:
    org = await make_org(store)
    with pytest.raises(Invalid, match=message):
        await webhooks.create_webhook(store, OPERATOR, organisation_id=org.id, url=url, kinds=kinds, now=T0)
    assert await webhooks.list_webhooks(store, OPERATOR, org.id) == []


async def test_the_operator_names_the_organisation_and_it_must_exist(store: Store) -> None:
    with pytest.raises(Invalid, match="organisation_id"):
        await webhooks.create_webhook(
            store, OPERATOR, organisation_id=None, url="https://e.org/", kinds=["alarm.raised"], now=T0
        )
    with pytest.raises(NotFound):
        await subscribe(store, 999, "https://e.org/")


async def test_an_organisation_has_a_bounded_number_of_webhooks(store: Store) -> None:
    org = await make_org(store)
    for n in range(webhooks.MAX_WEBHOOKS_PER_ORGANISATION):
        await subscribe(store, org.id, f"https://e.org/{n}")
    with pytest.raises(Conflict):
        await subscribe(store, org.id, "https://e.org/one-too-many")
    assert len(await webhooks.list_webhooks(store, OPERATOR, org.id)) == webhooks.MAX_WEBHOOKS_PER_ORGANISATION


# --- where webhooks may go ---------------------------------------------------------------------------------------

PUBLIC_ADDRESS = "93.184.215.14"


def resolving(names: dict[str, list[str]]) -> Resolver:
    """A resolver that knows ``names`` (and IP literals); any other name does not resolve."""

    async def resolver(host: str, port: int) -> list[str]:
        if host in names:
            return names[host]
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None

    return resolver


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.1.2.3",
        "10.0.0.5",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "2002:7f00:1::",
        "2001:db8::1",
    ],
)
def test_loopback_private_link_local_multicast_reserved_and_unspecified_addresses_are_refused(address: str) -> None:
    assert address_refusal(address) is not None


@pytest.mark.parametrize("address", [PUBLIC_ADDRESS, "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_unicast_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:8080/hooks", "url: the host is loopback"),
        ("http://localhost:8080/hooks", "url: the host is loopback"),
        ("http://api.localhost/hooks", "url: the host is loopback"),
        ("http://169.254.169.254/latest/meta-data/", "url: the host is link-local"),
        ("http://[::1]:8080/", "url: the host is loopback"),
        ("http://[::ffff:127.0.0.1]/", "url: the host is loopback"),
        ("http://0.0.0.0/", "url: the host is unspecified"),
        ("http://10.0.0.5/", "url: the host is private"),
        ("http://[fd00::5]/", "url: the host is private"),
        ("http://224.0.0.1/", "url: the host is multicast"),
        ("https://user:pw@example.org/hooks", "url: credentials in the URL are refused"),
        ("https://token@example.org/hooks", "url: credentials in the URL are refused"),
        ("https://intranet.example/hooks", "url: the host resolves to an address that is not public"),
        ("https://split.example/hooks", "url: the host resolves to an address that is not public"),
    ],
)
async def test_a_webhook_to_a_non_public_address_or_with_credentials_is_refused_at_registration(
    store: Store, url: str, message: str
) -> None:
    org = await make_org(store)
    resolver = resolving({"intranet.example": ["10.1.2.3"], "split.example": [PUBLIC_ADDRESS, "127.0.0.1"]})
    with pytest.raises(Invalid, match=re.escape(message)):
        await webhooks.create_webhook(
            store, OPERATOR, organisation_id=org.id, url=url, kinds=["alarm.raised"], now=T0, resolver=resolver
        )
    assert await webhooks.list_webhooks(store, OPERATOR, org.id) == []


async def test_a_public_name_or_one_that_does_not_resolve_yet_is_taken_at_registration(store: Store) -> None:
    org = await make_org(store)
    resolver = resolving({"hooks.example": [PUBLIC_ADDRESS]})
    for url in ("https://hooks.example/in", "https://not-yet.example/in"):
        await webhooks.create_webhook(
            store, OPERATOR, organisation_id=org.id, url=url, kinds=["alarm.raised"], now=T0, resolver=resolver
        )
    assert len(await webhooks.list_webhooks(store, OPERATOR, org.id)) == 2


async def test_a_name_that_resolves_to_a_private_address_at_delivery_is_refused_and_nothing_is_sent(
    store: Store,
) -> None:
    org = await make_org(store)
    async with Receiver() as receiver:
        port = urlsplit(receiver.url).port
        registered = resolving({"rebind.example": [PUBLIC_ADDRESS]})
        webhook, _ = await webhooks.create_webhook(
            store,
            OPERATOR,
            organisation_id=org.id,
            url=f"http://rebind.example:{port}/hooks/coldchain",
            kinds=["alarm.raised"],
            now=T0,
            resolver=registered,
        )
        await publish(store, org.id)
        # The name's DNS answer changes after registration: it now points at the service's own host.
        rebound = resolving({"rebind.example": ["127.0.0.1"]})
        outcome = await deliver(store, Clock(T0), msgspec.structs.replace(POLICY, allow_private=False), rebound)
    assert receiver.received == []
    assert outcome.retrying == 1
    [delivery] = await log_of(store, webhook.id)
    assert [(a.status_code, a.error) for a in delivery.log] == [(None, REFUSED_TARGET)]


async def test_a_stored_url_to_a_private_address_is_refused_at_delivery_without_the_ports_answer(store: Store) -> None:
    org = await make_org(store)
    async with Receiver([418]) as receiver:
        async with store.transaction() as tx:  # stored before addresses were checked at registration
            webhook = await tx.create_webhook(
                organisation_id=org.id, url=receiver.url, kinds=["alarm.raised"], secret="whsec_x", now=T0
            )
        await publish(store, org.id)
        await deliver(store, Clock(T0), msgspec.structs.replace(POLICY, allow_private=False))
    assert receiver.received == []
    [delivery] = await log_of(store, webhook.id)
    assert (delivery.last_status_code, delivery.last_error) == (None, REFUSED_TARGET)
    assert "418" not in str(delivery.log)


async def test_a_delivery_connects_to_the_address_it_checked_keeping_the_host_name_in_the_host_header(
    store: Store,
) -> None:
    org = await make_org(store)
    async with Receiver() as receiver:
        port = urlsplit(receiver.url).port
        # No DNS knows receiver.test: only a connection to the checked address can reach the receiver.
        resolver = resolving({"receiver.test": ["127.0.0.1"]})
        _, secret = await webhooks.create_webhook(
            store,
            OPERATOR,
            organisation_id=org.id,
            url=f"http://receiver.test:{port}/hooks/coldchain",
            kinds=["alarm.raised"],
            now=T0,
            allow_private=True,
            resolver=resolver,
        )
        await publish(store, org.id)
        outcome = await deliver(store, Clock(T0), POLICY, resolver)
    assert outcome.delivered == 1
    [received] = receiver.received
    assert received.headers["host"] == f"receiver.test:{port}"
    assert verifies(received, secret)


async def test_an_https_delivery_to_the_checked_address_keeps_the_host_name_for_tls_and_the_host_header(
    store: Store,
) -> None:
    # What travels to the transport, not the wire: a TLS receiver with a certificate for the name needs a CA the
    # test cannot make. The connection goes to the address; the TLS server name (SNI and certificate check) and
    # the Host header stay the URL's host name.
    org = await make_org(store)
    resolver = resolving({"hooks.example": [PUBLIC_ADDRESS]})
    await webhooks.create_webhook(
        store, OPERATOR, organisation_id=org.id, url="https://hooks.example/in", kinds=["alarm.raised"], now=T0,
        resolver=resolver,
    )  # fmt: skip
    await publish(store, org.id)
    seen: list[httpx.Request] = []

    def receiver(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async with httpx.AsyncClient(transport=httpx.MockTransport(receiver)) as client:
        outcome = await deliver_due(
            store, client, clock=Clock(T0), worker="test", policy=msgspec.structs.replace(POLICY, allow_private=False),
            resolver=resolver,
        )  # fmt: skip
    assert outcome.delivered == 1
    [request] = seen
    assert (request.url.scheme, request.url.host, request.url.path) == ("https", PUBLIC_ADDRESS, "/in")
    assert request.headers["host"] == "hooks.example"
    assert request.extensions["sni_hostname"] == "hooks.example"
    assert request.headers["connection"] == "close"
