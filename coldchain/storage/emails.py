"""Records of email notifications: each user's preferences, the shipments people follow, organisations'
escalation chains and the steps walked, and the email outbox with its attempt log (``0017_email_notifications.sql``).

Two keys carry the promises. An email of a notification is unique per (notification, address) and a digest per
(user, local day): a second planner or a repeated tick inserts nothing. A step walked is unique per (alarm,
organisation, step). Emails are taken for an attempt under a lease, like webhook deliveries, so two processes
never send one at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any, Protocol

import msgspec

from coldchain.domain.emails import (
    DueEmail,
    EmailAttempt,
    EmailDelivery,
    EmailPreferences,
    EmailStatus,
    EscalationChain,
    EscalationNotice,
    EscalationStep,
    QuietHours,
)
from coldchain.domain.notifications import Notification, NotificationKind
from coldchain.storage._sqlbase import SqlBase

__all__ = ["EmailRecords", "EmailsSql", "OpenAlarm"]


class OpenAlarm(msgspec.Struct, frozen=True, kw_only=True):
    """A standing, unacknowledged alarm: enough to walk an escalation chain."""

    alarm_id: int
    shipment_id: int
    detected_at: datetime


class EmailRecords(Protocol):
    """What a transaction offers for email notifications."""

    async def notification_preferences(self, user_id: int) -> EmailPreferences | None:
        """The user's saved preferences; ``None`` when never saved."""
        ...

    async def save_notification_preferences(self, preferences: EmailPreferences, *, now: datetime) -> None: ...

    async def preferences_of_organisation(self, organisation_id: int) -> dict[int, EmailPreferences]:
        """Saved preferences of the organisation's users, by user id."""
        ...

    async def digest_candidates(self) -> list[tuple[int, date | None]]:
        """Active users who chose a daily digest, each with the local day of their last digest."""
        ...

    async def mark_digest_day(self, user_id: int, day: date, *, now: datetime) -> bool:
        """Record that the user's digest of their local day ``day`` is made; false when it was (or a later one)."""
        ...

    async def follow_shipment(self, user_id: int, shipment_id: int, *, now: datetime) -> bool:
        """Whether this call made the user follow the shipment (false: already followed)."""
        ...

    async def unfollow_shipment(self, user_id: int, shipment_id: int) -> bool:
        """Whether the user followed the shipment until this call."""
        ...

    async def followed_shipments(self, user_id: int) -> list[int]: ...

    async def followers(self, shipment_id: int) -> set[int]: ...

    async def escalation_chain(self, organisation_id: int) -> EscalationChain:
        """The organisation's chain (no steps and no save time when it never saved one)."""
        ...

    async def save_escalation_chain(
        self, organisation_id: int, steps: Sequence[EscalationStep], *, by: str, now: datetime
    ) -> None: ...

    async def organisations_with_chains(self) -> list[int]: ...

    async def open_alarms_of_party(self, party: int, *, since: datetime) -> list[OpenAlarm]:
        """Standing unacknowledged alarms of the shipments ``party`` takes part in, detected at ``since`` or later."""
        ...

    async def escalation_notices(self, alarm_id: int) -> list[EscalationNotice]: ...

    async def record_escalation_notice(
        self, alarm_id: int, organisation_id: int, step: EscalationStep, *, now: datetime
    ) -> bool:
        """Record that the step was walked; false when it had been (nothing changes then)."""
        ...

    async def link_escalation_notification(
        self, alarm_id: int, organisation_id: int, step_no: int, notification_id: int
    ) -> None: ...

    async def lock_email_planning(self) -> bool:
        """Whether this transaction holds the planner's lock (false: another planner holds it right now)."""
        ...

    async def email_cursor(self) -> int | None:
        """The position up to which notifications were planned; ``None`` before the first plan."""
        ...

    async def set_email_cursor(self, position: int) -> None: ...

    async def newest_notification_position(self) -> int:
        """The highest position of any committed notification (0 for none)."""
        ...

    async def notifications_in_commit_order(self, *, after: int, limit: int) -> list[Notification]: ...

    async def get_notification(self, notification_id: int) -> Notification | None: ...

    async def notifications_of_digest(self, digest_id: int) -> list[Notification]:
        """The notifications a digest email carries, in commit order."""
        ...

    async def insert_email(
        self,
        *,
        user_id: int,
        address: str,
        notification_id: int,
        status: EmailStatus,
        send_at: datetime | None,
        held_until: datetime | None,
        now: datetime,
    ) -> int | None:
        """One email of a notification to an address; ``None`` when that pair has one already (never twice)."""
        ...

    async def open_digest(
        self, *, user_id: int, address: str, digest_on: date, since: datetime | None, now: datetime
    ) -> int | None:
        """A digest of the user for their local day ``digest_on`` that takes every notification waiting for one
        (what happened after ``since``, the previous digest); ``None`` when the day has its digest already."""
        ...

    async def waiting_for_digest(self, user_id: int) -> int: ...

    async def release_waiting_digest(self, user_id: int, *, now: datetime) -> None:
        """Send what waits for the user's digest one by one (the user chose immediate emails)."""
        ...

    async def last_digest_at(self, user_id: int) -> datetime | None:
        """When the user's latest digest was made (or found nothing to tell)."""
        ...

    async def digest_since(self, email_id: int) -> datetime | None:
        """What a digest email tells happened after: the digest before it (``None``: the first)."""
        ...

    async def take_due_emails(self, *, now: datetime, lease_until: datetime, worker: str, limit: int) -> list[DueEmail]:
        """Pending emails due by ``now``, each leased to the caller until ``lease_until`` for one more attempt,
        logged as started. Takers in other transactions wait, then see the leases: no attempt is taken twice."""
        ...

    async def settle_email(
        self,
        email_id: int,
        attempt: int,
        *,
        status: EmailStatus,
        next_attempt_at: datetime | None,
        reply_code: int | None,
        reply: str | None,
        error: str | None,
        duration_ms: float,
        sent_at: datetime | None,
    ) -> None:
        """Log the outcome of ``attempt`` and, unless a later attempt has begun since, settle the email."""
        ...

    async def emails_of_organisation(self, organisation_id: int, *, limit: int = 50) -> list[EmailDelivery]:
        """The emails to the organisation's users, newest first, each with its attempts."""
        ...

    async def emails_of_user(self, user_id: int, *, limit: int = 50) -> list[EmailDelivery]:
        """The emails to one user, newest first (attempts not included)."""
        ...


def _clock_text(value: time | None) -> str | None:
    return None if value is None else value.strftime("%H:%M")


def _clock(value: str | None) -> time | None:
    return None if value is None else time.fromisoformat(value)


class EmailsSql(SqlBase):
    """:class:`EmailRecords` in SQL."""

    def _preferences(self, row: Any, kinds: list[NotificationKind]) -> EmailPreferences:
        start, end = _clock(row["quiet_start"]), _clock(row["quiet_end"])
        return EmailPreferences(
            user_id=row["user_id"],
            kinds=kinds,
            shipments=row["shipments"],
            cadence=row["cadence"],
            digest_hour=row["digest_hour"],
            time_zone=row["time_zone"],
            quiet_hours=None if start is None or end is None else QuietHours(start=start, end=end),
            updated_at=self._time_out(row["updated_at"]),
        )

    async def notification_preferences(self, user_id: int) -> EmailPreferences | None:
        row = await self._q.get_preferences(self._conn, user_id=user_id)
        if row is None:
            return None
        kinds = [r["kind"] async for r in self._q.preference_kinds(self._conn, user_id=user_id)]
        return self._preferences(row, kinds)

    async def save_notification_preferences(self, preferences: EmailPreferences, *, now: datetime) -> None:
        quiet = preferences.quiet_hours
        await self._q.upsert_preferences(
            self._conn,
            user_id=preferences.user_id,
            shipments=preferences.shipments,
            cadence=preferences.cadence,
            digest_hour=preferences.digest_hour,
            time_zone=preferences.time_zone,
            quiet_start=_clock_text(None if quiet is None else quiet.start),
            quiet_end=_clock_text(None if quiet is None else quiet.end),
            updated_at=self._time_in(now),
        )
        await self._q.delete_preference_kinds(self._conn, user_id=preferences.user_id)
        for kind in sorted(set(preferences.kinds)):
            await self._q.insert_preference_kind(self._conn, user_id=preferences.user_id, kind=kind)

    async def preferences_of_organisation(self, organisation_id: int) -> dict[int, EmailPreferences]:
        kinds: dict[int, list[NotificationKind]] = {}
        async for row in self._q.preference_kinds_of_organisation(self._conn, organisation_id=organisation_id):
            kinds.setdefault(row["user_id"], []).append(row["kind"])
        return {
            row["user_id"]: self._preferences(row, kinds.get(row["user_id"], []))
            async for row in self._q.preferences_of_organisation(self._conn, organisation_id=organisation_id)
        }

    async def digest_candidates(self) -> list[tuple[int, date | None]]:
        return [
            (row["user_id"], None if row["last_digest_on"] is None else self._date_out(row["last_digest_on"]))
            async for row in self._q.digest_candidates(self._conn)
        ]

    async def mark_digest_day(self, user_id: int, day: date, *, now: datetime) -> bool:
        row = await self._q.mark_digest_day(self._conn, user_id=user_id, day=self._date_in(day), now=self._time_in(now))
        return row is not None

    async def follow_shipment(self, user_id: int, shipment_id: int, *, now: datetime) -> bool:
        row = await self._q.insert_follow(
            self._conn, user_id=user_id, shipment_id=shipment_id, followed_at=self._time_in(now)
        )
        return row is not None

    async def unfollow_shipment(self, user_id: int, shipment_id: int) -> bool:
        row = await self._q.delete_follow(self._conn, user_id=user_id, shipment_id=shipment_id)
        return row is not None

    async def followed_shipments(self, user_id: int) -> list[int]:
        return [row["shipment_id"] async for row in self._q.followed_shipments(self._conn, user_id=user_id)]

    async def followers(self, shipment_id: int) -> set[int]:
        return {row["user_id"] async for row in self._q.followers_of_shipment(self._conn, shipment_id=shipment_id)}

    async def escalation_chain(self, organisation_id: int) -> EscalationChain:
        row = await self._q.get_chain(self._conn, organisation_id=organisation_id)
        steps = [
            EscalationStep(step_no=r["step_no"], user_id=r["user_id"], delay_min=r["delay_min"])
            async for r in self._q.chain_steps(self._conn, organisation_id=organisation_id)
        ]
        return EscalationChain(
            organisation_id=organisation_id,
            steps=steps,
            saved_at=None if row is None else self._time_out(row["saved_at"]),
            saved_by=None if row is None else row["saved_by"],
        )

    async def save_escalation_chain(
        self, organisation_id: int, steps: Sequence[EscalationStep], *, by: str, now: datetime
    ) -> None:
        await self._q.upsert_chain(
            self._conn, organisation_id=organisation_id, saved_at=self._time_in(now), saved_by=by
        )
        await self._q.delete_chain_steps(self._conn, organisation_id=organisation_id)
        for step in steps:
            await self._q.insert_chain_step(
                self._conn,
                organisation_id=organisation_id,
                step_no=step.step_no,
                user_id=step.user_id,
                delay_min=step.delay_min,
            )

    async def organisations_with_chains(self) -> list[int]:
        return [row["organisation_id"] async for row in self._q.organisations_with_chains(self._conn)]

    async def open_alarms_of_party(self, party: int, *, since: datetime) -> list[OpenAlarm]:
        return [
            OpenAlarm(
                alarm_id=row["id"], shipment_id=row["shipment_id"], detected_at=self._time_out(row["detected_at"])
            )
            async for row in self._q.open_alarms_of_party(self._conn, party=party, since=self._time_in(since))
        ]

    async def escalation_notices(self, alarm_id: int) -> list[EscalationNotice]:
        return [
            EscalationNotice(
                alarm_id=row["alarm_id"],
                organisation_id=row["organisation_id"],
                step_no=row["step_no"],
                user_id=row["user_id"],
                delay_min=row["delay_min"],
                notified_at=self._time_out(row["notified_at"]),
                notification_id=row["notification_id"],
            )
            async for row in self._q.escalation_notices_of_alarm(self._conn, alarm_id=alarm_id)
        ]

    async def record_escalation_notice(
        self, alarm_id: int, organisation_id: int, step: EscalationStep, *, now: datetime
    ) -> bool:
        row = await self._q.insert_escalation_notice(
            self._conn,
            alarm_id=alarm_id,
            organisation_id=organisation_id,
            step_no=step.step_no,
            user_id=step.user_id,
            delay_min=step.delay_min,
            notified_at=self._time_in(now),
        )
        return row is not None

    async def link_escalation_notification(
        self, alarm_id: int, organisation_id: int, step_no: int, notification_id: int
    ) -> None:
        await self._q.set_escalation_notification(
            self._conn,
            alarm_id=alarm_id,
            organisation_id=organisation_id,
            step_no=step_no,
            notification_id=notification_id,
        )

    async def lock_email_planning(self) -> bool:
        return await self._try_lock("email-planning")

    async def email_cursor(self) -> int | None:
        position: int | None = await self._q.get_email_cursor(self._conn)
        return position

    async def set_email_cursor(self, position: int) -> None:
        await self._q.set_email_cursor(self._conn, position=position)

    async def newest_notification_position(self) -> int:
        position: int = await self._q.max_notification_position(self._conn)
        return int(position)

    def _email_notification(self, row: Any) -> Notification:
        return Notification(
            id=row["id"],
            organisation_id=row["organisation_id"],
            kind=row["kind"],
            shipment_id=row["shipment_id"],
            subject=row["subject"],
            payload=msgspec.json.decode(row["payload"]),
            created_at=self._time_out(row["created_at"]),
            position=row["position"],
        )

    async def notifications_in_commit_order(self, *, after: int, limit: int) -> list[Notification]:
        rows = self._q.notifications_in_commit_order(self._conn, after_position=after, limit=limit)
        return [self._email_notification(row) async for row in rows]

    async def get_notification(self, notification_id: int) -> Notification | None:
        row = await self._q.get_notification(self._conn, id=notification_id)
        return None if row is None else self._email_notification(row)

    async def notifications_of_digest(self, digest_id: int) -> list[Notification]:
        rows = self._q.notifications_of_digest(self._conn, digest_id=digest_id)
        return [self._email_notification(row) async for row in rows]

    async def insert_email(
        self,
        *,
        user_id: int,
        address: str,
        notification_id: int,
        status: EmailStatus,
        send_at: datetime | None,
        held_until: datetime | None,
        now: datetime,
    ) -> int | None:
        row = await self._q.insert_email(
            self._conn,
            user_id=user_id,
            address=address,
            notification_id=notification_id,
            status=status,
            next_attempt_at=None if send_at is None else self._time_in(send_at),
            held_until=None if held_until is None else self._time_in(held_until),
            created_at=self._time_in(now),
        )
        return None if row is None else int(row["id"])

    async def open_digest(
        self, *, user_id: int, address: str, digest_on: date, since: datetime | None, now: datetime
    ) -> int | None:
        row = await self._q.insert_digest(
            self._conn,
            user_id=user_id,
            address=address,
            digest_on=self._date_in(digest_on),
            digest_since=None if since is None else self._time_in(since),
            created_at=self._time_in(now),
        )
        if row is None:
            return None
        digest_id = int(row["id"])
        await self._q.gather_into_digest(self._conn, user_id=user_id, digest_id=digest_id)
        return digest_id

    async def waiting_for_digest(self, user_id: int) -> int:
        count: int = await self._q.waiting_for_digest(self._conn, user_id=user_id)
        return int(count)

    async def release_waiting_digest(self, user_id: int, *, now: datetime) -> None:
        await self._q.release_waiting_digest(self._conn, user_id=user_id, now=self._time_in(now))

    async def last_digest_at(self, user_id: int) -> datetime | None:
        value = await self._q.last_digest_at(self._conn, user_id=user_id)
        return None if value is None else self._time_out(value)

    async def digest_since(self, email_id: int) -> datetime | None:
        value = await self._q.digest_since(self._conn, id=email_id)
        return None if value is None else self._time_out(value)

    async def take_due_emails(self, *, now: datetime, lease_until: datetime, worker: str, limit: int) -> list[DueEmail]:
        # Takers queue on this lock; each sees the leases of those before it, so none takes an attempt twice.
        await self._lock("emails")
        rows = [row async for row in self._q.due_emails(self._conn, now=self._time_in(now), limit=limit)]
        taken = []
        for row in rows:
            attempt = row["attempts"] + 1
            await self._q.lease_email(
                self._conn, id=row["id"], attempts=attempt, lease_until=self._time_in(lease_until)
            )
            await self._q.insert_email_attempt(
                self._conn, email_id=row["id"], attempt=attempt, started_at=self._time_in(now), worker=worker
            )
            if row["notification_id"] is not None:
                found = await self.get_notification(row["notification_id"])
                notifications = [] if found is None else [found]
            else:
                notifications = await self.notifications_of_digest(row["id"])
            taken.append(
                DueEmail(
                    id=row["id"],
                    attempt=attempt,
                    user_id=row["user_id"],
                    address=row["address"],
                    notifications=notifications,
                    digest_on=None if row["digest_on"] is None else self._date_out(row["digest_on"]),
                    created_at=self._time_out(row["created_at"]),
                )
            )
        return taken

    async def settle_email(
        self,
        email_id: int,
        attempt: int,
        *,
        status: EmailStatus,
        next_attempt_at: datetime | None,
        reply_code: int | None,
        reply: str | None,
        error: str | None,
        duration_ms: float,
        sent_at: datetime | None,
    ) -> None:
        await self._q.finish_email_attempt(
            self._conn, email_id=email_id, attempt=attempt, duration_ms=duration_ms, reply_code=reply_code, error=error
        )
        await self._q.settle_email(
            self._conn,
            id=email_id,
            attempts=attempt,
            status=status,
            next_attempt_at=None if next_attempt_at is None else self._time_in(next_attempt_at),
            last_reply=reply,
            last_error=error,
            sent_at=None if sent_at is None else self._time_in(sent_at),
        )

    def _delivery(self, row: Any, log: list[EmailAttempt]) -> EmailDelivery:
        return EmailDelivery(
            id=row["id"],
            user_id=row["user_id"],
            address=row["address"],
            notification_id=row["notification_id"],
            kind=row["kind"],
            digest_on=None if row["digest_on"] is None else self._date_out(row["digest_on"]),
            digest_id=row["digest_id"],
            status=row["status"],
            held_until=self._maybe(row["held_until"]),
            attempts=row["attempts"],
            next_attempt_at=self._maybe(row["next_attempt_at"]),
            last_reply=row["last_reply"],
            last_error=row["last_error"],
            sent_at=self._maybe(row["sent_at"]),
            created_at=self._time_out(row["created_at"]),
            log=log,
        )

    def _maybe(self, value: Any) -> datetime | None:
        return None if value is None else self._time_out(value)

    async def emails_of_organisation(self, organisation_id: int, *, limit: int = 50) -> list[EmailDelivery]:
        rows = [
            row
            async for row in self._q.emails_of_organisation(self._conn, organisation_id=organisation_id, limit=limit)
        ]
        if not rows:
            return []
        logs: dict[int, list[EmailAttempt]] = {row["id"]: [] for row in rows}
        attempts = self._q.attempts_of_emails(
            self._conn, from_id=rows[-1]["id"], to_id=rows[0]["id"], organisation_id=organisation_id
        )
        async for a in attempts:
            if a["email_id"] in logs:
                logs[a["email_id"]].append(
                    EmailAttempt(
                        attempt=a["attempt"],
                        started_at=self._time_out(a["started_at"]),
                        worker=a["worker"],
                        duration_ms=a["duration_ms"],
                        reply_code=a["reply_code"],
                        error=a["error"],
                    )
                )
        return [self._delivery(row, logs[row["id"]]) for row in rows]

    async def emails_of_user(self, user_id: int, *, limit: int = 50) -> list[EmailDelivery]:
        return [
            self._delivery(row, []) async for row in self._q.emails_of_user(self._conn, user_id=user_id, limit=limit)
        ]
