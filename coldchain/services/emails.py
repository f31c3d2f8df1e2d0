"""Use cases of email notifications: people's preferences and the shipments they follow, and the three steps that
carry a notification to a person's mailbox.

1. **Planning** (:func:`plan_emails`, a job): reads every organisation's notifications in commit order after the
   planner's cursor, and writes the emails they make (:func:`coldchain.domain.emails.plan_emails`), one per
   notification and address at most (a unique key), and the cursor, in one transaction. The first plan starts at
   the newest notification: turning email on never mails the past.
2. **Digests** (:func:`make_digests`, a job): once a local day, at the user's digest hour, everything waiting for
   the user's digest becomes one email; the day is recorded, so a digest is made at most once a day.
3. **Delivery** (:func:`deliver_due_emails`, a job): each due email is taken under a lease in a transaction (so no
   other process takes it), rendered in the recipient's time zone, sent through the operator's SMTP server, and
   settled in another transaction with the attempt in its log. A transient failure is tried again after a backoff
   (that of webhooks: doubling, with jitter), never inside the recipient's quiet hours unless urgent; a permanent
   refusal (5xx) or the last attempt fails it.

Delivery is at least once: an attempt whose process stops after the server took the message but before it was
settled is made again after its lease. Every attempt of one email carries the same ``Message-ID``, which mail
systems use to drop a repeat.
"""

from __future__ import annotations

import email.message
import email.utils
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from datetime import time as clock_time
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.emails import (
    DIRECT_KIND,
    PREFERENCE_KINDS,
    Cadence,
    DueEmail,
    EmailDelivery,
    EmailMessage,
    EmailPreferences,
    EmailStatus,
    NoticeItem,
    QuietHours,
    Recipient,
    RenderedEmail,
    ShipmentScope,
    digest_day,
    is_urgent,
    known_time_zone,
    no_preferences,
    release_at,
)
from coldchain.domain.emails import plan_emails as plan_for
from coldchain.domain.notifications import Notification, NotificationKind
from coldchain.domain.users import User
from coldchain.services.access import require, visible_shipment
from coldchain.services.custody import custodian_at
from coldchain.services.errors import Forbidden, Invalid, NotFound
from coldchain.services.mail import MailOutcome, MailTransport
from coldchain.services.webhooks import attempt_in_rounds, retry_delay
from coldchain.storage import Store, Transaction

__all__ = [
    "EmailPolicy",
    "EmailRound",
    "LoggedEmail",
    "PreferencesChange",
    "Render",
    "deliver_due_emails",
    "email_log",
    "email_log_told",
    "follow_shipment",
    "followed_shipments",
    "make_digests",
    "my_emails",
    "notification_preferences",
    "plan_emails",
    "save_preferences",
    "unfollow_shipment",
]

log = logging.getLogger("coldchain.emails")

Render = Callable[[EmailMessage], RenderedEmail]
"""Turns what a message tells into its subject and its text and HTML parts (:mod:`coldchain.documents.email`)."""

_PLAN_BATCH = 500
_PLAN_ROUNDS = 20
_READING_LOOKBACK = timedelta(hours=1)
_METRIC_VALUE = {"temperature": "temperature_c", "humidity": "humidity_pct", "pressure": "pressure_kpa"}

_Outcome = Literal["sent", "retrying", "failed", "cancelled"]


class EmailPolicy(msgspec.Struct, frozen=True, kw_only=True):
    sender: str
    """The From address."""
    public_url: str
    """The service's address as people reach it; the base of every link."""
    max_attempts: int = 8
    retry_s: float = 60.0
    retry_max_s: float = 3600.0
    timeout_s: float = 30.0
    concurrency: int = 4
    max_per_round: int = 200

    @property
    def lease(self) -> timedelta:
        """How long a taken email is left to its taker: the SMTP timeout and a margin."""
        return timedelta(seconds=self.timeout_s + 30.0)


class EmailRound(msgspec.Struct, frozen=True, kw_only=True):
    attempted: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0


# -- preferences and follows -------------------------------------------------------------------------------------


class PreferencesChange(msgspec.Struct, frozen=True, kw_only=True):
    kinds: list[NotificationKind]
    shipments: ShipmentScope = "all"
    cadence: Cadence = "immediate"
    digest_hour: int = 7
    time_zone: str = "UTC"
    quiet_start: clock_time | None = None
    quiet_end: clock_time | None = None


def _checked(change: PreferencesChange, user_id: int) -> EmailPreferences:
    unknown = sorted(set(change.kinds) - set(PREFERENCE_KINDS))
    if unknown:
        raise Invalid(f"kinds: {', '.join(unknown)} cannot be chosen (an escalation step names its person itself)")
    if not 0 <= change.digest_hour <= 23:
        raise Invalid("digest_hour: an hour from 0 to 23")
    if not known_time_zone(change.time_zone):
        raise Invalid(f"time_zone: {change.time_zone!r} is no IANA time zone (like Europe/Helsinki or UTC)")
    if (change.quiet_start is None) != (change.quiet_end is None):
        raise Invalid("quiet_start: give both the start and the end of the quiet hours, or neither")
    quiet = None
    if change.quiet_start is not None and change.quiet_end is not None:
        if change.quiet_start.tzinfo is not None or change.quiet_end.tzinfo is not None:
            raise Invalid("quiet_start: local wall-clock times without an offset (the time zone says where)")
        start, end = (t.replace(second=0, microsecond=0) for t in (change.quiet_start, change.quiet_end))
        if start == end:
            raise Invalid("quiet_end: the quiet hours end at another time than they start")
        quiet = QuietHours(start=start, end=end)
    return EmailPreferences(
        user_id=user_id,
        kinds=sorted(set(change.kinds)),
        shipments=change.shipments,
        cadence=change.cadence,
        digest_hour=change.digest_hour,
        time_zone=change.time_zone,
        quiet_hours=quiet,
    )


async def _person(tx: Transaction, principal: Principal, organisation_id: int | None, user_id: int | None) -> User:
    """The user whose preferences are read or changed: the signed-in person themself (both ids ``None``), or a
    user of an organisation its admin (or the operator) names."""
    if organisation_id is None or user_id is None:
        if principal.user_id is None:
            raise Forbidden(
                "notification preferences are a person's: sign in to the portal (an API token has none), or, as an"
                " admin, use /v1/organisations/{id}/users/{user_id}/notification-preferences"
            )
        me = await tx.get_user(principal.user_id)
        assert me is not None  # the session named it
        return me
    if not principal.acts_for(organisation_id):
        raise NotFound(f"no organisation {organisation_id}")
    require(principal, "manage")
    user = await tx.get_user(user_id)
    if user is None or user.organisation_id != organisation_id:
        raise NotFound(f"organisation {organisation_id} has no user {user_id}")
    return user


async def notification_preferences(
    store: Store, principal: Principal, *, organisation_id: int | None = None, user_id: int | None = None
) -> tuple[User, EmailPreferences, list[int]]:
    """The person, their preferences (the defaults, which send nothing, when never saved) and the shipments they
    follow."""
    async with store.transaction() as tx:
        user = await _person(tx, principal, organisation_id, user_id)
        found = await tx.notification_preferences(user.id)
        follows = await tx.followed_shipments(user.id)
    return user, found or no_preferences(user.id), follows


def _described(preferences: EmailPreferences | None) -> dict[str, Any] | None:
    return None if preferences is None else msgspec.to_builtins(msgspec.structs.replace(preferences, updated_at=None))


async def save_preferences(
    store: Store,
    principal: Principal,
    change: PreferencesChange,
    *,
    now: datetime,
    organisation_id: int | None = None,
    user_id: int | None = None,
) -> EmailPreferences:
    """Save a person's preferences, with an audit entry holding what they were and what they are. Back from the
    daily digest to immediate emails, what waited for the digest is sent at once, one by one."""
    async with store.transaction() as tx:
        user = await _person(tx, principal, organisation_id, user_id)
        preferences = _checked(change, user.id)
        before = await tx.notification_preferences(user.id)
        await tx.save_notification_preferences(preferences, now=now)
        if preferences.cadence == "immediate":
            await tx.release_waiting_digest(user.id, now=now)
        detail = {"email": user.email, "before": _described(before), "after": _described(preferences)}
        await tx.append_audit(
            actor=principal.actor,
            action="user.notification_preferences",
            subject=f"user:{user.id}",
            detail=msgspec.json.encode(detail).decode(),
            now=now,
        )
        saved = await tx.notification_preferences(user.id)
    assert saved is not None
    return saved


def _follower(principal: Principal) -> int:
    if principal.user_id is None:
        raise Forbidden("following a shipment is a person's: sign in to the portal (an API token follows nothing)")
    return principal.user_id


async def follow_shipment(store: Store, principal: Principal, shipment_id: int, *, now: datetime) -> bool:
    """The signed-in person follows a shipment they may see (idempotent); whether this call made them."""
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)  # first: to anyone else the shipment does not exist
        user_id = _follower(principal)
        made = await tx.follow_shipment(user_id, shipment_id, now=now)
        if made:
            await tx.append_audit(
                actor=principal.actor,
                action="shipment.followed",
                subject=f"shipment:{shipment_id}",
                detail=msgspec.json.encode({"user": user_id}).decode(),
                now=now,
            )
    return made


async def unfollow_shipment(store: Store, principal: Principal, shipment_id: int, *, now: datetime) -> bool:
    """The signed-in person stops following a shipment (idempotent); whether they followed it."""
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)  # first: to anyone else the shipment does not exist
        user_id = _follower(principal)
        ended = await tx.unfollow_shipment(user_id, shipment_id)
        if ended:
            await tx.append_audit(
                actor=principal.actor,
                action="shipment.unfollowed",
                subject=f"shipment:{shipment_id}",
                detail=msgspec.json.encode({"user": user_id}).decode(),
                now=now,
            )
    return ended


async def followed_shipments(store: Store, principal: Principal) -> list[int]:
    user_id = _follower(principal)
    async with store.transaction() as tx:
        return await tx.followed_shipments(user_id)


async def my_emails(store: Store, principal: Principal, *, limit: int = 10) -> list[EmailDelivery]:
    """The latest emails to the signed-in person, newest first."""
    user_id = _follower(principal)
    async with store.transaction() as tx:
        return await tx.emails_of_user(user_id, limit=limit)


async def email_log(
    store: Store, principal: Principal, organisation_id: int, *, limit: int = 50
) -> list[EmailDelivery]:
    """The emails sent (or on their way) to the organisation's people, newest first, with every attempt."""
    if not principal.acts_for(organisation_id):
        raise NotFound(f"no organisation {organisation_id}")
    require(principal, "manage")
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation_id) is None:
            raise NotFound(f"no organisation {organisation_id}")
        return await tx.emails_of_organisation(organisation_id, limit=limit)


class LoggedEmail(msgspec.Struct, frozen=True, kw_only=True):
    """An email of the log as its admin reads it: the delivery with its attempts, the recipient's name, and what
    it tells (the notifications as the message told them, without the reading and the custodian, which its subject
    does not use)."""

    delivery: EmailDelivery
    recipient: str | None
    """The user's name; ``None`` for a user no longer found."""
    items: list[NoticeItem]


async def email_log_told(
    store: Store, principal: Principal, organisation_id: int, *, limit: int = 50
) -> list[LoggedEmail]:
    """:func:`email_log` with what each email tells, for the portal's page: the outbox keeps no subject, so the
    page says it again from the same notifications the message was written from."""
    deliveries = await email_log(store, principal, organisation_id, limit=limit)
    told: dict[int, NoticeItem] = {}
    logged = []
    async with store.transaction() as tx:
        names = {user.id: user.name for user in await tx.users_of_organisation(organisation_id)}
        for delivery in deliveries:
            if delivery.notification_id is None:
                notifications = await tx.notifications_of_digest(delivery.id)
            else:
                found = await tx.get_notification(delivery.notification_id)
                notifications = [] if found is None else [found]
            for notification in notifications:
                if notification.id not in told:
                    told[notification.id] = await _item(tx, notification, brief=True)
            logged.append(
                LoggedEmail(
                    delivery=delivery,
                    recipient=names.get(delivery.user_id),
                    items=[told[n.id] for n in notifications],
                )
            )
    return logged


# -- planning ------------------------------------------------------------------------------------------------------


async def _recipients(
    tx: Transaction, notification: Notification, people: dict[int, tuple[list[User], dict[int, EmailPreferences]]]
) -> list[Recipient]:
    organisation = notification.organisation_id
    if organisation not in people:
        people[organisation] = (
            await tx.users_of_organisation(organisation),
            await tx.preferences_of_organisation(organisation),
        )
    users, preferences = people[organisation]
    followers = set() if notification.shipment_id is None else await tx.followers(notification.shipment_id)
    return [
        Recipient(
            user=user,
            preferences=preferences.get(user.id) or no_preferences(user.id),
            follows=user.id in followers,
        )
        for user in users
    ]


async def plan_emails(store: Store, *, now: datetime) -> int:
    """Turn the notifications committed since the last plan into emails; how many emails were made. A planner in
    another process that holds the planner's lock right now makes this call plan nothing."""
    made = 0
    for _ in range(_PLAN_ROUNDS):
        async with store.transaction() as tx:
            if not await tx.lock_email_planning():
                return made
            cursor = await tx.email_cursor()
            if cursor is None:  # the first plan: from now on, never the past
                await tx.set_email_cursor(await tx.newest_notification_position())
                return made
            notifications = await tx.notifications_in_commit_order(after=cursor, limit=_PLAN_BATCH)
            people: dict[int, tuple[list[User], dict[int, EmailPreferences]]] = {}
            for notification in notifications:
                for planned in plan_for(notification, await _recipients(tx, notification, people), now=now):
                    status: EmailStatus = "waiting_digest" if planned.waits_for_digest else "pending"
                    inserted = await tx.insert_email(
                        user_id=planned.user_id,
                        address=planned.address,
                        notification_id=notification.id,
                        status=status,
                        send_at=None if planned.waits_for_digest else planned.send_at,
                        held_until=planned.held_until,
                        now=now,
                    )
                    made += inserted is not None
            if notifications:
                last = notifications[-1].position
                assert last is not None  # read by position
                await tx.set_email_cursor(last)
        if len(notifications) < _PLAN_BATCH:
            break
    return made


# -- digests -------------------------------------------------------------------------------------------------------


async def make_digests(store: Store, *, now: datetime) -> int:
    """Make the digests due at ``now``: for each user who chose a digest and whose local digest hour has come,
    once a local day, one email of everything waiting for it (nothing when nothing waits). How many were made."""
    async with store.transaction() as tx:
        candidates = await tx.digest_candidates()
    made = 0
    for user_id, last_digest_on in candidates:
        async with store.transaction() as tx:
            user = await tx.get_user(user_id)
            preferences = await tx.notification_preferences(user_id)
            if user is None or preferences is None:
                continue
            day = digest_day(preferences, now)
            if day is None or (last_digest_on is not None and last_digest_on >= day):
                continue
            since = await tx.last_digest_at(user_id)
            if not await tx.mark_digest_day(user_id, day, now=now):
                continue  # another process made this day's digest just now
            if await tx.waiting_for_digest(user_id):
                made += (
                    await tx.open_digest(user_id=user_id, address=user.email, digest_on=day, since=since, now=now)
                    is not None
                )
    return made


# -- delivery ------------------------------------------------------------------------------------------------------


async def deliver_due_emails(
    store: Store,
    transport: MailTransport,
    *,
    render: Render,
    clock: Callable[[], datetime],
    worker: str,
    policy: EmailPolicy,
    rng: random.Random | None = None,
) -> EmailRound:
    """Make one attempt at every email due, ``policy.concurrency`` at a time, until none is due or
    ``policy.max_per_round`` attempts were made. No database connection waits on the mail server."""

    async def take(now: datetime, limit: int) -> list[DueEmail]:
        async with store.transaction() as tx:
            return await tx.take_due_emails(now=now, lease_until=now + policy.lease, worker=worker, limit=limit)

    async def attempt(due: DueEmail) -> str:
        return await _deliver(store, transport, due, render=render, clock=clock, policy=policy, rng=rng)

    totals = await attempt_in_rounds(
        take,
        attempt,
        clock=clock,
        concurrency=policy.concurrency,
        max_per_round=policy.max_per_round,
        outcomes=("sent", "retrying", "failed", "cancelled"),
    )
    return EmailRound(**totals)


async def _deliver(
    store: Store,
    transport: MailTransport,
    due: DueEmail,
    *,
    render: Render,
    clock: Callable[[], datetime],
    policy: EmailPolicy,
    rng: random.Random | None,
) -> _Outcome:
    started = time.monotonic()
    async with store.transaction() as tx:
        user = await tx.get_user(due.user_id)
        preferences = await tx.notification_preferences(due.user_id) or no_preferences(due.user_id)
        if user is None or not user.active or not due.notifications:
            why = "the user is disabled" if user is not None and not user.active else "nothing left to tell"
            await tx.settle_email(
                due.id,
                due.attempt,
                status="cancelled",
                next_attempt_at=None,
                reply_code=None,
                reply=None,
                error=why,
                duration_ms=(time.monotonic() - started) * 1000,
                sent_at=None,
            )
            return "cancelled"
        told = await _message(tx, due, user, preferences, policy.public_url)
    try:
        outcome = await transport.send(_mime(told, render(told), policy, sent_at=clock()))
    except Exception as exc:  # a mail server must never stop the round: log it, and retry like any failure
        log.exception("email %s to %s failed unexpectedly", due.id, due.address)
        outcome = MailOutcome(
            result="transient", reply_code=None, reply=None, error=f"{type(exc).__name__}: {exc}"[:500]
        )
    now = clock()
    result: _Outcome
    status: EmailStatus
    next_attempt_at = None
    if outcome.result == "sent":
        result, status = "sent", "sent"
    elif outcome.result == "refused" or due.attempt >= policy.max_attempts:
        result, status = "failed", "failed"
    else:
        result, status = "retrying", "pending"
        retry = now + retry_delay(due.attempt, first_s=policy.retry_s, max_s=policy.retry_max_s, rng=rng)
        urgent = any(is_urgent(n) or n.kind == DIRECT_KIND for n in due.notifications)
        next_attempt_at = release_at(preferences, retry, urgent=urgent)
    async with store.transaction() as tx:
        await tx.settle_email(
            due.id,
            due.attempt,
            status=status,
            next_attempt_at=next_attempt_at,
            reply_code=outcome.reply_code,
            reply=outcome.reply,
            error=outcome.error,
            duration_ms=(time.monotonic() - started) * 1000,
            sent_at=now if status == "sent" else None,
        )
    return result


def _mime(
    told: EmailMessage, rendered: RenderedEmail, policy: EmailPolicy, *, sent_at: datetime
) -> email.message.EmailMessage:
    """The message as sent: plain text and HTML alternatives, the same Message-ID on every attempt, an unsubscribe
    link to the preferences page (RFC 2369) and the mark of an automatic message (RFC 3834)."""
    host = urlsplit(policy.public_url).hostname or "coldchain.invalid"
    message = email.message.EmailMessage()
    message["Subject"] = rendered.subject
    message["From"] = policy.sender
    message["To"] = email.utils.formataddr((told.recipient, told.address))
    message["Date"] = email.utils.format_datetime(sent_at)
    message["Message-ID"] = f"<email-{told.email_id}@{host}>"
    message["Auto-Submitted"] = "auto-generated"
    message["List-Unsubscribe"] = f"<{told.public_url}/portal/preferences>"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


async def _message(
    tx: Transaction, due: DueEmail, user: User, preferences: EmailPreferences, public_url: str
) -> EmailMessage:
    items = [await _item(tx, notification) for notification in due.notifications]
    since = None if due.digest_on is None else await tx.digest_since(due.id)
    return EmailMessage(
        email_id=due.id,
        recipient=user.name,
        address=due.address,
        time_zone=preferences.time_zone,
        public_url=public_url,
        items=items,
        digest_on=due.digest_on,
        digest_since=since,
    )


async def _item(tx: Transaction, notification: Notification, *, brief: bool = False) -> NoticeItem:
    """What a person reads about one notification: the shipment it concerns, and for an alarm its rule, severity,
    the reading that met it and who held the shipment then (``brief``: neither the reading nor the holder)."""
    fields: dict[str, Any] = {
        "notification_id": notification.id,
        "kind": notification.kind,
        "created_at": notification.created_at,
        "payload": notification.payload,
    }
    shipment_id = notification.shipment_id
    shipment = None if shipment_id is None else await tx.get_shipment(shipment_id)
    moment = notification.created_at
    if shipment is not None:
        product = await tx.get_product(shipment.product_id)
        lot = None if shipment.lot_id is None else await tx.get_lot(shipment.lot_id)
        fields |= {
            "shipment_id": shipment.id,
            "reference": shipment.reference,
            "product": None if product is None else product.name,
            "lot": None if lot is None else lot.lot_number,
        }
        alarm_id = notification.payload.get("alarm_id")
        stored = await tx.get_alarm(alarm_id) if isinstance(alarm_id, int) else None
        if stored is not None and stored.shipment_id == shipment.id:
            alarm = stored.alarm
            moment = alarm.met_at
            fields |= {
                "alarm_id": stored.id,
                "rule": alarm.rule,
                "severity": alarm.action,
                "metric": alarm.metric,
                "direction": alarm.direction,
                "threshold": alarm.threshold,
                "late": stored.late,
                "began_at": alarm.began_at,
                "met_at": alarm.met_at,
            }
            if not brief:
                fields["reading"], fields["reading_at"] = await _reading(
                    tx, stored.assignment_id, shipment.id, alarm.metric, alarm.met_at
                )
        if not brief:
            holder = await custodian_at(tx, shipment.id, moment)
            organisation = None if holder is None else await tx.get_organisation(holder)
            fields["custodian"] = None if organisation is None else organisation.name
    return msgspec.convert(fields, NoticeItem)


async def _reading(
    tx: Transaction, assignment_id: int, shipment_id: int, metric: str, at: datetime
) -> tuple[float | None, datetime | None]:
    """The alarm's metric in the last reading of its stream at or before the moment the condition was met (within
    the hour before it), and that reading's device time."""
    for assignment in await tx.assignments_of_shipment(shipment_id):
        if assignment.id != assignment_id:
            continue
        readings = await tx.readings_between(
            assignment.tracker_id, at - _READING_LOOKBACK, at + timedelta(microseconds=1)
        )
        for reading in reversed(readings):
            value = getattr(reading, _METRIC_VALUE.get(metric, "temperature_c"), None)
            if isinstance(value, float | int):
                return float(value), reading.device_time
    return None, None
