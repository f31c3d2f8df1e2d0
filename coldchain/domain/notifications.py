"""Notification records: an outbox event per recipient organisation, the webhooks that subscribe to it and their
delivery log, the runs of the background jobs, and the trackers on duty (whose silence is an event).

Records only: the storage keeps them (:mod:`coldchain.storage.notifications`), the services decide when they are
written and delivered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

import msgspec

__all__ = [
    "NOTIFICATION_KINDS",
    "DeliveryStatus",
    "DueDelivery",
    "JobRun",
    "Notice",
    "Notification",
    "NotificationKind",
    "TrackerOnDuty",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
]

NotificationKind = Literal[
    "alarm.raised",
    "alarm.acknowledged",
    "alarm.escalated",
    "alarm.escalation_step",
    "custody.recorded",
    "eta.at_risk",
    "tracker.silent",
    "audit.broken",
    "custody.broken",
    "decision.needed",
]
NOTIFICATION_KINDS: tuple[NotificationKind, ...] = get_args(NotificationKind)

DeliveryStatus = Literal["pending", "delivered", "failed"]


class Notice(msgspec.Struct, frozen=True, kw_only=True):
    """One thing to tell, before it is stored: a notification of it to each of ``organisation_ids``."""

    organisation_ids: tuple[int, ...]
    subject: str
    payload: dict[str, Any]
    shipment_id: int | None = None


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    kind: NotificationKind
    shipment_id: int | None
    subject: str
    payload: dict[str, Any]
    created_at: datetime
    position: int | None = None
    """Its place in commit order; ``None`` until its transaction commits (PostgreSQL)."""


class Webhook(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    url: str
    kinds: list[NotificationKind]
    secret: str
    created_at: datetime
    deleted_at: datetime | None


class WebhookAttempt(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    started_at: datetime
    worker: str
    duration_ms: float | None
    """``None``: the attempt never reported back (its process stopped while sending)."""
    status_code: int | None
    error: str | None


class WebhookDelivery(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    webhook_id: int
    notification_id: int
    kind: NotificationKind
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    log: list[WebhookAttempt]


class DueDelivery(msgspec.Struct, frozen=True, kw_only=True):
    """A delivery taken for one attempt: where to send what, and the number of this attempt."""

    id: int
    attempt: int
    url: str
    secret: str
    notification: Notification


class JobRun(msgspec.Struct, frozen=True, kw_only=True):
    job: str
    tick: datetime
    worker: str
    started_at: datetime
    finished_at: datetime | None
    error: str | None


class TrackerOnDuty(msgspec.Struct, frozen=True, kw_only=True):
    """A tracker with an open assignment to a shipment that has not arrived yet."""

    tracker_id: int
    serial: str
    organisation_id: int | None
    shipment_id: int
    shipment_owner_id: int
    assigned_since: datetime
    last_sync_at: datetime | None
