"""Findings as kept: a stream's evaluation state, and excursions and alarms with their history.

A shipment is judged as streams, one per tracker assignment (:mod:`coldchain.domain.evaluation`); what a stream
finds is kept by the stable key of each finding, with the service's own times (first detected, updated,
withdrawn) and what people did about it. Records only: storage keeps them, services write them.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from coldchain.domain.excursions import Excursion
from coldchain.domain.profiles import Profile
from coldchain.domain.rules import Alarm

__all__ = ["EvaluationStream", "StoredAlarm", "StoredExcursion"]


class EvaluationStream(msgspec.Struct, frozen=True, kw_only=True):
    """The evaluation of one tracker assignment so far: the engine's ``state`` bytes, made for ``profile`` (the
    shipment's pinned version), and how many readings it has judged."""

    assignment_id: int
    shipment_id: int
    tracker_id: int
    profile: Profile
    state: bytes
    readings: int
    updated_at: datetime


class StoredExcursion(msgspec.Struct, frozen=True, kw_only=True):
    """An excursion as stored: the finding, the party that held the shipment when it began, and its history."""

    id: int
    assignment_id: int
    shipment_id: int
    excursion: Excursion
    custodian_id: int | None
    detected_at: datetime
    updated_at: datetime
    withdrawn_at: datetime | None


class StoredAlarm(msgspec.Struct, frozen=True, kw_only=True):
    """An alarm as stored: the condition (device times), when the service detected it (``late`` when that came
    long after the condition was met), and what people did about it."""

    id: int
    assignment_id: int
    shipment_id: int
    alarm: Alarm
    detected_at: datetime
    late: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    acknowledgement: str | None
    escalated_at: datetime | None
    withdrawn_at: datetime | None
    updated_at: datetime

    @property
    def key(self) -> str:
        return self.alarm.key
