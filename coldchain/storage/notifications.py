"""Records of notifications: an outbox of events per recipient organisation, read by webhook delivery and by the
live event stream, written in the same transaction as the change it reports."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal, Protocol

import msgspec

from coldchain.storage._sqlbase import SqlBase

__all__ = ["Notification", "NotificationKind", "NotificationRecords", "NotificationsSql"]

NotificationKind = Literal[
    "alarm.raised", "alarm.acknowledged", "alarm.escalated", "custody.recorded", "eta.at_risk", "tracker.silent"
]

_json = msgspec.json.Encoder(order="sorted")


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    kind: NotificationKind
    shipment_id: int | None
    subject: str
    payload: dict[str, Any]
    created_at: datetime


class NotificationRecords(Protocol):
    """What a transaction offers for notifications."""

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
        """Record one notification per recipient organisation (duplicates ignored); returns their ids."""
        ...

    async def notifications(self, organisation_id: int, *, after_id: int = 0, limit: int = 100) -> list[Notification]:
        """An organisation's notifications with ids above ``after_id``, oldest first."""
        ...


class NotificationsSql(SqlBase):
    """:class:`NotificationRecords` in SQL."""

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
        text = _json.encode(payload).decode()
        ids = []
        for organisation_id in sorted(set(organisation_ids)):
            ids.append(
                await self._q.insert_notification(
                    self._conn,
                    organisation_id=organisation_id,
                    kind=kind,
                    shipment_id=shipment_id,
                    subject=subject,
                    payload=text,
                    created_at=self._time_in(now),
                )
            )
        return ids

    async def notifications(self, organisation_id: int, *, after_id: int = 0, limit: int = 100) -> list[Notification]:
        rows = self._q.notifications_after(self._conn, organisation_id=organisation_id, after_id=after_id, limit=limit)
        return [
            Notification(
                id=row["id"],
                organisation_id=row["organisation_id"],
                kind=row["kind"],
                shipment_id=row["shipment_id"],
                subject=row["subject"],
                payload=msgspec.json.decode(row["payload"]),
                created_at=self._time_out(row["created_at"]),
            )
            async for row in rows
        ]
