"""Use case: notice trackers that went silent on duty.

A tracker on duty (an open assignment to a shipment not yet arrived) is expected to sync; one that has not for
longer than the allowed silence is reported once per silence, as a ``tracker.silent`` notification to the
tracker's organisation and to the shipment's owner. The silence is named by the time it began (the last sync,
or the start of the assignment when the tracker has not synced since), and recorded: repeating the job, or
running it in two processes, reports it once. A sync ends the silence; the next one is reported again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from coldchain.domain.notifications import TrackerOnDuty
from coldchain.storage import Store

__all__ = ["notice_silent_trackers", "silent_since"]


def silent_since(duty: TrackerOnDuty) -> datetime:
    """When the tracker's current silence began: its last sync, but not before the assignment started."""
    if duty.last_sync_at is None:
        return duty.assigned_since
    return max(duty.last_sync_at, duty.assigned_since)


async def notice_silent_trackers(store: Store, *, now: datetime, after: timedelta) -> list[int]:
    """Report every tracker on duty silent for longer than ``after`` and not yet reported for this silence;
    returns the notification ids published."""
    published: list[int] = []
    async with store.transaction() as tx:
        for duty in await tx.trackers_on_duty(now):
            since = silent_since(duty)
            if now - since <= after or not await tx.mark_silence(duty.tracker_id, since, now=now):
                continue
            recipients = {duty.shipment_owner_id}
            if duty.organisation_id is not None:
                recipients.add(duty.organisation_id)
            published += await tx.publish(
                "tracker.silent",
                organisation_ids=recipients,
                subject=f"tracker:{duty.serial}",
                payload={
                    "tracker": duty.serial,
                    "shipment_id": duty.shipment_id,
                    "silent_since": since.isoformat(),
                    "last_sync_at": None if duty.last_sync_at is None else duty.last_sync_at.isoformat(),
                    "silent_s": round((now - since).total_seconds()),
                },
                now=now,
                shipment_id=duty.shipment_id,
            )
    return published
