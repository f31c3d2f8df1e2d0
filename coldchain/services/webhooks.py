"""Use cases of webhooks: an organisation subscribes a URL to kinds of its notifications; the service POSTs each
one there, signed, and retries with backoff until the receiver answers 2xx or the attempts run out.

What a receiver gets, per attempt::

    POST <url>
    Content-Type: application/json
    X-Coldchain-Event: alarm.raised
    X-Coldchain-Delivery: 42                    the same on every attempt of one delivery: receivers deduplicate
    X-Coldchain-Attempt: 1
    X-Coldchain-Timestamp: 2026-03-01T10:15:00.120000+00:00     also in the body as sent_at, so it is signed
    X-Coldchain-Signature: sha256=<hex HMAC-SHA256 of the body bytes, keyed with the webhook's secret>

    {"attempt": 1, "created_at": "...", "delivery_id": 42, "kind": "alarm.raised", "notification_id": 7,
     "organisation_id": 3, "payload": {...}, "sent_at": "...", "shipment_id": 12, "subject": "..."}

Delivery is at least once: an attempt whose answer is lost, or whose process stops mid-way, is made again after
its lease. Deliveries of one webhook may arrive out of order (a retry overtakes nothing it waits for).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import random
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import httpx
import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.canonical import canonical_json, canonical_text
from coldchain.domain.notifications import DeliveryStatus, DueDelivery, NotificationKind, Webhook, WebhookDelivery
from coldchain.metrics import WEBHOOK_DELIVERIES
from coldchain.services.access import require
from coldchain.services.errors import Conflict, Invalid, NotFound
from coldchain.services.targets import Resolver, Target, TargetRefused, check_url, resolve, resolve_target
from coldchain.storage import Store

__all__ = [
    "MAX_WEBHOOKS_PER_ORGANISATION",
    "SECRET_PREFIX",
    "DeliveryPolicy",
    "DeliveryRound",
    "attempt_in_rounds",
    "create_webhook",
    "delete_webhook",
    "deliver_due",
    "list_webhooks",
    "retry_delay",
    "sign",
    "webhook_deliveries",
]

log = logging.getLogger("coldchain.webhooks")

SECRET_PREFIX = "whsec_"
MAX_WEBHOOKS_PER_ORGANISATION = 20
_MAX_ERROR_CHARS = 500
_RESOLVE_AT_REGISTRATION_S = 5.0


_Outcome = Literal["delivered", "retrying", "failed"]
_Due = TypeVar("_Due")


class DeliveryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    timeout_s: float = 10.0
    max_attempts: int = 8
    retry_s: float = 30.0
    """Delay before the first retry; doubled for each further one, up to ``retry_max_s``."""
    retry_max_s: float = 3600.0
    concurrency: int = 8
    """Attempts in flight at once per process; deliveries are taken this many at a time."""
    max_per_round: int = 200
    """Attempts per call of :func:`deliver_due`, so one call ends even while deliveries keep coming."""
    allow_private: bool = False
    """Let deliveries reach non-public addresses (see :mod:`coldchain.services.targets`)."""

    @property
    def lease(self) -> timedelta:
        """How long a taken delivery is left to its taker: its attempt's timeout and a margin."""
        return timedelta(seconds=self.timeout_s + 30.0)


class DeliveryRound(msgspec.Struct, frozen=True, kw_only=True):
    attempted: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


def sign(secret: str, body: bytes) -> str:
    """The ``X-Coldchain-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body`` keyed with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def retry_delay(attempt: int, *, first_s: float, max_s: float, rng: random.Random | None = None) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (1, 2, ...): ``first_s`` doubled per earlier
    failure, at most ``max_s``, then drawn uniformly from its upper half ("equal jitter"), so receivers that fail
    together are not retried together and the wait still grows."""
    ceiling = min(max_s, first_s * 2.0 ** min(attempt - 1, 64))  # 2**64 exceeds any cap; 2**1024 would overflow
    draw = (rng or random).random()
    return timedelta(seconds=ceiling / 2 * (1 + draw))


def _organisation_of(principal: Principal, organisation_id: int | None) -> int:
    """The organisation the caller manages webhooks of: the operator names it; anyone else has their own."""
    if principal.organisation_id is None:
        if organisation_id is None:
            raise Invalid("organisation_id: the operator names the organisation")
        return organisation_id
    if organisation_id is not None and organisation_id != principal.organisation_id:
        raise NotFound(f"no organisation {organisation_id}")
    require(principal, "manage")
    return principal.organisation_id


async def create_webhook(
    store: Store,
    principal: Principal,
    *,
    organisation_id: int | None,
    url: str,
    kinds: Sequence[NotificationKind],
    now: datetime,
    allow_private: bool = False,
    resolver: Resolver = resolve,
) -> tuple[Webhook, str]:
    """Subscribe ``url`` to ``kinds`` of the organisation's notifications from now on; returns the webhook and its
    signing secret (shown here once; the service keeps it to sign).

    A URL whose host is, or resolves to, a non-public address is refused unless ``allow_private``; a name that
    does not resolve yet is taken (every delivery checks it again).
    """
    organisation = _organisation_of(principal, organisation_id)
    check_url(url, allow_private=allow_private)
    try:
        async with asyncio.timeout(_RESOLVE_AT_REGISTRATION_S):
            await resolve_target(url, allow_private=allow_private, resolver=resolver)
    except TargetRefused:
        raise Invalid(
            "url: the host resolves to an address that is not public; webhooks go to public addresses only"
        ) from None
    except OSError:  # not resolvable now (TimeoutError included): every delivery resolves and checks it again
        pass
    chosen = sorted(set(kinds))
    if not chosen:
        raise Invalid("kinds: name at least one kind of notification")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation) is None:
            raise NotFound(f"no organisation {organisation}")
        if len(await tx.webhooks(organisation)) >= MAX_WEBHOOKS_PER_ORGANISATION:
            raise Conflict(f"an organisation has at most {MAX_WEBHOOKS_PER_ORGANISATION} webhooks; delete one first")
        webhook = await tx.create_webhook(organisation_id=organisation, url=url, kinds=chosen, secret=secret, now=now)
        await tx.append_audit(
            actor=principal.actor,
            action="webhook.created",
            subject=f"webhook:{webhook.id}",
            detail=canonical_text({"organisation_id": organisation, "url": url, "kinds": chosen}),
            now=now,
        )
    return webhook, secret


async def list_webhooks(store: Store, principal: Principal, organisation_id: int | None) -> list[Webhook]:
    organisation = _organisation_of(principal, organisation_id)
    async with store.transaction() as tx:
        return await tx.webhooks(organisation)


async def _managed_webhook(store: Store, principal: Principal, webhook_id: int) -> Webhook:
    async with store.transaction() as tx:
        webhook = await tx.get_webhook(webhook_id)
    if webhook is None or not principal.acts_for(webhook.organisation_id):
        raise NotFound(f"no webhook {webhook_id}")
    require(principal, "manage")
    return webhook


async def delete_webhook(store: Store, principal: Principal, webhook_id: int, *, now: datetime) -> Webhook:
    """Stop sending to the webhook; its pending deliveries fail, its log stays."""
    await _managed_webhook(store, principal, webhook_id)
    async with store.transaction() as tx:
        deleted = await tx.delete_webhook(webhook_id, now=now)
        if deleted is None:  # deleted concurrently
            raise NotFound(f"no webhook {webhook_id}")
        await tx.append_audit(
            actor=principal.actor, action="webhook.deleted", subject=f"webhook:{webhook_id}", detail="{}", now=now
        )
    return deleted


async def webhook_deliveries(
    store: Store, principal: Principal, webhook_id: int, *, limit: int = 50
) -> list[WebhookDelivery]:
    """The webhook's delivery log, newest first: each delivery with every attempt."""
    await _managed_webhook(store, principal, webhook_id)
    async with store.transaction() as tx:
        return await tx.deliveries(webhook_id, limit=limit)


async def deliver_due(
    store: Store,
    client: httpx.AsyncClient,
    *,
    clock: Callable[[], datetime],
    worker: str,
    policy: DeliveryPolicy,
    rng: random.Random | None = None,
    resolver: Resolver = resolve,
) -> DeliveryRound:
    """Make one attempt at every delivery due, ``policy.concurrency`` at a time, until none is due or
    ``policy.max_per_round`` attempts were made. Each delivery is taken (leased) in a transaction before it is sent
    and settled in another after, so no database connection waits on a receiver. Each attempt resolves the
    target's name, checks the addresses and connects to a checked one (:mod:`coldchain.services.targets`)."""

    async def take(now: datetime, limit: int) -> list[DueDelivery]:
        async with store.transaction() as tx:
            return await tx.take_due_deliveries(now=now, lease_until=now + policy.lease, worker=worker, limit=limit)

    async def attempt(due: DueDelivery) -> str:
        return await _deliver(store, client, due, clock=clock, policy=policy, rng=rng, resolver=resolver)

    totals = await attempt_in_rounds(
        take,
        attempt,
        clock=clock,
        concurrency=policy.concurrency,
        max_per_round=policy.max_per_round,
        outcomes=("delivered", "retrying", "failed"),
    )
    return DeliveryRound(**totals)


async def attempt_in_rounds(
    take: Callable[[datetime, int], Awaitable[Sequence[_Due]]],
    attempt: Callable[[_Due], Awaitable[str]],
    *,
    clock: Callable[[], datetime],
    concurrency: int,
    max_per_round: int,
    outcomes: Sequence[str],
) -> dict[str, int]:
    """Take what is due (``take(now, limit)`` leases it in a transaction of its own), ``concurrency`` at a time,
    and make one ``attempt`` at each, until nothing is due or ``max_per_round`` attempts were made; how many were
    attempted, and how many ended in each of ``outcomes``. Webhook deliveries and emails go out this way."""
    totals = {"attempted": 0} | dict.fromkeys(outcomes, 0)
    while totals["attempted"] < max_per_round:
        batch = min(concurrency, max_per_round - totals["attempted"])
        taken = await take(clock(), batch)
        if not taken:
            break
        for outcome in await asyncio.gather(*(attempt(due) for due in taken)):
            totals[outcome] += 1
        totals["attempted"] += len(taken)
        if len(taken) < batch:
            break
    return totals


async def _deliver(
    store: Store,
    client: httpx.AsyncClient,
    due: DueDelivery,
    *,
    clock: Callable[[], datetime],
    policy: DeliveryPolicy,
    rng: random.Random | None,
    resolver: Resolver,
) -> _Outcome:
    sent_at = clock()
    status_code, error, duration_ms = await _post(client, due, sent_at=sent_at, policy=policy, resolver=resolver)
    now = clock()
    outcome: _Outcome
    status: DeliveryStatus
    next_attempt_at = None
    if status_code is not None and 200 <= status_code < 300:
        outcome = status = "delivered"
    elif due.attempt >= policy.max_attempts:
        outcome = status = "failed"
    else:
        outcome, status = "retrying", "pending"
        next_attempt_at = now + retry_delay(due.attempt, first_s=policy.retry_s, max_s=policy.retry_max_s, rng=rng)
    async with store.transaction() as tx:
        await tx.settle_delivery(
            due.id,
            due.attempt,
            status=status,
            next_attempt_at=next_attempt_at,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            delivered_at=now if status == "delivered" else None,
        )
    WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
    return outcome


def _body(due: DueDelivery, sent_at: datetime) -> bytes:
    n = due.notification
    event: dict[str, Any] = {
        "delivery_id": due.id,
        "attempt": due.attempt,
        "notification_id": n.id,
        "kind": n.kind,
        "organisation_id": n.organisation_id,
        "shipment_id": n.shipment_id,
        "subject": n.subject,
        "payload": n.payload,
        "created_at": n.created_at,
        "sent_at": sent_at,
    }
    return canonical_json(event)


async def _post(
    client: httpx.AsyncClient, due: DueDelivery, *, sent_at: datetime, policy: DeliveryPolicy, resolver: Resolver
) -> tuple[int | None, str | None, float]:
    """POST one attempt; returns the status code (``None`` without an answer), the error, and the duration."""
    body = _body(due, sent_at)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "coldchain-webhooks",
        "X-Coldchain-Event": due.notification.kind,
        "X-Coldchain-Delivery": str(due.id),
        "X-Coldchain-Attempt": str(due.attempt),
        "X-Coldchain-Timestamp": sent_at.isoformat(),
        "X-Coldchain-Signature": sign(due.secret, body),
    }
    started = time.monotonic()
    status_code: int | None = None
    error: str | None = None
    try:
        target = await resolve_target(due.url, allow_private=policy.allow_private, resolver=resolver)
        status_code = await _send(client, target, body, headers, timeout_s=policy.timeout_s)
    except TargetRefused as exc:
        error = str(exc)
    except httpx.TimeoutException:
        error = f"no answer within {policy.timeout_s:g} s"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except OSError as exc:
        error = f"the host name does not resolve: {exc}"
    except Exception as exc:  # a receiver must never stop the round: log it, and retry like any failure
        log.exception("webhook delivery %s to %s failed unexpectedly", due.id, due.url)
        error = f"{type(exc).__name__}: {exc}"
    duration_ms = (time.monotonic() - started) * 1000
    if status_code is not None and not 200 <= status_code < 300:
        error = f"answered {status_code}"
    return status_code, None if error is None else error[:_MAX_ERROR_CHARS], duration_ms


async def _send(
    client: httpx.AsyncClient, target: Target, body: bytes, headers: dict[str, str], *, timeout_s: float
) -> int:
    """POST to the first checked address that takes the connection; the answer's status.

    The URL names the address, so nothing resolves the name again; ``Host`` and the TLS server name stay the
    URL's host. Each connection serves one request (``Connection: close``): a connection opened for one host name
    is never reused for another name on the same address.
    """
    url = httpx.URL(target.url)
    extensions = {} if url.scheme != "https" else {"sni_hostname": target.host}
    for index, address in enumerate(target.addresses):
        request = client.build_request(
            "POST",
            url.copy_with(host=address),
            content=body,
            headers={**headers, "Host": target.host_header, "Connection": "close"},
            timeout=timeout_s,
            extensions=extensions,
        )
        try:
            # Streamed so the answer's body is never read: only its status matters, whatever its size.
            response = await client.send(request, stream=True)
        except httpx.ConnectError:
            if index + 1 < len(target.addresses):
                continue
            raise
        await response.aclose()
        return response.status_code
    raise httpx.ConnectError("no address to connect to")
