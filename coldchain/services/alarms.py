"""Use cases of alarms: raised during ingest, acknowledged by people, escalated when nobody does.

An alarm is one stored row per condition (its stable key): judging the same data again, after late readings or
a replay, finds the same row and never raises it twice; an alarm whose condition late data took back is marked
withdrawn, and comes back as the same row if later data restores it. Every alarm keeps the device time its
condition began and was met, and the service time it was first detected (which never changes).

Late detection: an alarm detected more than :data:`LATE_AFTER` after its condition was met (``met_at``, device
time) is marked ``late``: the data came from a tracker's buffer after an outage, so the alarm reports the past
and must not be presented as live. The condition's *met* time is the measure rather than its start: a
consecutive 10 h rule is met 10 h after its excursion began, and detecting it at that moment is on time.

Notifications go to every party of the shipment (shipper, carriers, receiver): ``alarm.raised``,
``alarm.acknowledged``, ``alarm.escalated``. The audit trail records every change made to a stored alarm
(acknowledged, escalated, withdrawn, restored); raising one is not entered there: the alarm's own row (with its
detection time, never changed) and the ``alarm.raised`` notification record it. The alarms one batch raises are
told together (:func:`record_alarms`: one publication for all of them).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.findings import StoredAlarm
from coldchain.domain.judgement import LATE_AFTER, is_late_detection
from coldchain.domain.notifications import Notice, NotificationKind
from coldchain.domain.rules import Alarm
from coldchain.domain.shipments import Shipment
from coldchain.services.access import require, visible_shipment
from coldchain.services.errors import Conflict, Invalid, NotFound
from coldchain.storage import Store, Transaction

__all__ = [
    "LATE_AFTER",
    "MAX_COMMENT_CHARS",
    "acknowledge_alarm",
    "escalate_unacknowledged",
    "is_late_detection",
    "record_alarm",
    "record_alarms",
    "withdraw_alarm",
]

MAX_COMMENT_CHARS = 2000

#: The audit trail's name for the service judging readings on its own.
EVALUATION_ACTOR = "coldchain:evaluation"


def alarm_payload(stored: StoredAlarm) -> dict[str, Any]:
    """What a notification about the alarm says (JSON-ready)."""
    alarm = stored.alarm
    fields: dict[str, Any] = msgspec.to_builtins(
        {
            "alarm_id": stored.id,
            "shipment_id": stored.shipment_id,
            "rule": alarm.rule,
            "action": alarm.action,
            "metric": alarm.metric,
            "direction": alarm.direction,
            "threshold": alarm.threshold,
            "mode": alarm.mode,
            "scope": alarm.scope,
            "delay_min": alarm.delay_min,
            "began_at": alarm.began_at,
            "met_at": alarm.met_at,
            "detected_at": stored.detected_at,
            "late": stored.late,
            "acknowledged_at": stored.acknowledged_at,
            "acknowledged_by": stored.acknowledged_by,
            "escalated_at": stored.escalated_at,
        }
    )
    return fields


async def _tell_parties(
    tx: Transaction, kind: NotificationKind, shipment: Shipment, stored: StoredAlarm, *, now: datetime
) -> None:
    await tx.publish(
        kind,
        organisation_ids=shipment.parties,
        subject=f"alarm:{stored.id}",
        payload=alarm_payload(stored),
        now=now,
        shipment_id=shipment.id,
    )


async def _audit(
    tx: Transaction, actor: str, action: str, stored: StoredAlarm, details: dict[str, Any], *, now: datetime
) -> None:
    detail = msgspec.json.encode({"shipment": stored.shipment_id, "rule": stored.alarm.rule, **details}).decode()
    await tx.append_audit(actor=actor, action=action, subject=f"alarm:{stored.id}", detail=detail, now=now)


async def record_alarm(
    tx: Transaction, shipment: Shipment, assignment_id: int, alarm: Alarm, *, now: datetime
) -> StoredAlarm:
    """Store an alarm the evaluation reported. A new condition is raised (stored, told to the parties); a
    condition already stored is the same alarm: never raised again, only brought up to date."""
    [stored] = await record_alarms(tx, shipment, [(assignment_id, alarm)], now=now)
    return stored


async def record_alarms(
    tx: Transaction, shipment: Shipment, found: Sequence[tuple[int, Alarm]], *, now: datetime
) -> list[StoredAlarm]:
    """:func:`record_alarm` for the alarms ``(assignment id, alarm)`` one batch of the shipment reported, in
    order: the new ones are stored in one statement and told to the parties together, in one publication; only
    one already stored takes statements of its own (a re-judged condition, brought up to date)."""
    raised = await tx.insert_alarms(
        shipment.id,
        [(assignment_id, alarm, is_late_detection(alarm, now)) for assignment_id, alarm in found],
        detected_at=now,
    )
    new = {(stored.assignment_id, stored.alarm.key): stored for stored in raised}
    recorded: list[StoredAlarm] = []
    for assignment_id, alarm in found:
        inserted = new.pop((assignment_id, alarm.key), None)
        if inserted is not None:
            recorded.append(inserted)
            continue
        stored = await tx.alarm_by_key(assignment_id, alarm.key)
        assert stored is not None  # the insert found it
        if stored.withdrawn_at is not None or stored.alarm.met_at != alarm.met_at:
            restored = await tx.restore_alarm(stored.id, alarm, now=now)
            if stored.withdrawn_at is not None:
                await _audit(tx, EVALUATION_ACTOR, "alarm.restored", restored, {"key": alarm.key}, now=now)
            stored = restored
        recorded.append(stored)
    if raised:
        notices = [
            Notice(
                organisation_ids=tuple(shipment.parties),
                subject=f"alarm:{stored.id}",
                payload=alarm_payload(stored),
                shipment_id=shipment.id,
            )
            for stored in raised
        ]
        await tx.publish_all("alarm.raised", notices, now=now)
    return recorded


async def withdraw_alarm(tx: Transaction, shipment: Shipment, assignment_id: int, key: str, *, now: datetime) -> None:
    """Late data took the alarm's condition back: mark it withdrawn (kept, never deleted)."""
    stored = await tx.withdraw_alarm(assignment_id, key, now=now)
    if stored is not None:
        await _audit(tx, EVALUATION_ACTOR, "alarm.withdrawn", stored, {"key": key}, now=now)


async def acknowledge_alarm(
    store: Store, principal: Principal, shipment_id: int, alarm_id: int, *, comment: str, now: datetime
) -> StoredAlarm:
    """Acknowledge an alarm of a shipment the caller takes part in, with a comment saying what was done.

    Once only: a second acknowledgement is a :class:`Conflict` and changes nothing, as is acknowledging an
    alarm that was withdrawn.
    """
    text = comment.strip()
    if not text:
        raise Invalid("comment: say what was done about the alarm")
    if len(text) > MAX_COMMENT_CHARS:
        raise Invalid(f"comment: at most {MAX_COMMENT_CHARS} characters")
    async with store.transaction() as tx:
        shipment = await visible_shipment(tx, principal, shipment_id)
        require(principal, "acknowledge")
        stored = await tx.get_alarm(alarm_id)
        if stored is None or stored.shipment_id != shipment_id:
            raise NotFound(f"shipment {shipment_id} has no alarm {alarm_id}")
        if stored.withdrawn_at is not None:
            raise Conflict(
                f"alarm {alarm_id} was withdrawn at {stored.withdrawn_at.isoformat()}: later data showed its"
                " condition was not met, so there is nothing to acknowledge"
            )
        acknowledged = await tx.acknowledge_alarm(alarm_id, by=principal.actor, comment=text, now=now)
        if acknowledged is None:
            assert stored.acknowledged_at is not None
            raise Conflict(
                f"alarm {alarm_id} was already acknowledged at {stored.acknowledged_at.isoformat()}"
                f" by {stored.acknowledged_by}"
            )
        await _audit(tx, principal.actor, "alarm.acknowledged", acknowledged, {"comment": text}, now=now)
        await _tell_parties(tx, "alarm.acknowledged", shipment, acknowledged, now=now)
    return acknowledged


async def escalate_unacknowledged(store: Store, *, now: datetime, after: timedelta) -> int:
    """Escalate every standing alarm detected more than ``after`` ago and still unacknowledged: marked once,
    told to the shipment's parties as ``alarm.escalated``. Idempotent: an escalated alarm is never escalated
    again, also when two processes run this at once. Returns how many alarms this call escalated."""
    async with store.transaction() as tx:
        escalated = await tx.escalate_alarms(detected_before=now - after, now=now)
        shipments: dict[int, Shipment] = {}
        for stored in escalated:
            if stored.shipment_id not in shipments:
                shipment = await tx.get_shipment(stored.shipment_id)
                assert shipment is not None  # foreign key
                shipments[stored.shipment_id] = shipment
            details = {"unacknowledged_for_s": (now - stored.detected_at).total_seconds()}
            await _audit(tx, "coldchain:jobs", "alarm.escalated", stored, details, now=now)
            await _tell_parties(tx, "alarm.escalated", shipments[stored.shipment_id], stored, now=now)
    return len(escalated)
