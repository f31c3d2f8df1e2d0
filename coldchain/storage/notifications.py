"""Records of notifications and what reads them: an outbox of events per recipient organisation, written in the
same transaction as the change it reports; the webhooks that subscribe to it and their delivery log; the runs of
the background jobs; the silences of trackers on duty.

Two orders matter. A notification's ``id`` is given at insert; its ``position`` when its transaction commits, in
commit order (``0008_webhooks_jobs.sql``), so a reader that resumes after position N misses nothing that committed
before it. Webhook deliveries are made by :meth:`NotificationsSql.publish_all` itself, in the publishing
transaction: the notifications of a whole batch of notices in one statement, their deliveries set-based from them
(one statement on PostgreSQL, two on SQLite), however many notices and recipients.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import msgspec

from coldchain.domain.canonical import canonical_text
from coldchain.domain.notifications import (
    NOTIFICATION_KINDS,
    DeliveryStatus,
    DueDelivery,
    JobRun,
    Notice,
    Notification,
    NotificationKind,
    TrackerOnDuty,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from coldchain.storage._sqlbase import SqlBase

__all__ = [
    "NOTIFICATION_KINDS",
    "DeliveryStatus",
    "DueDelivery",
    "JobRun",
    "Notice",
    "Notification",
    "NotificationKind",
    "NotificationRecords",
    "NotificationsSql",
    "TrackerOnDuty",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]

_JOB_RUNS_KEPT = timedelta(days=7)


class NotificationRecords(Protocol):
    """What a transaction offers for notifications, webhooks, job runs and tracker silences."""

    async def publish(
        self,
        kind: NotificationKind,
        *,
        organisation_ids: Iterable[int],
        subject: str,
        payload: dict[str, Any],
        now: datetime,
        shipment_id: int | None = None,
    ) -> list[int]:
        """Record one notification per recipient organisation (duplicates ignored), and one delivery per webhook of
        the organisation subscribed to ``kind``; returns the notifications' ids."""
        ...

    async def publish_all(self, kind: NotificationKind, notices: Sequence[Notice], *, now: datetime) -> list[int]:
        """:meth:`publish` for many notices of one kind at once (an ingest batch's alarms): their notifications,
        notice by notice and recipient by recipient in id order, and their deliveries, in a constant number of
        statements; returns the notifications' ids."""
        ...

    async def notifications(self, organisation_id: int, *, after_id: int = 0, limit: int = 100) -> list[Notification]:
        """An organisation's notifications with ids above ``after_id``, oldest first."""
        ...

    async def notifications_after_position(
        self, organisation_id: int, *, after: int, limit: int = 100
    ) -> list[Notification]:
        """An organisation's committed notifications with positions above ``after``, in commit order."""
        ...

    async def last_notification_position(self, organisation_id: int) -> int:
        """The highest position among the organisation's committed notifications (0 for none)."""
        ...

    async def create_webhook(
        self, *, organisation_id: int, url: str, kinds: Sequence[NotificationKind], secret: str, now: datetime
    ) -> Webhook: ...

    async def webhooks(self, organisation_id: int) -> list[Webhook]:
        """The organisation's webhooks that are not deleted, by id."""
        ...

    async def get_webhook(self, webhook_id: int) -> Webhook | None:
        """The webhook, unless it does not exist or was deleted."""
        ...

    async def delete_webhook(self, webhook_id: int, *, now: datetime) -> Webhook | None:
        """Mark the webhook deleted and fail its pending deliveries; ``None`` if there is no such live webhook."""
        ...

    async def take_due_deliveries(
        self, *, now: datetime, lease_until: datetime, worker: str, limit: int
    ) -> list[DueDelivery]:
        """Pending deliveries due by ``now``, each leased to the caller until ``lease_until`` for one more attempt,
        which is logged as started. Takers in other transactions wait, then see the leases: no attempt is taken
        twice."""
        ...

    async def settle_delivery(
        self,
        delivery_id: int,
        attempt: int,
        *,
        status: DeliveryStatus,
        next_attempt_at: datetime | None,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        delivered_at: datetime | None,
    ) -> None:
        """Log the outcome of ``attempt`` and, unless a later attempt has begun since, settle the delivery."""
        ...

    async def deliveries(self, webhook_id: int, *, limit: int = 50) -> list[WebhookDelivery]:
        """The webhook's deliveries, newest first, each with its attempts."""
        ...

    async def claim_job_run(self, job: str, tick: datetime, *, worker: str, now: datetime) -> bool:
        """Whether this transaction claimed ``(job, tick)``: false when another transaction holds the job's lock
        right now or the tick was claimed before. Claimed runs older than a week are forgotten."""
        ...

    async def finish_job_run(self, job: str, tick: datetime, *, now: datetime, error: str | None) -> None: ...

    async def job_runs(self, job: str | None = None) -> list[JobRun]:
        """Recorded runs (of one job, or of all), by tick."""
        ...

    async def trackers_on_duty(self, at: datetime) -> list[TrackerOnDuty]: ...

    async def mark_silence(self, tracker_id: int, silent_since: datetime, *, now: datetime) -> bool:
        """Record that the tracker has been silent since ``silent_since``; false if that was recorded before."""
        ...


class NotificationsSql(SqlBase):
    """:class:`NotificationRecords` in SQL."""

    @abc.abstractmethod
    async def _insert_notifications(
        self, rows: Sequence[tuple[int, str, int | None, str, str]], *, created_at: datetime
    ) -> list[int]:
        """Insert ``(organisation_id, kind, shipment_id, subject, payload)`` rows in that order, and for each one
        delivery per live webhook of its organisation subscribed to its kind; the notifications' ids in order."""

    async def publish(
        self,
        kind: NotificationKind,
        *,
        organisation_ids: Iterable[int],
        subject: str,
        payload: dict[str, Any],
        now: datetime,
        shipment_id: int | None = None,
    ) -> list[int]:
        notice = Notice(
            organisation_ids=tuple(organisation_ids), subject=subject, payload=payload, shipment_id=shipment_id
        )
        return await self.publish_all(kind, [notice], now=now)

    async def publish_all(self, kind: NotificationKind, notices: Sequence[Notice], *, now: datetime) -> list[int]:
        rows = [
            (organisation_id, kind, notice.shipment_id, notice.subject, text)
            for notice in notices
            for text in (canonical_text(notice.payload),)
            for organisation_id in sorted(set(notice.organisation_ids))
        ]
        if not rows:
            return []
        return await self._insert_notifications(rows, created_at=now)

    def _notification(self, row: Any, id_column: str = "id") -> Notification:
        return Notification(
            id=row[id_column],
            organisation_id=row["organisation_id"],
            kind=row["kind"],
            shipment_id=row["shipment_id"],
            subject=row["subject"],
            payload=msgspec.json.decode(row["payload"]),
            created_at=self._time_out(row["created_at"]),
            position=row["position"],
        )

    async def notifications(self, organisation_id: int, *, after_id: int = 0, limit: int = 100) -> list[Notification]:
        rows = self._q.notifications_after(self._conn, organisation_id=organisation_id, after_id=after_id, limit=limit)
        return [self._notification(row) async for row in rows]

    async def notifications_after_position(
        self, organisation_id: int, *, after: int, limit: int = 100
    ) -> list[Notification]:
        rows = self._q.notifications_after_position(
            self._conn, organisation_id=organisation_id, after_position=after, limit=limit
        )
        return [self._notification(row) async for row in rows]

    async def last_notification_position(self, organisation_id: int) -> int:
        position: int = await self._q.last_notification_position(self._conn, organisation_id=organisation_id)
        return position

    async def _webhook(self, row: Any) -> Webhook:
        kinds = [kind["kind"] async for kind in self._q.webhook_kinds(self._conn, webhook_id=row["id"])]
        return Webhook(
            id=row["id"],
            organisation_id=row["organisation_id"],
            url=row["url"],
            kinds=kinds,
            secret=row["secret"],
            created_at=self._time_out(row["created_at"]),
            deleted_at=None if row["deleted_at"] is None else self._time_out(row["deleted_at"]),
        )

    async def create_webhook(
        self, *, organisation_id: int, url: str, kinds: Sequence[NotificationKind], secret: str, now: datetime
    ) -> Webhook:
        row = await self._q.insert_webhook(
            self._conn, organisation_id=organisation_id, url=url, secret=secret, created_at=self._time_in(now)
        )
        for kind in kinds:
            await self._q.insert_webhook_kind(self._conn, webhook_id=row["id"], kind=kind)
        return await self._webhook(row)

    async def webhooks(self, organisation_id: int) -> list[Webhook]:
        rows = [row async for row in self._q.webhooks_of_organisation(self._conn, organisation_id=organisation_id)]
        return [await self._webhook(row) for row in rows]

    async def get_webhook(self, webhook_id: int) -> Webhook | None:
        row = await self._q.get_webhook(self._conn, id=webhook_id)
        return None if row is None else await self._webhook(row)

    async def delete_webhook(self, webhook_id: int, *, now: datetime) -> Webhook | None:
        row = await self._q.delete_webhook(self._conn, id=webhook_id, deleted_at=self._time_in(now))
        if row is None:
            return None
        await self._q.abandon_deliveries_of_webhook(self._conn, webhook_id=webhook_id, error="the webhook was deleted")
        return await self._webhook(row)

    async def take_due_deliveries(
        self, *, now: datetime, lease_until: datetime, worker: str, limit: int
    ) -> list[DueDelivery]:
        # Takers queue on this lock; each sees the leases of those before it, so none takes an attempt twice.
        await self._lock("webhook-deliveries")
        rows = [row async for row in self._q.due_deliveries(self._conn, now=self._time_in(now), limit=limit)]
        taken = []
        for row in rows:
            attempt = row["attempts"] + 1
            await self._q.lease_delivery(
                self._conn, id=row["id"], attempts=attempt, lease_until=self._time_in(lease_until)
            )
            await self._q.insert_webhook_attempt(
                self._conn, delivery_id=row["id"], attempt=attempt, started_at=self._time_in(now), worker=worker
            )
            notification = self._notification(row, id_column="notification_id")
            taken.append(
                DueDelivery(
                    id=row["id"], attempt=attempt, url=row["url"], secret=row["secret"], notification=notification
                )
            )
        return taken

    async def settle_delivery(
        self,
        delivery_id: int,
        attempt: int,
        *,
        status: DeliveryStatus,
        next_attempt_at: datetime | None,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        delivered_at: datetime | None,
    ) -> None:
        await self._q.finish_webhook_attempt(
            self._conn,
            delivery_id=delivery_id,
            attempt=attempt,
            duration_ms=duration_ms,
            status_code=status_code,
            error=error,
        )
        await self._q.settle_delivery(
            self._conn,
            id=delivery_id,
            attempts=attempt,
            status=status,
            next_attempt_at=None if next_attempt_at is None else self._time_in(next_attempt_at),
            last_status_code=status_code,
            last_error=error,
            delivered_at=None if delivered_at is None else self._time_in(delivered_at),
        )

    async def deliveries(self, webhook_id: int, *, limit: int = 50) -> list[WebhookDelivery]:
        rows = [row async for row in self._q.deliveries_of_webhook(self._conn, webhook_id=webhook_id, limit=limit)]
        if not rows:
            return []
        logs: dict[int, list[WebhookAttempt]] = {row["id"]: [] for row in rows}
        attempts = self._q.attempts_of_webhook(self._conn, webhook_id=webhook_id, from_delivery_id=rows[-1]["id"])
        async for a in attempts:
            logs[a["delivery_id"]].append(
                WebhookAttempt(
                    attempt=a["attempt"],
                    started_at=self._time_out(a["started_at"]),
                    worker=a["worker"],
                    duration_ms=a["duration_ms"],
                    status_code=a["status_code"],
                    error=a["error"],
                )
            )
        return [
            WebhookDelivery(
                id=row["id"],
                webhook_id=row["webhook_id"],
                notification_id=row["notification_id"],
                kind=row["kind"],
                status=row["status"],
                attempts=row["attempts"],
                next_attempt_at=self._maybe_time(row["next_attempt_at"]),
                last_status_code=row["last_status_code"],
                last_error=row["last_error"],
                delivered_at=self._maybe_time(row["delivered_at"]),
                created_at=self._time_out(row["created_at"]),
                log=logs[row["id"]],
            )
            for row in rows
        ]

    def _maybe_time(self, value: Any) -> datetime | None:
        return None if value is None else self._time_out(value)

    async def claim_job_run(self, job: str, tick: datetime, *, worker: str, now: datetime) -> bool:
        # The lock spares a losing process the wait on the winner's uncommitted row; the key decides.
        if not await self._try_lock(f"job:{job}"):
            return False
        row = await self._q.insert_job_run(
            self._conn, job=job, tick=self._time_in(tick), worker=worker, started_at=self._time_in(now)
        )
        if row is None:
            return False
        await self._q.forget_job_runs(self._conn, job=job, before=self._time_in(tick - _JOB_RUNS_KEPT))
        return True

    async def finish_job_run(self, job: str, tick: datetime, *, now: datetime, error: str | None) -> None:
        await self._q.finish_job_run(
            self._conn, job=job, tick=self._time_in(tick), finished_at=self._time_in(now), error=error
        )

    async def job_runs(self, job: str | None = None) -> list[JobRun]:
        return [
            JobRun(
                job=row["job"],
                tick=self._time_out(row["tick"]),
                worker=row["worker"],
                started_at=self._time_out(row["started_at"]),
                finished_at=self._maybe_time(row["finished_at"]),
                error=row["error"],
            )
            async for row in self._q.job_runs(self._conn, job=job)
        ]

    async def trackers_on_duty(self, at: datetime) -> list[TrackerOnDuty]:
        return [
            TrackerOnDuty(
                tracker_id=row["tracker_id"],
                serial=row["serial"],
                organisation_id=row["organisation_id"],
                shipment_id=row["shipment_id"],
                shipment_owner_id=row["shipment_owner_id"],
                assigned_since=self._time_out(row["starts_at"]),
                last_sync_at=self._maybe_time(row["last_sync_at"]),
            )
            async for row in self._q.trackers_on_duty(self._conn, at=self._time_in(at))
        ]

    async def mark_silence(self, tracker_id: int, silent_since: datetime, *, now: datetime) -> bool:
        row = await self._q.insert_tracker_silence(
            self._conn, tracker_id=tracker_id, silent_since=self._time_in(silent_since), noticed_at=self._time_in(now)
        )
        return row is not None
