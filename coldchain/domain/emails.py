"""Alarms reach people: who of an organisation is emailed about a notification, when, and what the message says.

Pure rules, no I/O and no clock (every function takes ``now``):

- **Preferences** (:class:`EmailPreferences`), one per user: which kinds of notification, for which shipments
  (``all`` of the organisation's, or those the user ``followed``), ``immediate`` or in a daily ``digest`` at a
  local hour, quiet hours in local time, and the time zone the message's times are told in. A user without
  preferences gets no email: nobody is mailed before saying so.
- **Planning** (:func:`plan_emails`): a notification of an organisation becomes at most one email per address of
  its users whose preferences take it, sent at once, held until the user's quiet hours end, or left for the
  digest. An alarm whose rule's action is ``reject`` (the goods are lost unless someone acts) is never held and
  never left for a digest. A step of an escalation chain (``alarm.escalation_step``) goes to the person it names
  whatever their preferences, at once: the organisation chose them to be woken.
- **Digests** (:func:`digest_day`): a user's digest is due once a local day, when their digest hour has come.
- **Escalation chains** (:func:`due_steps`): an organisation names who is told, in order, when an alarm stays
  unacknowledged (a person and a delay after the alarm was raised). A step whose time came before the chain was
  saved is not sent, so saving a chain never mails about alarms long past.

EU GDP (2013/C 343/01) 9.2 asks that an excursion be reported to the distributor and the recipient; the
notification outbox tells the parties' organisations, and these rules carry it to their people.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from coldchain.domain.notifications import NOTIFICATION_KINDS, Notification, NotificationKind
from coldchain.domain.users import User

__all__ = [
    "DIRECT_KIND",
    "EMAIL_STATUSES",
    "MAX_CHAIN_DELAY_MIN",
    "MAX_CHAIN_STEPS",
    "PREFERENCE_KINDS",
    "Cadence",
    "DueEmail",
    "EmailAttempt",
    "EmailDelivery",
    "EmailMessage",
    "EmailPreferences",
    "EmailStatus",
    "EscalationChain",
    "EscalationNotice",
    "EscalationStep",
    "NoticeItem",
    "PlannedEmail",
    "QuietHours",
    "Recipient",
    "RenderedEmail",
    "ShipmentScope",
    "chain_problem",
    "digest_day",
    "due_steps",
    "is_urgent",
    "known_time_zone",
    "no_preferences",
    "plan_emails",
    "quiet_until",
    "release_at",
]

ShipmentScope = Literal["all", "followed"]
Cadence = Literal["immediate", "digest"]
EmailStatus = Literal["pending", "waiting_digest", "in_digest", "sent", "failed", "cancelled"]
EMAIL_STATUSES: tuple[EmailStatus, ...] = get_args(EmailStatus)

DIRECT_KIND: NotificationKind = "alarm.escalation_step"
"""Addressed to one person by an escalation chain; not a kind anyone subscribes to."""
PREFERENCE_KINDS: tuple[NotificationKind, ...] = tuple(k for k in NOTIFICATION_KINDS if k != DIRECT_KIND)
"""The kinds a person may choose to be emailed about."""
_URGENT_KINDS = frozenset({"alarm.raised", "alarm.escalated", DIRECT_KIND})

MAX_CHAIN_STEPS = 10
MAX_CHAIN_DELAY_MIN = 7 * 24 * 60
"""A week: a step later than that is no escalation."""


def known_time_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    if not name or len(name) > 64 or name.startswith(("/", ".")) or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class QuietHours(msgspec.Struct, frozen=True, kw_only=True):
    """Local wall-clock hours in which nothing but a ``reject`` alarm is sent; ``start`` after ``end`` spans
    midnight (22:00 to 07:00). ``start`` and ``end`` differ."""

    start: time
    end: time

    def covers(self, moment: time) -> bool:
        if self.start < self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end


class EmailPreferences(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    kinds: list[NotificationKind]
    """Sorted, each once; :data:`PREFERENCE_KINDS` only."""
    shipments: ShipmentScope = "all"
    cadence: Cadence = "immediate"
    digest_hour: int = 7
    """The local hour (0-23) the daily digest is sent at."""
    time_zone: str = "UTC"
    quiet_hours: QuietHours | None = None
    updated_at: datetime | None = None
    """``None``: never saved (the defaults, which send nothing)."""


def no_preferences(user_id: int) -> EmailPreferences:
    """What a user who never chose has: no kinds, so no email."""
    return EmailPreferences(user_id=user_id, kinds=[])


def _zone(preferences: EmailPreferences) -> ZoneInfo:
    return ZoneInfo(preferences.time_zone)


def quiet_until(preferences: EmailPreferences, moment: datetime) -> datetime | None:
    """When the user's quiet hours end (UTC), if ``moment`` falls inside them; ``None`` otherwise.

    Wall-clock times are read in the user's zone: on a day the clocks change, quiet hours last what the wall
    clock says (a 22:00-07:00 night is an hour shorter in spring)."""
    quiet = preferences.quiet_hours
    if quiet is None:
        return None
    zone = _zone(preferences)
    local = moment.astimezone(zone)
    wall = local.time()
    if not quiet.covers(wall):
        return None
    day = local.date()
    if quiet.start > quiet.end and wall >= quiet.start:
        day += timedelta(days=1)  # a night that began this evening ends tomorrow morning
    end = datetime.combine(day, quiet.end, tzinfo=zone)
    # An end the clocks skip (spring) maps past the gap; one they repeat (autumn) is the later of the two when the
    # earlier has already passed.
    for candidate in (end, end.replace(fold=1)):
        if candidate.astimezone(UTC) > moment:
            return candidate.astimezone(UTC)
    return None


def release_at(preferences: EmailPreferences, moment: datetime, *, urgent: bool) -> datetime:
    """When an email ready at ``moment`` may go: at once, or when the quiet hours end (never held if ``urgent``)."""
    if urgent:
        return moment
    return quiet_until(preferences, moment) or moment


def is_urgent(notification: Notification) -> bool:
    """An alarm raised or escalated whose rule's action is ``reject``: held by no quiet hours and no digest."""
    return notification.kind in _URGENT_KINDS and notification.payload.get("action") == "reject"


class Recipient(msgspec.Struct, frozen=True, kw_only=True):
    """A user of the notification's organisation, their preferences, and whether they follow its shipment."""

    user: User
    preferences: EmailPreferences
    follows: bool = False


class PlannedEmail(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    address: str
    waits_for_digest: bool
    send_at: datetime
    """When it may be sent (``now``, or the end of quiet hours); unused while it waits for the digest."""
    held_until: datetime | None
    """Set when quiet hours hold it back."""


def _takes(recipient: Recipient, notification: Notification) -> bool:
    preferences = recipient.preferences
    if notification.kind not in preferences.kinds:
        return False
    if preferences.shipments == "followed":
        return notification.shipment_id is not None and recipient.follows
    return True


def plan_emails(notification: Notification, recipients: Iterable[Recipient], *, now: datetime) -> list[PlannedEmail]:
    """The emails one notification of an organisation makes, at most one per address: to the active users whose
    preferences take it, or, for an escalation step, to the person it names."""
    planned: dict[str, PlannedEmail] = {}
    urgent = is_urgent(notification)
    for recipient in recipients:
        user = recipient.user
        if not user.active or user.organisation_id != notification.organisation_id or user.email in planned:
            continue
        if notification.kind == DIRECT_KIND:
            if notification.payload.get("user_id") != user.id:
                continue
            planned[user.email] = PlannedEmail(
                user_id=user.id, address=user.email, waits_for_digest=False, send_at=now, held_until=None
            )
            continue
        if not _takes(recipient, notification):
            continue
        preferences = recipient.preferences
        if preferences.cadence == "digest" and not urgent:
            planned[user.email] = PlannedEmail(
                user_id=user.id, address=user.email, waits_for_digest=True, send_at=now, held_until=None
            )
            continue
        send_at = release_at(preferences, now, urgent=urgent)
        planned[user.email] = PlannedEmail(
            user_id=user.id,
            address=user.email,
            waits_for_digest=False,
            send_at=send_at,
            held_until=send_at if send_at > now else None,
        )
    return sorted(planned.values(), key=lambda p: p.user_id)


def digest_day(preferences: EmailPreferences, now: datetime) -> date | None:
    """The user's local date whose digest is due at ``now`` (once the digest hour has come), else ``None``."""
    local = now.astimezone(_zone(preferences))
    return local.date() if local.hour >= preferences.digest_hour else None


# -- escalation chains -------------------------------------------------------------------------------------------


class EscalationStep(msgspec.Struct, frozen=True, kw_only=True):
    step_no: int
    user_id: int
    delay_min: int
    """Minutes after the alarm was raised (detected) at which this person is told, if nobody acknowledged it."""


class EscalationChain(msgspec.Struct, frozen=True, kw_only=True):
    organisation_id: int
    steps: list[EscalationStep]
    saved_at: datetime | None
    saved_by: str | None


class EscalationNotice(msgspec.Struct, frozen=True, kw_only=True):
    """A step walked: who was told about which alarm, when."""

    alarm_id: int
    organisation_id: int
    step_no: int
    user_id: int
    delay_min: int
    notified_at: datetime
    notification_id: int | None


def chain_problem(steps: Sequence[EscalationStep], members: Iterable[User]) -> str | None:
    """What is wrong with a chain an organisation wants to save, in words (``None``: nothing). ``members`` are
    the organisation's users."""
    if len(steps) > MAX_CHAIN_STEPS:
        return f"steps: at most {MAX_CHAIN_STEPS}"
    active = {user.id: user for user in members if user.active}
    seen: set[int] = set()
    previous = 0
    for number, step in enumerate(steps, start=1):
        where = f"steps[{number - 1}]"
        if step.user_id not in active:
            return f"{where}.user_id: user {step.user_id} is no active user of the organisation"
        if step.user_id in seen:
            return f"{where}.user_id: user {step.user_id} is told once, at one step"
        if not 1 <= step.delay_min <= MAX_CHAIN_DELAY_MIN:
            return f"{where}.delay_min: between 1 and {MAX_CHAIN_DELAY_MIN} minutes"
        if step.delay_min < previous:
            return f"{where}.delay_min: the chain is walked in order, so no step comes before the one above it"
        seen.add(step.user_id)
        previous = step.delay_min
    return None


def due_steps(
    chain: EscalationChain, *, detected_at: datetime, done: Iterable[int], now: datetime
) -> list[EscalationStep]:
    """The steps of ``chain`` to walk now for an unacknowledged alarm detected at ``detected_at``: those whose
    time has come, not walked before, and whose time came after the chain was saved; in order."""
    walked = set(done)
    if chain.saved_at is None:
        return []
    due = []
    for step in chain.steps:
        at = detected_at + timedelta(minutes=step.delay_min)
        if step.step_no not in walked and chain.saved_at <= at <= now:
            due.append(step)
    return sorted(due, key=lambda s: s.step_no)


# -- the outbox and what a message says --------------------------------------------------------------------------


class EmailAttempt(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    started_at: datetime
    worker: str
    duration_ms: float | None
    """``None``: the attempt never reported back (its process stopped while sending)."""
    reply_code: int | None
    """The SMTP server's reply code (250 accepted); ``None`` without a reply."""
    error: str | None


class EmailDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """An email of the outbox, with every attempt."""

    id: int
    user_id: int
    address: str
    notification_id: int | None
    kind: NotificationKind | None
    """The notification's kind; ``None`` for a digest."""
    digest_on: date | None
    digest_id: int | None
    status: EmailStatus
    held_until: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    last_reply: str | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    log: list[EmailAttempt]


class DueEmail(msgspec.Struct, frozen=True, kw_only=True):
    """An email taken for one attempt: to whom, about what (one notification, or a digest's), its attempt number."""

    id: int
    attempt: int
    user_id: int
    address: str
    notifications: list[Notification]
    digest_on: date | None
    created_at: datetime


class NoticeItem(msgspec.Struct, frozen=True, kw_only=True):
    """One notification as a person reads it: what happened to which shipment, and where to act."""

    notification_id: int
    kind: NotificationKind
    created_at: datetime
    shipment_id: int | None = None
    reference: str | None = None
    product: str | None = None
    lot: str | None = None
    custodian: str | None = None
    """Who held the shipment when it happened (an alarm: when its condition was met; otherwise now)."""
    alarm_id: int | None = None
    rule: str | None = None
    severity: str | None = None
    """The alarm rule's action: warn, quarantine or reject."""
    metric: str | None = None
    direction: str | None = None
    threshold: float | None = None
    began_at: datetime | None = None
    """When the alarm's condition began (device time)."""
    met_at: datetime | None = None
    """When the alarm's condition was met (device time)."""
    reading: float | None = None
    """The alarm's metric in the last reading up to the moment its condition was met (°C, % or kPa)."""
    reading_at: datetime | None = None
    late: bool = False
    payload: dict[str, Any] = msgspec.field(default_factory=dict)


class EmailMessage(msgspec.Struct, frozen=True, kw_only=True):
    """What one email tells one person: a notification, or the digest of several."""

    email_id: int
    recipient: str
    address: str
    time_zone: str
    public_url: str
    """The service's address as people reach it: every link starts with it."""
    items: list[NoticeItem]
    digest_on: date | None = None
    digest_since: datetime | None = None
    """A digest tells what happened after the previous digest was made (``None``: the first digest)."""


class RenderedEmail(msgspec.Struct, frozen=True, kw_only=True):
    subject: str
    text: str
    html: str
