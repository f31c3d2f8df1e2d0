"""Alarms reach people: email preferences, followed shipments, escalation chains and the email log.

A person reads and changes their own preferences (``/v1/users/me/...``, signed in: an API token is no person and
gets 403); an organisation's admin (or the operator) those of its users. Following a shipment is a person's too.
The escalation chain and the email log are the admin's. What the preferences mean is told in
:mod:`coldchain.domain.emails`; the email job in :mod:`coldchain.services.emails`.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, put
from litestar.params import JSONBody, QueryParameter
from msgspec import Meta

from coldchain.domain.emails import (
    MAX_CHAIN_DELAY_MIN,
    MAX_CHAIN_STEPS,
    Cadence,
    EmailDelivery,
    EmailPreferences,
    EmailStatus,
    EscalationChain,
    ShipmentScope,
)
from coldchain.domain.notifications import NOTIFICATION_KINDS, NotificationKind
from coldchain.http.deps import NowDep, PrincipalDep, StoreDep
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import BodyIn, Id, PathId
from coldchain.services import emails as use_cases
from coldchain.services import escalation

__all__ = [
    "ChainIn",
    "ChainOut",
    "EmailOut",
    "EscalationApi",
    "FollowOut",
    "PreferencesApi",
    "PreferencesIn",
    "PreferencesOut",
    "preferences_change",
    "preferences_out",
]

WallClock = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="local time, HH:MM")]
TimeZone = Annotated[str, Meta(min_length=1, max_length=64, description="an IANA time zone, like Europe/Helsinki")]
Hour = Annotated[int, Meta(ge=0, le=23)]
Kinds = Annotated[list[NotificationKind], Meta(max_length=len(NOTIFICATION_KINDS))]
DelayMin = Annotated[int, Meta(ge=1, le=MAX_CHAIN_DELAY_MIN)]
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="emails to show, newest first")]


class PreferencesIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kinds: Kinds
    """The kinds of notification to be emailed about (empty: no email). ``alarm.escalation_step`` is not chosen:
    an escalation chain names its people (422)."""
    shipments: ShipmentScope = "all"
    """``all`` the organisation's shipments, or those the person ``followed``."""
    cadence: Cadence = "immediate"
    """Each at once, or a daily ``digest`` at ``digest_hour`` (an alarm whose action is reject never waits)."""
    digest_hour: Hour = 7
    time_zone: TimeZone = "UTC"
    """Times in emails, the digest hour and the quiet hours are this zone's (422 for an unknown zone)."""
    quiet_start: WallClock | None = None
    """Quiet hours, local: nothing but a reject alarm is sent from ``quiet_start`` to ``quiet_end`` (over midnight
    when the start is later); what is held goes out when they end. Both or neither (422)."""
    quiet_end: WallClock | None = None


class PreferencesOut(msgspec.Struct, frozen=True, kw_only=True):
    user_id: int
    email: str
    kinds: list[NotificationKind]
    shipments: ShipmentScope
    cadence: Cadence
    digest_hour: int
    time_zone: str
    quiet_start: str | None
    quiet_end: str | None
    updated_at: datetime | None
    """``None``: never saved (these defaults send nothing)."""
    followed_shipments: list[int]


class FollowOut(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: int
    following: bool
    changed: bool
    """Whether this call changed it (following again, or unfollowing what was not followed, changes nothing)."""


class StepIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    user_id: Id
    delay_min: DelayMin
    """Minutes after the alarm was raised at which this person is told, if nobody has acknowledged it."""


class ChainIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    steps: Annotated[list[StepIn], Meta(max_length=MAX_CHAIN_STEPS)]
    """In order: each an active user of the organisation, once, no delay shorter than the step before (422).
    Empty: no one is told person by person."""


class StepOut(msgspec.Struct, frozen=True, kw_only=True):
    step_no: int
    user_id: int
    delay_min: int


class ChainOut(msgspec.Struct, frozen=True, kw_only=True):
    organisation_id: int
    steps: list[StepOut]
    saved_at: datetime | None
    saved_by: str | None


class EmailAttemptOut(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    started_at: datetime
    worker: str
    duration_ms: float | None
    reply_code: int | None
    error: str | None


class EmailOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    user_id: int
    address: str
    notification_id: int | None
    kind: NotificationKind | None
    """The notification's kind; ``null`` for a daily digest."""
    digest_on: date | None
    digest_id: int | None
    """The digest that carried this notification (status ``in_digest``)."""
    status: EmailStatus
    held_until: datetime | None
    """Quiet hours held it back until then."""
    attempts: int
    next_attempt_at: datetime | None
    last_reply: str | None
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime
    log: list[EmailAttemptOut]


def _clock(text: str | None) -> time | None:
    return None if text is None else time.fromisoformat(text)


def preferences_change(data: PreferencesIn) -> use_cases.PreferencesChange:
    return use_cases.PreferencesChange(
        kinds=data.kinds,
        shipments=data.shipments,
        cadence=data.cadence,
        digest_hour=data.digest_hour,
        time_zone=data.time_zone,
        quiet_start=_clock(data.quiet_start),
        quiet_end=_clock(data.quiet_end),
    )


def preferences_out(email: str, preferences: EmailPreferences, follows: list[int]) -> PreferencesOut:
    quiet = preferences.quiet_hours
    return PreferencesOut(
        user_id=preferences.user_id,
        email=email,
        kinds=preferences.kinds,
        shipments=preferences.shipments,
        cadence=preferences.cadence,
        digest_hour=preferences.digest_hour,
        time_zone=preferences.time_zone,
        quiet_start=None if quiet is None else quiet.start.strftime("%H:%M"),
        quiet_end=None if quiet is None else quiet.end.strftime("%H:%M"),
        updated_at=preferences.updated_at,
        followed_shipments=follows,
    )


def _chain_out(chain: EscalationChain) -> ChainOut:
    return ChainOut(
        organisation_id=chain.organisation_id,
        steps=[StepOut(step_no=s.step_no, user_id=s.user_id, delay_min=s.delay_min) for s in chain.steps],
        saved_at=chain.saved_at,
        saved_by=chain.saved_by,
    )


def _email_out(delivery: EmailDelivery) -> EmailOut:
    return EmailOut(
        id=delivery.id,
        user_id=delivery.user_id,
        address=delivery.address,
        notification_id=delivery.notification_id,
        kind=delivery.kind,
        digest_on=delivery.digest_on,
        digest_id=delivery.digest_id,
        status=delivery.status,
        held_until=delivery.held_until,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_reply=delivery.last_reply,
        last_error=delivery.last_error,
        sent_at=delivery.sent_at,
        created_at=delivery.created_at,
        log=[
            EmailAttemptOut(
                attempt=a.attempt,
                started_at=a.started_at,
                worker=a.worker,
                duration_ms=a.duration_ms,
                reply_code=a.reply_code,
                error=a.error,
            )
            for a in delivery.log
        ],
    )


class PreferencesApi(Controller):
    path = "/v1"
    tags = ["notifications"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @get(
        "/users/me/notification-preferences",
        summary="The signed-in person's email preferences and followed shipments",
        description="A person's: an API token gets 403.",
        responses=errors(401, 403),
    )
    async def mine(self, store: StoreDep, principal: PrincipalDep) -> PreferencesOut:
        user, preferences, follows = await use_cases.notification_preferences(store, principal)
        return preferences_out(user.email, preferences, follows)

    @put(
        "/users/me/notification-preferences",
        summary="Save the signed-in person's email preferences (audited)",
        description="A person's: an API token gets 403. An unknown time zone, a chosen `alarm.escalation_step`, one"
        " end of the quiet hours without the other or equal ends are refused with 422.",
        responses=errors(401, 403, 422),
    )
    async def save_mine(
        self, data: JSONBody[PreferencesIn], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> PreferencesOut:
        await use_cases.save_preferences(store, principal, preferences_change(data), now=now)
        user, preferences, follows = await use_cases.notification_preferences(store, principal)
        return preferences_out(user.email, preferences, follows)

    @get(
        "/organisations/{organisation_id:int}/users/{user_id:int}/notification-preferences",
        summary="A user's email preferences (the organisation's admin)",
        responses=errors(401, 403, 404),
    )
    async def of_user(
        self, organisation_id: PathId, user_id: PathId, store: StoreDep, principal: PrincipalDep
    ) -> PreferencesOut:
        user, preferences, follows = await use_cases.notification_preferences(
            store, principal, organisation_id=organisation_id, user_id=user_id
        )
        return preferences_out(user.email, preferences, follows)

    @put(
        "/organisations/{organisation_id:int}/users/{user_id:int}/notification-preferences",
        summary="Save a user's email preferences (the organisation's admin; audited)",
        responses=errors(401, 403, 404, 422),
    )
    async def save_of_user(
        self,
        organisation_id: PathId,
        user_id: PathId,
        data: JSONBody[PreferencesIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> PreferencesOut:
        await use_cases.save_preferences(
            store, principal, preferences_change(data), now=now, organisation_id=organisation_id, user_id=user_id
        )
        user, preferences, follows = await use_cases.notification_preferences(
            store, principal, organisation_id=organisation_id, user_id=user_id
        )
        return preferences_out(user.email, preferences, follows)

    @put(
        "/shipments/{shipment_id:int}/follow",
        summary="Follow a shipment: its notifications reach a person who chose followed shipments only",
        description="A person's: an API token gets 403. Idempotent (audited when it changes something).",
        responses=errors(401, 403, 404),
    )
    async def follow(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep, now: NowDep) -> FollowOut:
        changed = await use_cases.follow_shipment(store, principal, shipment_id, now=now)
        return FollowOut(shipment_id=shipment_id, following=True, changed=changed)

    @delete(
        "/shipments/{shipment_id:int}/follow",
        status_code=200,
        summary="Stop following a shipment",
        description="A person's: an API token gets 403. Idempotent (audited when it changes something).",
        responses=errors(401, 403, 404),
    )
    async def unfollow(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep, now: NowDep) -> FollowOut:
        changed = await use_cases.unfollow_shipment(store, principal, shipment_id, now=now)
        return FollowOut(shipment_id=shipment_id, following=False, changed=changed)


class EscalationApi(Controller):
    path = "/v1/organisations/{organisation_id:int}"
    tags = ["notifications"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @get(
        "/escalation-chain",
        summary="Who is told, in order, when an alarm stays unacknowledged (the admin)",
        responses=errors(401, 403, 404),
    )
    async def chain(self, organisation_id: PathId, store: StoreDep, principal: PrincipalDep) -> ChainOut:
        return _chain_out(await escalation.escalation_chain(store, principal, organisation_id))

    @put(
        "/escalation-chain",
        summary="Replace the escalation chain (the admin; audited with the chain before)",
        description="Steps whose time came before the chain was saved are not sent for alarms already standing.",
        responses=errors(401, 403, 404, 422),
    )
    async def save_chain(
        self, organisation_id: PathId, data: JSONBody[ChainIn], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> ChainOut:
        steps = [(step.user_id, step.delay_min) for step in data.steps]
        return _chain_out(await escalation.save_escalation_chain(store, principal, organisation_id, steps, now=now))

    @get(
        "/emails",
        summary="The emails to the organisation's people, newest first, with every attempt (the admin)",
        responses=errors(401, 403, 404, 422),
    )
    async def emails(
        self, organisation_id: PathId, store: StoreDep, principal: PrincipalDep, limit: Limit = 50
    ) -> list[EmailOut]:
        return [_email_out(e) for e in await use_cases.email_log(store, principal, organisation_id, limit=limit)]
