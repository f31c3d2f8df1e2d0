"""Use cases of evaluation: judge newly stored readings of a tracker against the shipments they belong to."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from coldchain.domain.readings import Reading
from coldchain.storage import Transaction

__all__ = ["judge_readings"]


async def judge_readings(tx: Transaction, tracker_id: int, readings: Sequence[Reading], *, now: datetime) -> None:
    """Judge ``readings`` (just stored, in any order) of ``tracker_id`` inside the ingest transaction ``tx``."""
