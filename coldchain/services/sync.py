"""Use case: record a batch of readings from one tracker, in one transaction, and say what is now held."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import msgspec

from coldchain.domain.readings import Reading
from coldchain.domain.sync import acknowledge, clock_offset_s, extend_acknowledgement, quarantine_reason
from coldchain.services.custody import notice_arrival
from coldchain.services.evaluation import judge_readings
from coldchain.storage import Store

__all__ = ["BatchOutcome", "SyncPolicy", "record_batch"]


class SyncPolicy(msgspec.Struct, frozen=True, kw_only=True):
    max_future: timedelta = timedelta(hours=24)
    clock_drift_limit_s: float = 300.0
    evaluate: bool = True
    """Judge new readings against their shipments in the ingest transaction (off only to measure its cost)."""


DEFAULT_POLICY = SyncPolicy()


class BatchOutcome(msgspec.Struct, frozen=True, kw_only=True):
    acked_through: int
    missing: list[tuple[int, int]]
    new: int
    duplicates: int
    quarantined: int
    server_time: datetime
    clock_offset_s: float | None
    clock_flagged: bool


async def record_batch(
    store: Store,
    tracker_id: int,
    readings: Sequence[Reading],
    *,
    now: datetime,
    sent_at: datetime | None = None,
    policy: SyncPolicy = DEFAULT_POLICY,
    sequenced: bool = True,
) -> BatchOutcome:
    """Store ``readings`` (valid ones as readings, invalid ones in quarantine) and advance the tracker's state.

    Idempotent: a reading already held is counted as a duplicate and changes nothing. The first copy of a
    sequence number wins, also within one batch. ``sequenced`` is false for sources whose sequence numbers are
    not a gap-free count (OsmAnd devices use the time as the number): they get no acknowledgement ranges.
    """
    unique: dict[int, Reading] = {}
    for reading in readings:
        unique.setdefault(reading.seq, reading)
    accepted: list[Reading] = []
    refused: list[tuple[Reading, str]] = []
    for reading in unique.values():
        reason = quarantine_reason(reading, now=now, max_future=policy.max_future)
        if reason is None:
            accepted.append(reading)
        else:
            refused.append((reading, reason))

    async with store.transaction() as tx:
        state = await tx.sync_state(tracker_id)
        # A copy of a held seq is a duplicate even when it would go to the other table (valid now, refused
        # then, or the reverse): each table's ON CONFLICT only sees its own rows. In a sequenced log everything
        # up to acked_through is held and nothing above max_seq is: only the numbers in between need a look.
        # Unsequenced sources (numbered by time) keep no such bounds: all their numbers need one.
        unsure = [seq for seq in unique if state.acked_through < seq <= state.max_seq] if sequenced else list(unique)
        held_before = (
            set(await tx.held_seqs(tracker_id, after_seq=min(unsure) - 1, up_to_seq=max(unsure))) if unsure else set()
        )
        accepted = [r for r in accepted if r.seq > state.acked_through and r.seq not in held_before]
        refused = [(r, why) for r, why in refused if r.seq > state.acked_through and r.seq not in held_before]
        new_seqs = await tx.insert_readings(tracker_id, accepted, received_at=now) if accepted else []
        new = len(new_seqs)
        if new and policy.evaluate:
            stored = set(new_seqs)
            fresh = [r for r in accepted if r.seq in stored]
            await judge_readings(tx, tracker_id, fresh, now=now)
            await notice_arrival(tx, tracker_id, fresh, now=now)
        quarantined = len(await tx.quarantine_readings(tracker_id, refused, received_at=now)) if refused else 0
        duplicates = len(readings) - new - quarantined
        missing: list[tuple[int, int]] = []
        if sequenced and unique:
            extended = extend_acknowledgement(state.acked_through, state.max_seq, unique)
            if extended is not None:  # the usual case, without a query: the batch continues a log with no hole
                state.acked_through = state.max_seq = extended
            else:
                state.max_seq = max(state.max_seq, max(unique))
                held = await tx.held_seqs(tracker_id, after_seq=state.acked_through, up_to_seq=state.max_seq)
                ack = acknowledge(state.acked_through, held)
                state.acked_through, missing = ack.acked_through, ack.missing
        state.readings_new += new
        state.readings_duplicate += duplicates
        state.readings_quarantined += quarantined
        state.batches += 1
        state.last_sync_at = now
        if sent_at is not None:
            state.clock_offset_s = clock_offset_s(sent_at, now)
            state.clock_flagged = abs(state.clock_offset_s) > policy.clock_drift_limit_s
        await tx.save_sync_state(state)

    return BatchOutcome(
        acked_through=state.acked_through,
        missing=missing,
        new=new,
        duplicates=duplicates,
        quarantined=quarantined,
        server_time=now,
        clock_offset_s=state.clock_offset_s,
        clock_flagged=state.clock_flagged,
    )
